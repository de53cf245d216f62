import CSQLite

/// A thin owner of one `sqlite3*` connection and its prepared statements.
///
/// Not thread-safe by itself: `Store` is used from one thread at a time and the C layer
/// serialises calls on a handle.
package final class Connection {
    package private(set) var handle: OpaquePointer?
    package let path: String

    /// Opens `path`; `displayPath` names the file in messages when `path` is a URI.
    package init(path: String, flags: Int32, displayPath: String? = nil, vfs: String? = nil) throws(PierError) {
        self.path = displayPath ?? path
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_EXRESCODE, vfs)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(db)
            throw Connection.error(rc, message, context: "cannot open \(displayPath ?? path)")
        }
        handle = db
    }

    deinit { close() }

    package func close() {
        guard let handle else { return }
        sqlite3_close_v2(handle)
        self.handle = nil
    }

    package var db: OpaquePointer {
        // Every caller checks `Store.isOpen` first; a nil handle here is a Pier bug.
        guard let handle else { preconditionFailure("Pier: connection used after close") }
        return handle
    }

    package var isAutocommit: Bool { sqlite3_get_autocommit(db) != 0 }

    /// Runs one or more statements that return no rows.
    package func execute(_ sql: String) throws(PierError) {
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let message = errmsg.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(errmsg)
            throw Connection.error(rc, message, context: nil)
        }
    }

    package func prepare(_ sql: String) throws(PierError) -> Statement {
        var stmt: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let rc = sql.withCString { sqlite3_prepare_v3(db, $0, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, &tail) }
        guard rc == SQLITE_OK, let stmt else {
            throw Connection.error(rc, String(cString: sqlite3_errmsg(db)), context: nil)
        }
        return Statement(stmt, connection: self)
    }

    package var lastError: PierError {
        Connection.error(sqlite3_extended_errcode(db), String(cString: sqlite3_errmsg(db)), context: nil)
    }

    /// Maps an SQLite result code to a Pier status code.
    package static func error(_ rc: Int32, _ message: String, context: String?) -> PierError {
        let primary = rc & 0xff
        let code: PierError.Code
        switch primary {
        case SQLITE_BUSY, SQLITE_LOCKED: code = .busy
        case SQLITE_NOMEM: code = .noMemory
        case SQLITE_IOERR where rc == PIER_SQLITE_IOERR_DATA: code = .corrupt
        case SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_PERM: code = .io
        case SQLITE_CORRUPT: code = .corrupt
        case SQLITE_NOTADB: code = .notADatabase
        case SQLITE_READONLY: code = .readOnly
        case SQLITE_TOOBIG: code = .limit
        case SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE: code = .invalid
        case SQLITE_INTERRUPT: code = .cancelled
        default: code = .internalError
        }
        var text = context.map { "\($0): \(message)" } ?? message
        if code == .busy { text += "; another connection holds the lock: retry, or raise the busy timeout" }
        if rc == PIER_SQLITE_IOERR_DATA {
            text += " (an encrypted page failed authentication: the file, its WAL or its journal was changed outside Pier)"
        }
        return PierError(code, text, underlying: "sqlite rc=\(rc)")
    }
}

