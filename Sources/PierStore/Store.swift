// PierStore: the local, offline-first record store of one client.
//
// Owns: the SQLite connection and schema, records and their sync metadata, the outbox
// order (`local_seq`), the client's hybrid logical clock, validation of names and bodies,
// and read-only queries. Depends on SQLite only (CSQLite); it must not depend on the
// sync engine, the wire format, Foundation or any networking. Encryption at rest plugs in
// through `StoreEncryption` (PierCrypto).
import CSQLite

/// How hard a commit tries to reach the disk.
public enum Durability: Int32, Sendable {
    /// `synchronous=NORMAL` in WAL mode: a commit survives an application crash; the last
    /// commits may be lost on power failure. The default.
    case normal = 0
    /// `synchronous=FULL`: a commit survives power failure too.
    case full = 1
}

/// The sync state of one record.
public enum SyncState: Int32, Sendable, CustomStringConvertible {
    case synced = 0, pending = 1, conflicted = 2, rejected = 3

    public var description: String {
        switch self {
        case .synced: return "synced"
        case .pending: return "pending"
        case .conflicted: return "conflicted"
        case .rejected: return "rejected"
        }
    }
}

/// How a collection takes part in sync; raw values match `PIER_MODE_*` in pier.h.
public enum CollectionMode: Int32, Sendable, CustomStringConvertible {
    /// Local changes are pushed and server changes pulled (the default).
    case twoWay = 0
    /// Reference data: pulled only; local writes are refused with `.readOnly`.
    case pullOnly = 1
    /// Pushed only (telemetry): never pulled; optionally purged locally once acknowledged.
    case pushOnly = 2
    /// Never synced: writes are not tracked and never leave the device.
    case localOnly = 3

    public var description: String {
        switch self {
        case .twoWay: return "two_way"
        case .pullOnly: return "pull_only"
        case .pushOnly: return "push_only"
        case .localOnly: return "local_only"
        }
    }
}

/// Options for opening a store.
public struct StoreOptions: Sendable {
    public var durability: Durability = .normal
    /// Open read-only: writes fail with `.readOnly`; the file must exist.
    public var readOnly = false
    /// Fail with `.notFound` instead of creating a missing file.
    public var mustExist = false
    /// The scope given to records written without one.
    public var defaultScope = "default"
    /// The largest record body accepted, in bytes.
    public var maxBodyBytes = Limits.defaultMaxBodyBytes
    /// How long a write waits for another connection's lock before `.busy`.
    public var busyTimeoutMilliseconds: Int32 = 5000
    /// The wall clock behind the HLC (tests inject a fake one).
    public var clock: any WallClock = SystemClock()
    /// Encryption at rest (PierCrypto's `Encryption`), or nil for a plain file.
    public var encryption: (any StoreEncryption)? = nil
    /// The name of a registered SQLite VFS to open a plain store through (nil: SQLite's
    /// default). For hosts with their own file layer, and for the fault-injecting VFS of
    /// the I/O failure tests. Not used together with `encryption`, which brings its own.
    public var vfs: String? = nil

    public init() {}
}

/// All sync metadata of one record, live or tombstone.
public struct RecordMetadata: Sendable, Equatable {
    public var collection: String
    public var id: String
    public var body: String?
    public var scope: String
    public var isFromServer: Bool
    public var isModified: Bool
    public var isActive: Bool
    public var baseVersion: Int64
    public var hlc: HLC
    public var localSeq: Int64
    /// Top-level fields changed since `baseVersion` as a JSON array, nil when the whole
    /// body is new to the server (never synced) or the record is a tombstone.
    public var changedFields: String?
    public var serverBody: String?
    public var serverVersion: Int64
    public var syncState: SyncState
}

/// Counts for one collection, as `pier inspect` shows them.
public struct CollectionSummary: Sendable, Equatable {
    public var name: String
    public var records: Int64
    public var pending: Int64
    public var conflicts: Int64
    public var tombstones: Int64
}

/// A local Pier store: one SQLite file in WAL mode.
///
/// A `Store` is used from one thread at a time; it may move between threads.
public final class Store {
    public let path: String
    public private(set) var options: StoreOptions
    public private(set) var clientID: String = ""

    private var connection: Connection?
    private var clock: HybridLogicalClock
    private var localSeq: Int64 = 0
    private var lastDataVersion: Int64 = -1
    private var hostTransaction = false
    private var statements: Statements?
    /// Collections with a mode other than two-way, with their purge-after-push flag.
    private var modes: [String: (mode: CollectionMode, purgeAfterPush: Bool)] = [:]
    /// True inside `write`: nested writes join the enclosing one.
    private var writing = false
    /// Releases the key of an encrypted store once its connection is closed.
    private var releaseKey: (@Sendable () -> Void)?