/// A prepared statement. Reset after each use so it can be reused.
package final class Statement {
    package let stmt: OpaquePointer
    package unowned let connection: Connection

    package init(_ stmt: OpaquePointer, connection: Connection) {
        self.stmt = stmt
        self.connection = connection
    }

    deinit { sqlite3_finalize(stmt) }

    @inline(__always) package func bind(_ index: Int32, _ value: String) {
        var value = value
        value.withUTF8 { bind(index, text: UnsafeRawBufferPointer($0)) }
    }

    @inline(__always) package func bind(_ index: Int32, text: UnsafeRawBufferPointer) {
        if let base = text.baseAddress, text.count > 0 {
            sqlite3_bind_text(stmt, index, base.assumingMemoryBound(to: CChar.self), Int32(text.count), pier_sqlite_transient())
        } else {
            sqlite3_bind_text(stmt, index, "", 0, pier_sqlite_transient())
        }
    }

    /// Binds text without copying it: the bytes must stay valid until the statement is
    /// reset (every caller steps and resets within the buffer's lifetime).
    @inline(__always) package func bind(_ index: Int32, borrowedText text: UnsafeRawBufferPointer) {
        if let base = text.baseAddress, text.count > 0 {
            sqlite3_bind_text(stmt, index, base.assumingMemoryBound(to: CChar.self), Int32(text.count), nil)
        } else {
            sqlite3_bind_text(stmt, index, "", 0, pier_sqlite_transient())
        }
    }

    @inline(__always) package func bind(_ index: Int32, blob: UnsafeRawBufferPointer) {
        if let base = blob.baseAddress, blob.count > 0 {
            sqlite3_bind_blob(stmt, index, base, Int32(blob.count), pier_sqlite_transient())
        } else {
            sqlite3_bind_zeroblob(stmt, index, 0)
        }
    }

    /// Binds bytes that are UTF-8 JSON text (a body on the wire), or NULL.
    @inline(__always) package func bind(_ index: Int32, jsonBytes: [UInt8]?) {
        guard let jsonBytes else { bindNull(index); return }
        jsonBytes.withUnsafeBytes { bind(index, text: $0) }
    }

    @inline(__always) package func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(stmt, index, value) }
    @inline(__always) package func bind(_ index: Int32, _ value: Double) { sqlite3_bind_double(stmt, index, value) }
    @inline(__always) package func bindNull(_ index: Int32) { sqlite3_bind_null(stmt, index) }
    @inline(__always) package func bind(_ index: Int32, _ value: String?) {
        if let value { bind(index, value) } else { bindNull(index) }
    }

    /// Steps once. Returns true when a row is available, false when done.
    @inline(__always) package func step() throws(PierError) -> Bool {
        let rc = sqlite3_step(stmt)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        let error = connection.lastError
        sqlite3_reset(stmt)
        throw error
    }

    /// Runs a statement that returns no rows, then resets it.
    @inline(__always) package func run() throws(PierError) {
        defer { reset() }
        _ = try step()
    }

    @inline(__always) package func reset() {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    package var columnCount: Int32 { sqlite3_column_count(stmt) }
    @inline(__always) package func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(stmt, column) }
    @inline(__always) package func double(_ column: Int32) -> Double { sqlite3_column_double(stmt, column) }
    @inline(__always) package func isNull(_ column: Int32) -> Bool { sqlite3_column_type(stmt, column) == SQLITE_NULL }
    @inline(__always) package func type(_ column: Int32) -> Int32 { sqlite3_column_type(stmt, column) }

    @inline(__always) package func string(_ column: Int32) -> String? {
        guard let text = sqlite3_column_text(stmt, column) else { return nil }
        let count = Int(sqlite3_column_bytes(stmt, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    /// The column's bytes, borrowed until the next step or reset.
    @inline(__always) package func textBytes(_ column: Int32) -> UnsafeRawBufferPointer? {
        guard let text = sqlite3_column_text(stmt, column) else { return nil }
        return UnsafeRawBufferPointer(start: text, count: Int(sqlite3_column_bytes(stmt, column)))
    }

    @inline(__always) package func blobBytes(_ column: Int32) -> UnsafeRawBufferPointer {
        let count = Int(sqlite3_column_bytes(stmt, column))
        guard let blob = sqlite3_column_blob(stmt, column), count > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: blob, count: count)
    }

    /// A text or blob column copied into an array; nil for NULL.
    @inline(__always) package func bytes(_ column: Int32) -> [UInt8]? {
        if sqlite3_column_type(stmt, column) == SQLITE_NULL { return nil }
        let count = Int(sqlite3_column_bytes(stmt, column))
        guard count > 0, let pointer = sqlite3_column_blob(stmt, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    package func columnName(_ column: Int32) -> String { String(cString: sqlite3_column_name(stmt, column)) }
    package func declaredType(_ column: Int32) -> String? { sqlite3_column_decltype(stmt, column).map { String(cString: $0) } }
    package var isReadOnly: Bool { sqlite3_stmt_readonly(stmt) != 0 }
    package var parameterCount: Int32 { sqlite3_bind_parameter_count(stmt) }
}