    /// Opens (and if needed creates) the store at `path`.
    ///
    /// A file that is not a Pier store (garbage, or another application's SQLite database)
    /// is refused with `.notADatabase` and left untouched.
    public init(path: String, options: StoreOptions = StoreOptions()) throws(PierError) {
        guard !path.isEmpty else { throw PierError(.invalid, "path must not be empty") }
        guard options.maxBodyBytes > 0, options.maxBodyBytes <= Limits.maxBodyBytesCeiling else {
            throw PierError(.invalid, "max_body_bytes must be 1-\(Limits.maxBodyBytesCeiling), got \(options.maxBodyBytes)")
        }
        try Validate.scope(options.defaultScope)
        self.path = path
        self.options = options
        self.clock = HybridLogicalClock(clock: options.clock)

        let exists = fileSize(path) != nil
        if !exists && (options.mustExist || options.readOnly) {
            throw PierError(.notFound, "no store at \(path); open it read-write without the must-exist flag to create one")
        }
        var flags = (options.readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        var sqliteName = path
        var opening: EncryptedOpening?
        if let encryption = options.encryption {
            let prepared = try encryption.prepare(path: path, readOnly: options.readOnly)
            opening = prepared
            sqliteName = prepared.sqliteFilename
            flags |= SQLITE_OPEN_URI
        }
        let connection: Connection
        do throws(PierError) {
            if options.vfs != nil && opening != nil {
                throw PierError(.invalid, "a store cannot be opened through another VFS and encrypted at once")
            }
            connection = try Connection(path: sqliteName, flags: flags, displayPath: path, vfs: options.vfs)
        } catch {
            opening?.release()
            throw error
        }
        sqlite3_busy_timeout(connection.db, options.busyTimeoutMilliseconds)
        do throws(PierError) {
            if let opening {
                // Before SQLite writes page 1 of a new file: the page size the key header
                // names and room for each page's nonce and tag.
                var reserve = Int32(opening.reserveBytes)
                _ = sqlite3_file_control(connection.db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve)
                try connection.execute("PRAGMA page_size=\(opening.pageSize)")
            }
            // Several threads or processes may create the same new store at once: the
            // loser of a race sees SQLITE_BUSY outside the busy handler's reach, so the
            // whole sequence is retried until the busy timeout.
            let deadline = monotonicNanoseconds() + UInt64(max(0, options.busyTimeoutMilliseconds)) * 1_000_000
            var attempt: UInt32 = 0
            while true {
                do throws(PierError) {
                    try Store.checkIdentity(connection, path: path, encrypted: opening != nil)
                    if !options.readOnly {
                        try connection.execute("PRAGMA journal_mode=WAL")
                    }
                    try connection.execute("""
                        PRAGMA synchronous=\(options.durability == .full ? "FULL" : "NORMAL");
                        PRAGMA temp_store=MEMORY;
                        PRAGMA cache_size=-16384;
                        """)
                    if !options.readOnly {
                        try Store.migrate(connection, path: path)
                    } else {
                        try Store.checkVersion(connection)
                    }
                    break
                } catch where error.code == .busy && monotonicNanoseconds() < deadline {
                    attempt += 1
                    sleepMicroseconds(min(50_000, 500 << min(attempt, 7)))
                }
            }
            // A rekey or in-place encryption renames a new file over this path; a connection
            // that opened the old file just before (it held no lock yet) must not carry on
            // writing to the unlinked one.
            var moved: Int32 = 0
            if sqlite3_file_control(connection.db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved != 0 {
                throw PierError(.busy, "\(path) was replaced (rekeyed or encrypted) while it was being opened; open it again")
            }
            self.connection = connection
            self.statements = try Statements(connection)
            try loadState()
        } catch {
            self.statements = nil
            self.connection = nil
            connection.close()
            opening?.release()
            throw error
        }
        releaseKey = opening?.release
        PierLog.log(.info, "opened store \(path) (client \(clientID))\(opening == nil ? "" : ", encrypted")")
    }

    deinit { close() }

    /// Closes the store. Later calls fail with `.closed`. Safe to call twice.
    public func close() {
        guard let connection else { return }
        if hostTransaction {
            try? connection.execute("ROLLBACK")
            hostTransaction = false
        }
        if !options.readOnly {
            try? saveCounters()
            try? connection.execute("PRAGMA optimize")
        }
        statements = nil
        connection.close()
        self.connection = nil
        releaseKey?()
        releaseKey = nil
        PierLog.log(.info, "closed store \(path)")
    }

    public var isOpen: Bool { connection != nil }

    /// Records options that changed outside the store (a new passphrase); the connection
    /// is unaffected.
    public func replaceOptions(_ options: StoreOptions) {
        self.options = options
    }

    /// True while a transaction opened with `begin()` is in progress.
    public var inTransaction: Bool { hostTransaction }

    // MARK: Opening

    private static func checkIdentity(_ connection: Connection, path: String, encrypted: Bool) throws(PierError) {
        let appID: Int64
        let objects: Int64
        do throws(PierError) {
            // One statement, so one read transaction: another connection creating the
            // store at this moment is seen either not at all or completely.
            let both = try connection.prepare("SELECT (SELECT application_id FROM pragma_application_id()), (SELECT count(*) FROM sqlite_master)")
            defer { both.reset() }
            guard try both.step() else { throw PierError(.io, "cannot read \(path)") }
            appID = both.int64(0)
            objects = both.int64(1)
        } catch where !encrypted && (error.code == .notADatabase || error.code == .corrupt) {
            // (An encrypted page that fails authentication stays PIER_ECORRUPT.) SQLite
            // refuses an encrypted file as "not a database": only then is its magic read.
            if isEncryptedFile(path) {
                throw PierError(.key, "\(path) is encrypted; open it with its passphrase or key")
            }
            throw PierError(.notADatabase, "\(path) is not a Pier store (not an SQLite database, or encrypted)", underlying: error.message)
        }
        if appID == Int64(Schema.applicationID) { return }
        if appID == 0 && objects == 0 { return }  // new or empty file: ours to initialise
        throw PierError(.notADatabase, "\(path) is an SQLite database of another application (application_id \(appID), \(objects) schema objects); Pier leaves it untouched")
    }

    private static func storedVersion(_ connection: Connection) throws(PierError) -> Int {
        let hasMeta = try scalarInt(connection, "SELECT count(*) FROM sqlite_master WHERE name='pier_meta'")
        if hasMeta == 0 { return 0 }
        let stmt = try connection.prepare("SELECT value FROM pier_meta WHERE key='schema_version'")
        guard try stmt.step() else { return 0 }
        return Int(stmt.int64(0))
    }

    private static func checkVersion(_ connection: Connection) throws(PierError) {
        let version = try storedVersion(connection)
        if version > Schema.currentVersion {
            throw PierError(.version, "store schema version \(version) is newer than this Pier supports (\(Schema.currentVersion)); upgrade Pier to open it")
        }
        if version < Schema.currentVersion {
            throw PierError(.readOnly, "store schema version \(version) needs migrating to \(Schema.currentVersion); open it read-write once")
        }
    }

    private static func migrate(_ connection: Connection, path: String) throws(PierError) {
        try connection.execute("BEGIN IMMEDIATE")
        do throws(PierError) {
            let version = try storedVersion(connection)
            if version > Schema.currentVersion {
                throw PierError(.version, "store schema version \(version) is newer than this Pier supports (\(Schema.currentVersion)); upgrade Pier to open it")
            }
            if version < Schema.currentVersion {
                for step in version..<Schema.currentVersion {
                    try connection.execute(Schema.migrations[step])
                    try Schema.afterMigration(step + 1, connection)
                    PierLog.log(.info, "migrated \(path) to schema version \(step + 1)")
                }
                if version == 0 {
                    try connection.execute("PRAGMA application_id=\(Schema.applicationID)")
                    let insert = try connection.prepare("INSERT INTO pier_meta(key, value) VALUES (?1, ?2)")
                    for (key, value) in [(Schema.Key.clientID, UUIDv7.make()), (Schema.Key.createdAt, String(currentTimeMilliseconds()))] {
                        insert.bind(1, key); insert.bind(2, value)
                        try insert.run()
                    }
                    for key in [Schema.Key.pullCursor, Schema.Key.pushBatchSeq, Schema.Key.hlc, Schema.Key.localSeq] {
                        insert.bind(1, key); insert.bind(2, Int64(0))
                        try insert.run()
                    }
                }
                let set = try connection.prepare("INSERT OR REPLACE INTO pier_meta(key, value) VALUES ('schema_version', ?1)")
                set.bind(1, Int64(Schema.currentVersion))
                try set.run()
            }
            try connection.execute("COMMIT")
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    private static func scalarInt(_ connection: Connection, _ sql: String) throws(PierError) -> Int64 {
        let stmt = try connection.prepare(sql)
        return try stmt.step() ? stmt.int64(0) : 0
    }

    /// Loads the client id and recovers the HLC and `local_seq` counters: the larger of
    /// the values saved at the last close or sync and those of the newest pending edit,
    /// so a crash never makes either go backwards for a record that still needs them.
    private func loadState() throws(PierError) {
        let s = try open()
        clientID = try metaText(Schema.Key.clientID) ?? ""
        try refreshCounters(s)
    }

    private func refreshCounters(_ s: Statements) throws(PierError) {
        var savedSeq: Int64 = 0
        var savedHLC: Int64 = 0
        if try s.metaGet.bindingRun(Schema.Key.localSeq) { savedSeq = s.metaGet.int64(0) }
        s.metaGet.reset()
        if try s.metaGet.bindingRun(Schema.Key.hlc) { savedHLC = s.metaGet.int64(0) }
        s.metaGet.reset()
        defer { s.newestPending.reset() }
        if try s.newestPending.step() {
            savedSeq = max(savedSeq, s.newestPending.int64(0))
            savedHLC = max(savedHLC, s.newestPending.int64(1))
        }
        localSeq = max(localSeq, savedSeq)
        clock.observe(HLC(rawValue: savedHLC))
        try loadModes(s)
        defer { s.dataVersion.reset() }
        lastDataVersion = try s.dataVersion.step() ? s.dataVersion.int64(0) : -1
    }

    private func saveCounters() throws(PierError) {
        guard let s = statements else { return }
        try s.metaSet.bindRun(Schema.Key.localSeq, localSeq)
        try s.metaSet.bindRun(Schema.Key.hlc, clock.last.rawValue)
    }

    @inline(__always) private func open() throws(PierError) -> Statements {
        guard let statements else { throw PierError(.closed, "the store is closed; open it again") }
        return statements
    }

    private func writable() throws(PierError) -> Statements {
        let s = try open()
        if options.readOnly { throw PierError(.readOnly, "the store was opened read-only") }
        return s
    }

    // MARK: Transactions

    /// Opens a transaction that groups later writes until `commit()` or `rollback()`.
    public func begin() throws(PierError) {
        let s = try writable()
        if hostTransaction { throw PierError(.state, "a transaction is already open; commit or roll it back first") }
        try s.begin.run()
        hostTransaction = true
        do throws(PierError) { try checkOtherWriters(s) } catch {
            try? s.rollback.run(); hostTransaction = false; throw error
        }
    }

    public func commit() throws(PierError) {
        let s = try open()
        guard hostTransaction else { throw PierError(.state, "no transaction is open; call begin first") }
        do throws(PierError) {
            try s.commit.run()
        } catch {
            if s.connection.isAutocommit { hostTransaction = false }
            throw error
        }
        hostTransaction = false
        CrashPoint.afterLocalCommit.reach()
    }

    public func rollback() throws(PierError) {
        let s = try open()
        guard hostTransaction else { throw PierError(.state, "no transaction is open; call begin first") }
        hostTransaction = false
        if !s.connection.isAutocommit { try s.rollback.run() }
    }

    /// Runs `body` atomically: in its own transaction, or in a savepoint inside the
    /// host's transaction. On error nothing it wrote survives.
    public func write<T>(_ body: () throws(PierError) -> T) throws(PierError) -> T {
        let s = try writable()
        return try write(s) { (_: Statements) throws(PierError) -> T in try body() }
    }

    /// `singleStatement`: the body changes the database with at most one statement, which
    /// SQLite already undoes alone when it fails, so inside the host's transaction no
    /// savepoint is needed (a savepoint costs more than the insert itself).
    private func write<T>(_ s: Statements, singleStatement: Bool = false, _ body: (Statements) throws(PierError) -> T) throws(PierError) -> T {
        if writing { return try body(s) }  // part of an enclosing write: it commits or rolls back as one
        writing = true
        defer { writing = false }
        if hostTransaction && singleStatement {
            do throws(PierError) { return try body(s) } catch {
                if s.connection.isAutocommit {
                    hostTransaction = false
                    throw PierError(error.code, error.message + "; the enclosing transaction was rolled back", underlying: error.underlying)
                }
                throw error
            }
        }
        if hostTransaction {
            try s.savepoint.run()
            do throws(PierError) {
                let result = try body(s)
                try s.release.run()
                return result
            } catch {
                if s.connection.isAutocommit {
                    // SQLite rolled back the whole transaction (disk full, I/O error).
                    hostTransaction = false
                    throw PierError(error.code, error.message + "; the enclosing transaction was rolled back", underlying: error.underlying)
                }
                try? s.rollbackTo.run()
                try? s.release.run()
                throw error
            }
        }
        try s.begin.run()
        do throws(PierError) {
            try checkOtherWriters(s)
            let result = try body(s)
            try s.commit.run()
            CrashPoint.afterLocalCommit.reach()
            return result
        } catch {
            if !s.connection.isAutocommit { try? s.rollback.run() }
            throw error
        }
    }

    /// Another connection (another process on the same file) may have written since we
    /// last looked; if so, our counters must catch up before we issue new ones.
    @inline(__always) private func checkOtherWriters(_ s: Statements) throws(PierError) {
        defer { s.dataVersion.reset() }
        let version = try s.dataVersion.step() ? s.dataVersion.int64(0) : -1
        if version != lastDataVersion {
            s.dataVersion.reset()
            try refreshCounters(s)
        }
    }

    @inline(__always) private func nextStamp() -> (HLC, Int64) {
        localSeq += 1
        return (clock.now(), localSeq)
    }

    // MARK: Writes

    /// Stores `body` (a JSON object) as the record `id` of `collection`, replacing any
    /// earlier body. `scope` nil keeps the record's scope, or gives a new record the
    /// store's default scope.
    public func put(_ collection: String, id: String, body: String, scope: String? = nil) throws(PierError) {
        try withUTF8Bytes(body) { (bytes) throws(PierError) in
            try put(collection, id: id, body: bytes, scope: scope)
        }
    }

    /// `put` with the body as UTF-8 bytes (borrowed for the call).
    public func put(_ collection: String, id: String, body: UnsafeRawBufferPointer, scope: String? = nil) throws(PierError) {
        let s = try writable()
        try Validate.collection(collection)
        try Validate.id(id)
        if let scope { try Validate.scope(scope) }
        try checkBody(body, what: "body")
        try write(s, singleStatement: true) { (s: Statements) throws(PierError) in
            try upsert(s, collection, id, body, scope)
        }
    }

    /// Writes several records of one collection atomically: all or none.
    public func putMany(_ collection: String, _ records: [(id: String, body: String)], scope: String? = nil) throws(PierError) {
        try putMany(collection, count: records.count, scope: scope) { (index, put) throws(PierError) in
            try withUTF8Bytes(records[index].body) { (bytes) throws(PierError) in try put(records[index].id, bytes) }
        }
    }

    /// The batch loop behind `putMany` and `pier_db_put_many`: the collection and scope are
    /// checked once, every record in one write; `record(i, put)` lends the i-th id and body
    /// to `put`. A failure names the record's index and leaves nothing written.
    package func putMany(
        _ collection: String, count: Int, scope: String?,
        _ record: (Int, _ put: (String, UnsafeRawBufferPointer) throws(PierError) -> Void) throws(PierError) -> Void
    ) throws(PierError) {
        let s = try writable()
        try Validate.collection(collection)
        if let scope { try Validate.scope(scope) }
        try write(s) { (s: Statements) throws(PierError) in
            for index in 0..<count {
                do throws(PierError) {
                    try record(index) { (id, body) throws(PierError) in
                        try Validate.id(id)
                        try checkBody(body, what: "body")
                        try upsert(s, collection, id, body, scope)
                    }
                } catch {
                    throw PierError(error.code, "record \(index): \(error.message)", underlying: error.underlying)
                }
            }
        }
    }

    @inline(__always) private func upsert(_ s: Statements, _ collection: String, _ id: String, _ body: UnsafeRawBufferPointer, _ scope: String?) throws(PierError) {
        let (hlc, seq) = nextStamp()
        let tracked = try tracking(collection)
        // New records are the common case (bulk loads, offline creation): a plain INSERT is
        // cheaper than the upsert, which only runs when the id already exists.
        var collection = collection, id = id
        var scopeText = scope ?? options.defaultScope
        let rc: Int32 = collection.withUTF8 { c in id.withUTF8 { i in scopeText.withUTF8 { sc in
            let insert = s.insert
            insert.bind(1, borrowedText: UnsafeRawBufferPointer(c))
            insert.bind(2, borrowedText: UnsafeRawBufferPointer(i))
            insert.bind(3, borrowedText: body)
            insert.bind(4, borrowedText: UnsafeRawBufferPointer(sc))
            insert.bind(5, hlc.rawValue)
            insert.bind(6, seq)
            insert.bind(7, tracked)
            let rc = sqlite3_step(insert.stmt)
            sqlite3_reset(insert.stmt)
            return rc
        } } }
        if rc == SQLITE_DONE { return }
        if rc & 0xff != SQLITE_CONSTRAINT {
            // Not "the id exists": a real failure (disk full, I/O), reported as it is.
            throw Connection.error(rc, String(cString: sqlite3_errmsg(s.connection.db)), context: nil)
        }
        let stmt = s.upsert
        stmt.bind(1, collection)
        stmt.bind(2, id)
        stmt.bind(3, borrowedText: body)
        stmt.bind(4, scopeText)
        stmt.bind(5, hlc.rawValue)
        stmt.bind(6, seq)
        stmt.bind(7, scope)
        stmt.bind(8, tracked)
        do throws(PierError) { try stmt.run() } catch { throw bodyError(error, body) }
    }

    /// Applies a JSON merge patch (RFC 7396) to a live record: members of `patch` replace
    /// the record's, `null` members remove fields, nested objects merge recursively.
    public func patch(_ collection: String, id: String, patch: String) throws(PierError) {
        try withUTF8Bytes(patch) { (bytes) throws(PierError) in
            try self.patch(collection, id: id, patch: bytes)
        }
    }

    public func patch(_ collection: String, id: String, patch: UnsafeRawBufferPointer) throws(PierError) {
        let s = try writable()
        try Validate.collection(collection)
        try Validate.id(id)
        try checkBody(patch, what: "patch")
        try write(s, singleStatement: true) { (s: Statements) throws(PierError) in
            let (hlc, seq) = nextStamp()
            let stmt = s.patch
            stmt.bind(1, collection)
            stmt.bind(2, id)
            stmt.bind(3, text: patch)
            stmt.bind(4, hlc.rawValue)
            stmt.bind(5, seq)
            stmt.bind(6, try tracking(collection))
            stmt.bind(7, Int64(options.maxBodyBytes))
            defer { stmt.reset() }
            let found: Bool
            do throws(PierError) { found = try stmt.step() } catch { throw bodyError(error, patch, what: "patch") }
            guard found else {
                // Nothing was written: say whether the record is missing or the result too big.
                let size = try s.connection.prepare("SELECT length(CAST(json_patch(body, ?3) AS BLOB)) FROM pier_records WHERE collection = ?1 AND id = ?2 AND is_active = 1")
                size.bind(1, collection)
                size.bind(2, id)
                size.bind(3, text: patch)
                if try size.step() {
                    throw PierError(.limit, "patched body would be \(size.int64(0)) bytes, over the store's limit of \(options.maxBodyBytes)")
                }
                throw PierError(.notFound, "no record \(id.debugDescription) in collection \(collection.debugDescription)")
            }
        }
    }

    /// Deletes a live record. A record the server has, or may have (it is in a pushed batch
    /// whose reply never arrived), is kept as a tombstone until the server acknowledges the
    /// delete; one never pushed is removed outright.
    public func delete(_ collection: String, id: String) throws(PierError) {
        let s = try writable()
        try Validate.collection(collection)
        try Validate.id(id)
        _ = try tracking(collection)
        // Two statements, but at most one of them changes anything.
        try write(s, singleStatement: true) { (s: Statements) throws(PierError) in
            s.deleteLocal.bind(1, collection)
            s.deleteLocal.bind(2, id)
            try s.deleteLocal.run()
            if sqlite3_changes(s.connection.db) > 0 { return }
            let (hlc, seq) = nextStamp()
            s.tombstone.bind(1, collection)
            s.tombstone.bind(2, id)
            s.tombstone.bind(3, hlc.rawValue)
            s.tombstone.bind(4, seq)
            try s.tombstone.run()
            if sqlite3_changes(s.connection.db) == 0 {
                throw PierError(.notFound, "no record \(id.debugDescription) in collection \(collection.debugDescription)")
            }
        }
    }

    private func checkBody(_ body: UnsafeRawBufferPointer, what: String) throws(PierError) {
        if body.count > options.maxBodyBytes {
            throw PierError(.invalid, "\(what) is \(body.count) bytes, over the store's limit of \(options.maxBodyBytes)")
        }
        if let found = Validate.objectOpening(body) {
            throw PierError(.invalid, "\(what) must be a JSON object, got \(found)")
        }
        if let problem = JSONValidator.objectProblem(body) {
            let encoding = problem.contains("UTF-8") || problem.contains("NUL")
            throw PierError(.invalid, encoding ? "\(what) is not valid UTF-8 JSON text (\(problem))"
                                               : "\(what) is not valid JSON (\(problem)); send one JSON object")
        }
    }

    /// SQLite reports a malformed body as a generic error from json_type/json_patch; say what it is.
    private func bodyError(_ error: PierError, _ body: UnsafeRawBufferPointer, what: String = "body") -> PierError {
        if error.message.contains("malformed JSON") || error.message.contains("CHECK constraint failed") {
            return PierError(.invalid, "\(what) is not valid JSON (\(body.count) bytes); send one JSON object", underlying: error.message)
        }
        return error
    }

    // MARK: Reads

    /// The body of a live record.
    public func get(_ collection: String, id: String) throws(PierError) -> String {
        let s = try open()
        try Validate.collection(collection)
        try Validate.id(id)
        let stmt = s.get
        stmt.bind(1, collection)
        stmt.bind(2, id)
        defer { stmt.reset() }
        guard try stmt.step(), let body = stmt.string(0) else {
            throw PierError(.notFound, "no record \(id.debugDescription) in collection \(collection.debugDescription)")
        }
        return body
    }

    /// Reads a live record's body as borrowed bytes, without copying into a `String`.
    public func withBody<T>(_ collection: String, id: String, _ body: (UnsafeRawBufferPointer) throws(PierError) -> T) throws(PierError) -> T {
        let s = try open()
        try Validate.collection(collection)
        try Validate.id(id)
        let stmt = s.get
        stmt.bind(1, collection)
        stmt.bind(2, id)
        defer { stmt.reset() }
        guard try stmt.step(), let bytes = stmt.textBytes(0) else {
            throw PierError(.notFound, "no record \(id.debugDescription) in collection \(collection.debugDescription)")
        }
        return try body(bytes)
    }

    /// Live records of a collection in id order, after `afterID`, at most `limit`.
    public func list(_ collection: String, after afterID: String? = nil, limit: Int = 100) throws(PierError) -> [(id: String, body: String)] {
        var out: [(id: String, body: String)] = []
        try page(collection, after: afterID, limit: limit) { stmt in out.append((stmt.string(0) ?? "", stmt.string(1) ?? "{}")) }
        return out
    }

    /// `list` rendered as a JSON array of `{"id": ..., "body": {...}}`.
    public func listJSON(_ collection: String, after afterID: String? = nil, limit: Int = 100) throws(PierError) -> JSONWriter {
        var out = JSONWriter()
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        out.raw("[")
        var first = true
        try page(collection, after: afterID, limit: limit) { stmt in
            if !first { out.raw(",") }
            first = false
            out.raw("{\"id\":")
            out.string(stmt.textBytes(0) ?? empty)
            out.raw(",\"body\":")
            out.rawJSON(stmt.textBytes(1) ?? empty)
            out.raw("}")
        }
        out.raw("]")
        return out
    }

    /// Steps through one page of `list`, handing each row (id, body) to `row`.
    private func page(_ collection: String, after afterID: String?, limit: Int, _ row: (Statement) -> Void) throws(PierError) {
        let s = try open()
        try Validate.collection(collection)
        guard limit >= 0 else { throw PierError(.invalid, "limit must be 0 or more, got \(limit)") }
        let stmt = s.list
        stmt.bind(1, collection)
        stmt.bind(2, afterID ?? "")
        stmt.bind(3, Int64(limit))
        defer { stmt.reset() }
        while try stmt.step() { row(stmt) }
    }

    /// The number of live records in a collection.
    public func count(_ collection: String) throws(PierError) -> Int64 {
        let s = try open()
        try Validate.collection(collection)
        s.count.bind(1, collection)
        defer { s.count.reset() }
        return try s.count.step() ? s.count.int64(0) : 0
    }

    /// The sync state of a record, live or tombstone.
    public func syncState(_ collection: String, id: String) throws(PierError) -> SyncState {
        try metadata(collection, id: id).syncState
    }

    /// All sync metadata of a record, live or tombstone.
    public func metadata(_ collection: String, id: String) throws(PierError) -> RecordMetadata {
        let s = try open()
        try Validate.collection(collection)
        try Validate.id(id)
        let stmt = s.metadata
        stmt.bind(1, collection)
        stmt.bind(2, id)
        defer { stmt.reset() }
        guard try stmt.step() else {
            throw PierError(.notFound, "no record \(id.debugDescription) in collection \(collection.debugDescription)")
        }
        return RecordMetadata(
            collection: collection, id: id, body: stmt.string(0), scope: stmt.string(1) ?? "",
            isFromServer: stmt.int64(2) != 0, isModified: stmt.int64(3) != 0, isActive: stmt.int64(4) != 0,
            baseVersion: stmt.int64(5), hlc: HLC(rawValue: stmt.int64(6)), localSeq: stmt.int64(7),
            changedFields: stmt.string(8), serverBody: stmt.string(9), serverVersion: stmt.int64(10),
            syncState: SyncState(rawValue: Int32(stmt.int64(11))) ?? .pending)
    }

    /// The HLC the store's clock last issued or saw.
    public var lastHLC: HLC { clock.last }

    /// Records with local changes waiting to be pushed (conflicted records wait for a
    /// resolution instead and are not counted).
    public func pendingCount() throws(PierError) -> Int64 {
        let s = try open()
        defer { s.pending.reset() }
        return try s.pending.step() ? s.pending.int64(0) : 0
    }

    /// The pull cursor: the highest server version this store has applied.
    public func pullCursor() throws(PierError) -> Int64 {
        _ = try open()
        return Int64(try metaText(Schema.Key.pullCursor) ?? "0") ?? 0
    }

    /// The store's schema version.
    public func schemaVersion() throws(PierError) -> Int {
        _ = try open()
        return Int(try metaText(Schema.Key.schemaVersion) ?? "0") ?? 0
    }

    /// Per-collection counts, in name order.
    public func collections() throws(PierError) -> [CollectionSummary] {
        let s = try open()
        let stmt = try s.connection.prepare("""
            SELECT collection, sum(is_active), sum(is_modified), sum(sync_state = 2), sum(is_active = 0)
            FROM pier_records GROUP BY collection ORDER BY collection
            """)
        var out: [CollectionSummary] = []
        while try stmt.step() {
            out.append(CollectionSummary(name: stmt.string(0) ?? "", records: stmt.int64(1), pending: stmt.int64(2),
                                         conflicts: stmt.int64(3), tombstones: stmt.int64(4)))
        }
        return out
    }

    private func metaText(_ key: String) throws(PierError) -> String? {
        let s = try open()
        defer { s.metaGet.reset() }
        guard try s.metaGet.bindingRun(key) else { return nil }
        return s.metaGet.string(0)
    }

    // MARK: Indexes

    /// Creates (if missing) an expression index on a JSON field of one collection's records,
    /// so queries filtering on `json_extract(body, '$.<field>')` of that collection use it.
    /// `field` is a dotted path of identifiers, such as `city` or `address.city`.
    public func createIndex(_ collection: String, field: String) throws(PierError) {
        let s = try writable()
        try Validate.collection(collection)
        guard Store.isFieldPath(field) else {
            throw PierError(.invalid, "field must be a dotted path of identifiers such as \"city\" or \"address.city\", got \(field.debugDescription)")
        }
        let name = "pier_idx_\(Store.hexHash(collection + "\u{0}" + field))"
        let literal = collection.replacingAll("'", with: "''")
        try write(s) { (s: Statements) throws(PierError) in
            try s.connection.execute("CREATE INDEX IF NOT EXISTS \(name) ON pier_records(json_extract(body, '$.\(field)')) WHERE collection = '\(literal)' AND is_active = 1")
        }
    }

    static func isFieldPath(_ field: String) -> Bool {
        guard !field.isEmpty, field.utf8.count <= 256 else { return false }
        for part in field.split(separator: ".", omittingEmptySubsequences: false) {
            guard let first = part.utf8.first, first == UInt8(ascii: "_") || (first | 0x20) >= UInt8(ascii: "a") && (first | 0x20) <= UInt8(ascii: "z") else { return false }
            for byte in part.utf8 {
                let isLetter = (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
                let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
                if !(isLetter || isDigit || byte == UInt8(ascii: "_")) { return false }
            }
        }
        return true
    }

    static func hexHash(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    // MARK: Queries

    /// Runs one read-only SQL statement with bound parameters and returns the rows as a
    /// JSON array of objects keyed by column name. `parametersJSON` is a JSON array whose
    /// elements bind to `?1`, `?2`, ... (objects and arrays bind as JSON text).
    ///
    /// The view `records` (collection, id, body, scope, sync_state, version, hlc,
    /// local_seq) holds the live records. Columns that come straight from a body column
    /// are embedded as JSON objects; other text is a JSON string, blobs are base64.
    public func query(_ sql: String, parametersJSON: String? = nil) throws(PierError) -> JSONWriter {
        let s = try open()
        let stmt = try prepareQuery(s, sql)
        if let parametersJSON {
            try bindJSONParameters(s, stmt, parametersJSON)
        } else if stmt.parameterCount > 0 {
            throw PierError(.invalid, "query has \(stmt.parameterCount) parameters but none were given")
        }
        let columns = stmt.columnCount
        var names: [[UInt8]] = []
        var isJSON: [Bool] = []
        for column in 0..<columns {
            var key = JSONWriter(capacity: 32)
            key.string(stmt.columnName(column))
            names.append(key.bytes)
            isJSON.append(stmt.declaredType(column) == "JSONTEXT")
        }
        var out = JSONWriter(capacity: 1024)
        out.raw("[")
        var first = true
        while try queryStep(stmt) {
            if !first { out.raw(",") }
            first = false
            out.raw("{")
            for column in 0..<columns {
                if column > 0 { out.raw(",") }
                names[Int(column)].withUnsafeBytes { out.rawJSON($0) }
                out.raw(":")
                switch stmt.type(column) {
                case SQLITE_INTEGER: out.number(stmt.int64(column))
                case SQLITE_FLOAT: out.number(stmt.double(column))
                case SQLITE_NULL: out.null()
                case SQLITE_BLOB: out.base64(stmt.blobBytes(column))
                default:
                    let text = stmt.textBytes(column) ?? UnsafeRawBufferPointer(start: nil, count: 0)
                    if isJSON[Int(column)] { out.rawJSON(text) } else { out.string(text) }
                }
            }
            out.raw("}")
        }
        out.raw("]")
        return out
    }

    /// Errors while a query runs (malformed JSON in json(), integer overflow) are the
    /// query's fault, not Pier's.
    private func queryStep(_ stmt: Statement) throws(PierError) -> Bool {
        do throws(PierError) { return try stmt.step() } catch {
            if error.code == .internalError { throw PierError(.invalid, "query failed: \(error.message)", underlying: error.underlying) }
            throw error
        }
    }

    private func prepareQuery(_ s: Statements, _ sql: String) throws(PierError) -> Statement {
        let db = s.connection.db
        // While the query is compiled, an authorizer refuses anything but reading.
        sqlite3_set_authorizer(db, { _, action, _, name, _, _ in
            switch action {
            case SQLITE_SELECT, SQLITE_READ, SQLITE_RECURSIVE: return SQLITE_OK
            case SQLITE_FUNCTION:
                // Functions that reach outside the database or reveal memory addresses.
                guard let name else { return SQLITE_OK }
                let denied = ["load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"]
                return denied.contains(String(cString: name).lowercased()) ? SQLITE_DENY : SQLITE_OK
            default: return SQLITE_DENY
            }
        }, nil)
        defer { sqlite3_set_authorizer(db, nil, nil) }
        var raw: OpaquePointer?
        var rest = ""
        let rc = sql.withCString { text -> Int32 in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v2(db, text, -1, &raw, &tail)
            if let tail { rest = String(cString: tail) }  // tail points into `text`: copy it now
            return rc
        }
        guard rc == SQLITE_OK else {
            let message = String(cString: sqlite3_errmsg(db))
            if rc == SQLITE_AUTH {
                throw PierError(.readOnly, "query must be one read-only SELECT statement: \(message)")
            }
            throw PierError(.invalid, "query does not compile: \(message)")
        }
        guard let raw else { throw PierError(.invalid, "query is empty") }
        let stmt = Statement(raw, connection: s.connection)
        if !rest.allSatisfy({ $0 == ";" || $0.isWhitespace }) {
            // Whatever follows may only be comments: it must compile to no statement at all.
            var next: OpaquePointer?
            let trailing = rest.withCString { sqlite3_prepare_v2(db, $0, -1, &next, nil) }
            sqlite3_finalize(next)
            if trailing != SQLITE_OK || next != nil {
                throw PierError(.invalid, "query must be exactly one statement; found more after it")
            }
        }
        guard stmt.isReadOnly else {
            throw PierError(.readOnly, "query must be one read-only SELECT statement")
        }
        return stmt
    }

    /// Binds a JSON array's elements using SQLite's own JSON parser.
    private func bindJSONParameters(_ s: Statements, _ stmt: Statement, _ json: String) throws(PierError) {
        let each = s.parameters
        each.bind(1, json)
        defer { each.reset() }
        var index: Int32 = 0
        do throws(PierError) {
            while try each.step() {
                index += 1
                guard index <= stmt.parameterCount else {
                    throw PierError(.invalid, "query takes \(stmt.parameterCount) parameters, got more")
                }
                switch each.string(0) ?? "null" {
                case "null": stmt.bindNull(index)
                case "true": stmt.bind(index, Int64(1))
                case "false": stmt.bind(index, Int64(0))
                case "integer": stmt.bind(index, each.int64(1))
                case "real": stmt.bind(index, each.double(1))
                case "text": stmt.bind(index, each.string(1) ?? "")
                default: stmt.bind(index, each.string(2) ?? "null")  // object or array: JSON text
                }
            }
        } catch where error.message.contains("malformed JSON") {
            throw PierError(.invalid, "parameters must be a JSON array, got malformed JSON")
        }
        if index == 0, (try? Store.isJSONArray(s, json)) != true {
            throw PierError(.invalid, "parameters must be a JSON array")
        }
        guard index == stmt.parameterCount else {
            throw PierError(.invalid, "query takes \(stmt.parameterCount) parameters, got \(index)")
        }
    }

    private static func isJSONArray(_ s: Statements, _ json: String) throws(PierError) -> Bool {
        let stmt = try s.connection.prepare("SELECT json_type(?1) = 'array'")
        stmt.bind(1, json)
        return try stmt.step() && stmt.int64(0) == 1
    }
}

// MARK: - Collection modes and the hooks the sync engine uses

extension Store {
    /// 1 when writes to `collection` are tracked for sync, 0 for local-only; throws for
    /// pull-only collections, whose records only the server writes.
    @inline(__always) fileprivate func tracking(_ collection: String) throws(PierError) -> Int64 {
        if modes.isEmpty { return 1 }
        guard let entry = modes[collection] else { return 1 }
        switch entry.mode {
        case .pullOnly:
            throw PierError(.readOnly, "collection \(collection.debugDescription) is pull-only (reference data); only the server writes it")
        case .localOnly: return 0
        case .twoWay, .pushOnly: return 1
        }
    }

    fileprivate func loadModes(_ s: Statements) throws(PierError) {
        var loaded: [String: (mode: CollectionMode, purgeAfterPush: Bool)] = [:]
        let stmt = try s.connection.prepare("SELECT name, mode, purge_after_push FROM pier_collections")
        while try stmt.step() {
            if let name = stmt.string(0), let mode = CollectionMode(rawValue: Int32(stmt.int64(1))) {
                loaded[name] = (mode, stmt.int64(2) != 0)
            }
        }
        modes = loaded
    }

    /// Sets how a collection takes part in sync. `purgeAfterPush` (push-only collections)
    /// removes records locally once the server has acknowledged them.
    public func setCollectionMode(_ collection: String, _ mode: CollectionMode, purgeAfterPush: Bool = false) throws(PierError) {
        let s = try writable()
        try Validate.collection(collection)
        if purgeAfterPush && mode != .pushOnly {
            throw PierError(.invalid, "purgeAfterPush applies to push-only collections only")
        }
        try write(s) { (s: Statements) throws(PierError) in
            let stmt = try s.connection.prepare("INSERT OR REPLACE INTO pier_collections(name, mode, purge_after_push) VALUES (?1, ?2, ?3)")
            stmt.bind(1, collection)
            stmt.bind(2, Int64(mode.rawValue))
            stmt.bind(3, Int64(purgeAfterPush ? 1 : 0))
            try stmt.run()
            if mode == .localOnly {
                // Records already waiting to sync stay local from now on.
                let untrack = try s.connection.prepare("UPDATE pier_records SET is_modified = 0, sync_state = 0 WHERE collection = ?1 AND is_from_server = 0")
                untrack.bind(1, collection)
                try untrack.run()
            }
            try loadModes(s)
        }
    }

    /// The mode of a collection (two-way unless set).
    public func collectionMode(_ collection: String) -> CollectionMode {
        modes[collection]?.mode ?? .twoWay
    }

    /// Collections with a non-default mode.
    public var collectionModes: [String: (mode: CollectionMode, purgeAfterPush: Bool)] { modes }

    /// Runs `body` in one write transaction on the store's connection (the sync engine's
    /// entry point). Refused while the host has a transaction open.
    package func syncWrite<T>(_ body: (Connection) throws(PierError) -> T) throws(PierError) -> T {
        let s = try writable()
        if hostTransaction {
            throw PierError(.state, "a transaction is open on this store; commit or roll it back before syncing")
        }
        return try write(s) { (s: Statements) throws(PierError) -> T in
            let result = try body(s.connection)
            try saveCounters()
            return result
        }
    }

    /// Reads on the store's connection.
    package func syncRead<T>(_ body: (Connection) throws(PierError) -> T) throws(PierError) -> T {
        let s = try open()
        return try body(s.connection)
    }

    /// Merges a timestamp seen from the server into the store's clock.
    package func receiveHLC(_ value: HLC) {
        clock.receive(value)
    }

    /// A fresh HLC and local_seq for a write the sync engine makes on the user's behalf
    /// (a conflict resolution).
    package func stamp() -> (hlc: HLC, localSeq: Int64) {
        nextStamp()
    }
}

extension Statement {
    /// Binds `key` to ?1 and steps once.
    fileprivate func bindingRun(_ key: String) throws(PierError) -> Bool {
        bind(1, key)
        return try step()
    }

    fileprivate func bindRun(_ key: String, _ value: Int64) throws(PierError) {
        bind(1, key)
        bind(2, value)
        try run()
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for character in self {
            if character == target { out += replacement } else { out.append(character) }
        }
        return out
    }
}

/// The store's prepared statements, compiled once at open.
private final class Statements {
    let connection: Connection
    let begin, commit, rollback, savepoint, release, rollbackTo: Statement
    let dataVersion, newestPending, metaGet, metaSet: Statement
    let insert, upsert, patch, deleteLocal, tombstone: Statement
    let get, list, count, metadata, pending, parameters: Statement

    init(_ c: Connection) throws(PierError) {
        connection = c
        begin = try c.prepare("BEGIN IMMEDIATE")
        commit = try c.prepare("COMMIT")
        rollback = try c.prepare("ROLLBACK")
        savepoint = try c.prepare("SAVEPOINT pier_write")
        release = try c.prepare("RELEASE pier_write")
        rollbackTo = try c.prepare("ROLLBACK TO pier_write")
        dataVersion = try c.prepare("PRAGMA data_version")
        newestPending = try c.prepare("SELECT local_seq, hlc FROM pier_records WHERE is_modified = 1 ORDER BY local_seq DESC LIMIT 1")
        metaGet = try c.prepare("SELECT value FROM pier_meta WHERE key = ?1")
        metaSet = try c.prepare("INSERT OR REPLACE INTO pier_meta(key, value) VALUES (?1, ?2)")
        // A synced record keeps its server copy in `body` alone (server_body NULL); the
        // first local edit moves the old body into server_body as the base for merging.
        upsert = try c.prepare("""
            INSERT INTO pier_records(collection, id, body, scope, is_modified, is_active, hlc, local_seq, sync_state)
            VALUES (?1, ?2, ?3, ?4, ?8, 1, ?5, ?6, ?8)
            ON CONFLICT(collection, id) DO UPDATE SET
                body = excluded.body,
                scope = coalesce(?7, scope),
                is_modified = ?8, is_active = 1,
                hlc = excluded.hlc, local_seq = excluded.local_seq,
                sync_state = CASE WHEN ?8 = 0 THEN 0 WHEN sync_state = 2 THEN 2 ELSE 1 END,
                server_body = CASE WHEN is_from_server THEN coalesce(server_body, body) END,
                changed_fields = CASE WHEN is_from_server
                                      THEN \(ChangedFields.sql(new: "excluded.body", base: "coalesce(pier_records.server_body, pier_records.body)")) END
            """)
        insert = try c.prepare("""
            INSERT INTO pier_records(collection, id, body, scope, is_modified, is_active, hlc, local_seq, sync_state)
            VALUES (?1, ?2, ?3, ?4, ?7, 1, ?5, ?6, ?7)
            """)
        patch = try c.prepare("""
            UPDATE pier_records SET
                body = json_patch(body, ?3),
                is_modified = ?6,
                hlc = ?4, local_seq = ?5,
                sync_state = CASE WHEN ?6 = 0 THEN 0 WHEN sync_state = 2 THEN 2 ELSE 1 END,
                server_body = CASE WHEN is_from_server THEN coalesce(server_body, body) END,
                changed_fields = CASE WHEN is_from_server
                                      THEN \(ChangedFields.sql(new: "json_patch(body, ?3)", base: "coalesce(server_body, body)")) END
            WHERE collection = ?1 AND id = ?2 AND is_active = 1 AND length(CAST(json_patch(body, ?3) AS BLOB)) <= ?7
            RETURNING 1
            """)
        // Only a record the server has never mentioned (no server version, no conflict)
        // can vanish outright; anything else becomes a tombstone the server must hear of.
        // Never synced and not in a batch whose reply is outstanding: the server may have
        // applied that batch, so such a record is deleted with a tombstone like any other.
        deleteLocal = try c.prepare("""
            DELETE FROM pier_records WHERE collection = ?1 AND id = ?2 AND is_active = 1
                AND is_from_server = 0 AND server_version = 0 AND sync_state != 2
                AND NOT EXISTS (SELECT 1 FROM pier_inflight_items i WHERE i.collection = ?1 AND i.id = ?2)
            """)
        tombstone = try c.prepare("""
            UPDATE pier_records SET is_active = 0, is_modified = 1, hlc = ?3, local_seq = ?4,
                server_body = coalesce(server_body, body),
                changed_fields = NULL, sync_state = CASE sync_state WHEN 2 THEN 2 ELSE 1 END
            WHERE collection = ?1 AND id = ?2 AND is_active = 1
            """)
        get = try c.prepare("SELECT body FROM pier_records WHERE collection = ?1 AND id = ?2 AND is_active = 1")
        list = try c.prepare("SELECT id, body FROM pier_records WHERE collection = ?1 AND is_active = 1 AND id > ?2 ORDER BY id LIMIT ?3")
        count = try c.prepare("SELECT count(*) FROM pier_records WHERE collection = ?1 AND is_active = 1")
        metadata = try c.prepare("""
            SELECT body, scope, is_from_server, is_modified, is_active, base_version, hlc, local_seq,
                   changed_fields, CASE WHEN is_from_server THEN coalesce(server_body, body) END,
                   server_version, sync_state
            FROM pier_records WHERE collection = ?1 AND id = ?2
            """)
        pending = try c.prepare("SELECT count(*) FROM pier_records WHERE is_modified = 1 AND sync_state != 2")
        parameters = try c.prepare("SELECT type, atom, value FROM json_each(?1) WHERE json_type(?1) = 'array'")
    }
}
