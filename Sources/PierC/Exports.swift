// PierC: the implementation of include/pier.h, built into libpier.so.
//
// Owns the C ABI: handles, status codes, thread-local error messages, buffer ownership
// and the log callback. Every exported symbol is declared in pier.h and every
// declaration there is exported here (checked by scripts/check-symbols). Maps PierError
// to status codes in one place (`run`). Must not depend on Foundation, NIO or the server.
public import CPier
import Pier
import PierStore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Errors

/// The per-thread message of the last failure.
private let errorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { pointer in freeError(pointer) }
    return key
}()

/// Stored when the message itself cannot be copied, so pier_errmsg never reports "not an
/// error" right after a failure. It lives in the binary and is never freed.
private let outOfMemoryMessage: StaticString = "out of memory while recording the error"

/// Records the message of a failure for pier_errmsg on this thread and logs it (at
/// `level`, or error for internal errors and debug for the rest).
///
/// The log line goes first: the host's log callback runs on this thread and may make Pier
/// calls of its own, and one of those failing must not replace the message the caller is
/// about to read.
func setError(_ code: PierError.Code, _ message: String, level: LogLevel? = nil) -> Int32 {
    let level = level ?? (code == .internalError ? .error : .debug)
    PierLog.log(level, level == .debug ? "\(code.name): \(message)" : message)
    storeError(strdup(message))
    return code.rawValue
}

/// Replaces this thread's message; `copy` is malloc'd or NULL (strdup failed).
private func storeError(_ copy: UnsafeMutablePointer<CChar>?) {
    let old = pthread_getspecific(errorKey)
    pthread_setspecific(errorKey, copy.map { UnsafeMutableRawPointer($0) } ?? staticMessage(outOfMemoryMessage))
    freeError(old)
}

private func staticMessage(_ text: StaticString) -> UnsafeMutableRawPointer {
    UnsafeMutableRawPointer(mutating: UnsafeRawPointer(text.utf8Start))
}

/// Frees a stored message unless it is the static fallback.
private func freeError(_ pointer: UnsafeMutableRawPointer?) {
    guard let pointer, pointer != staticMessage(outOfMemoryMessage) else { return }
    free(pointer)
}

func fail(_ error: PierError) -> Int32 {
    setError(error.code, error.message)
}

/// Static C strings for pier_errstr and pier_errname, made once and never freed.
private struct StaticStrings: @unchecked Sendable {
    // Immutable after initialisation; the pointers address strdup'd memory that lives as
    // long as the process, so sharing them across threads is safe.
    let summaries: [Int32: UnsafePointer<CChar>]
    let names: [Int32: UnsafePointer<CChar>]
    let unknownSummary: UnsafePointer<CChar>
    let unknownName: UnsafePointer<CChar>
    let notAnError: UnsafePointer<CChar>
    let version: UnsafePointer<CChar>

    static let shared: StaticStrings = {
        var summaries: [Int32: UnsafePointer<CChar>] = [:]
        var names: [Int32: UnsafePointer<CChar>] = [:]
        for raw in Int32(-20)...0 {
            let code = PierError.Code(rawValue: raw)
            summaries[raw] = UnsafePointer(strdup(code.summary)!)
            names[raw] = UnsafePointer(strdup(code.name)!)
        }
        return StaticStrings(
            summaries: summaries, names: names,
            unknownSummary: UnsafePointer(strdup("unknown status code")!),
            unknownName: UnsafePointer(strdup("PIER_E_UNKNOWN")!),
            notAnError: UnsafePointer(strdup("not an error")!),
            version: UnsafePointer(strdup(versionString)!))
    }()
}

private let versionMajor: Int32 = 0
private let versionMinor: Int32 = 1
private let versionPatch: Int32 = 0
private let versionString = "\(versionMajor).\(versionMinor).\(versionPatch)"

@_cdecl("pier_version")
public func pier_version() -> UnsafePointer<CChar> { StaticStrings.shared.version }

@_cdecl("pier_version_number")
public func pier_version_number() -> Int32 { versionMajor * 10000 + versionMinor * 100 + versionPatch }

@_cdecl("pier_errmsg")
public func pier_errmsg() -> UnsafePointer<CChar> {
    if let message = pthread_getspecific(errorKey) {
        return UnsafePointer(message.assumingMemoryBound(to: CChar.self))
    }
    return StaticStrings.shared.notAnError
}

@_cdecl("pier_errstr")
public func pier_errstr(_ code: Int32) -> UnsafePointer<CChar> {
    StaticStrings.shared.summaries[code] ?? StaticStrings.shared.unknownSummary
}

@_cdecl("pier_errname")
public func pier_errname(_ code: Int32) -> UnsafePointer<CChar> {
    StaticStrings.shared.names[code] ?? StaticStrings.shared.unknownName
}

@_cdecl("pier_free")
public func pier_free(_ buffer: UnsafeMutableRawPointer?) { free(buffer) }

// MARK: - Logging

/// The host's callback and context pointer.
struct LogCallback: @unchecked Sendable {
    // The context pointer is only handed back to the host's own callback; pier.h documents
    // that the callback runs on any thread, so the host has agreed to that sharing.
    let function: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?) -> Void
    let context: UnsafeMutableRawPointer?
}

@_cdecl("pier_log_set_callback")
public func pier_log_set_callback(
    _ callback: (@convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?) -> Void)?,
    _ context: UnsafeMutableRawPointer?, _ minLevel: Int32
) -> Int32 {
    guard let level = LogLevel(rawValue: minLevel) else {
        return setError(.invalid, "min_level must be PIER_LOG_DEBUG (0) to PIER_LOG_ERROR (3), got \(minLevel)")
    }
    guard let callback else {
        PierLog.setSink(nil)
        return 0
    }
    let target = LogCallback(function: callback, context: context)
    PierLog.setSink({ level, message in
        message.withCString { target.function(target.context, level.rawValue, $0) }
    }, level: level)
    return 0
}

// MARK: - Ids

@_cdecl("pier_uuid7")
public func pier_uuid7(_ out: UnsafeMutablePointer<CChar>?) -> Int32 {
    guard let out else { return setError(.invalid, "out must point to a buffer of PIER_UUID_BUFFER_SIZE (37) bytes, got NULL") }
    let id = UUIDv7.make()
    _ = id.withCString { strncpy(out, $0, 37) }
    out[36] = 0
    return 0
}

// MARK: - Handles

/// What a `pier_db *` points to. The mutex serialises calls on one handle (pier.h's
/// threading rule); the database inside is only touched while it is held.
final class DatabaseHandle: Sendable {
    let database: Mutex<Database?>
    /// The thread inside a call on this handle (0 when none): a callback that calls back
    /// into the same handle from that thread gets PIER_ESTATE instead of a deadlock.
    let owner = Atomic<UInt>(0)
    init(_ database: consuming sending Database) { self.database = Mutex(database) }

    /// Whether a call on this handle is under way on the calling thread, so that taking
    /// the lock again would abort the process: a callback is calling back into it.
    var isBusyOnThisThread: Bool { owner.load(ordering: .relaxed) == currentThread() }

    /// The message of a call refused because `isBusyOnThisThread`.
    static func busyMessage(_ function: String) -> String {
        "\(function) was called on a handle that is busy with a call on this thread (a callback may not call back into the handle it was called from); call it after that call returns"
    }
}

@inline(__always) private func currentThread() -> UInt { UInt(pthread_self()) }

/// Runs `body` with the handle's database, mapping every failure to a status code.
@inline(__always)
func withDatabase(_ handle: OpaquePointer?, _ body: (Database) throws(PierError) -> Void) -> Int32 {
    guard let handle else { return setError(.invalid, "db is NULL; pass a handle from pier_db_open") }
    let box = Unmanaged<DatabaseHandle>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
    if box.isBusyOnThisThread {
        return setError(.state, "this handle is busy with a call on this thread (a callback may not call back into the handle it was called from)")
    }
    let outcome: PierError? = box.database.withLock { database in
        box.owner.store(currentThread(), ordering: .relaxed)
        defer { box.owner.store(0, ordering: .relaxed) }
        guard let database, database.isOpen else {
            return PierError(.closed, "the store is closed; open it again with pier_db_open")
        }
        do throws(PierError) {
            try body(database)
            return nil
        } catch {
            return error
        }
    }
    if let outcome { return fail(outcome) }
    return 0
}

/// A NUL-terminated UTF-8 argument.
@inline(__always)
func text(_ pointer: UnsafePointer<CChar>?, _ name: StaticString) throws(PierError) -> String {
    guard let pointer else { throw PierError(.invalid, "\(name) is NULL") }
    guard let value = String(validatingCString: pointer) else { throw PierError(.invalid, "\(name) is not valid UTF-8") }
    return value
}

@inline(__always)
func buffer(_ pointer: UnsafePointer<CChar>?, _ length: Int, _ name: StaticString) throws(PierError) -> UnsafeRawBufferPointer {
    guard let pointer else { throw PierError(.invalid, "\(name) is NULL") }
    guard length >= 0 else { throw PierError(.invalid, "\(name)_len is too large") }
    return UnsafeRawBufferPointer(start: pointer, count: length)
}

/// Copies bytes into a malloc'd NUL-terminated buffer the caller frees with pier_free.
func hand(_ bytes: UnsafeRawBufferPointer, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, _ outLength: UnsafeMutablePointer<Int>?) throws(PierError) {
    guard let memory = malloc(bytes.count + 1) else { throw PierError(.noMemory, "cannot allocate \(bytes.count + 1) bytes") }
    if let base = bytes.baseAddress, bytes.count > 0 { memcpy(memory, base, bytes.count) }
    memory.storeBytes(of: 0, toByteOffset: bytes.count, as: UInt8.self)
    out.pointee = memory.assumingMemoryBound(to: CChar.self)
    outLength?.pointee = bytes.count
}

func hand(_ writer: JSONWriter, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, _ outLength: UnsafeMutablePointer<Int>?) throws(PierError) {
    try withBytes(writer.bytes) { (bytes) throws(PierError) in try hand(bytes, out, outLength) }
}

func hand(_ string: String, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, _ outLength: UnsafeMutablePointer<Int>?) throws(PierError) {
    try withUTF8Bytes(string) { (bytes) throws(PierError) in try hand(bytes, out, outLength) }
}

/// Clears out-parameters first so they are NULL on every failure path.
@inline(__always)
func clear(_ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ outLength: UnsafeMutablePointer<Int>?) {
    out?.pointee = nil
    outLength?.pointee = 0
}

func required<T>(_ pointer: UnsafeMutablePointer<T>?, _ name: StaticString) throws(PierError) -> UnsafeMutablePointer<T> {
    guard let pointer else { throw PierError(.invalid, "\(name) is NULL; pass a pointer to receive the result") }
    return pointer
}

// MARK: - Open and close

@_cdecl("pier_db_open")
public func pier_db_open(_ outDB: UnsafeMutablePointer<OpaquePointer?>?, _ path: UnsafePointer<CChar>?, _ options: UnsafeRawPointer?) -> Int32 {
    outDB?.pointee = nil
    do throws(PierError) {
        let out = try required(outDB, "out_db")
        let path = try text(path, "path")
        let storeOptions = try openOptions(options)
        let database = try Database(path: path, options: storeOptions)
        let handle = DatabaseHandle(database)
        out.pointee = OpaquePointer(Unmanaged.passRetained(handle).toOpaque())
        return 0
    } catch {
        return fail(error)
    }
}

/// Reads a `pier_open_options` according to its version field.
func openOptions(_ raw: UnsafeRawPointer?) throws(PierError) -> StoreOptions {
    var options = StoreOptions()
    guard let raw else { return options }
    // Layout of version 1 (see pier.h): unsigned version; int durability; unsigned flags;
    // const char *default_scope; size_t max_body_bytes; int busy_timeout_ms.
    struct V1 {
        var version: UInt32
        var durability: Int32
        var flags: UInt32
        var defaultScope: UnsafePointer<CChar>?
        var maxBodyBytes: Int
        var busyTimeoutMs: Int32
    }
    let version = raw.load(as: UInt32.self)
    guard version >= 1 else {
        throw PierError(.invalid, "options->version is 0; initialise options with PIER_OPEN_OPTIONS_INIT")
    }
    let v1 = raw.load(as: V1.self)
    switch v1.durability {
    case 0: options.durability = .normal
    case 1: options.durability = .full
    default: throw PierError(.invalid, "options->durability must be PIER_DURABILITY_NORMAL or PIER_DURABILITY_FULL, got \(v1.durability)")
    }
    if v1.flags & ~UInt32(0x3) != 0 {
        throw PierError(.invalid, "options->flags has unknown bits 0x\(String(v1.flags & ~UInt32(0x3), radix: 16))")
    }
    options.readOnly = v1.flags & 0x1 != 0
    options.mustExist = v1.flags & 0x2 != 0
    if let scope = v1.defaultScope { options.defaultScope = try text(scope, "options->default_scope") }
    if v1.maxBodyBytes != 0 { options.maxBodyBytes = v1.maxBodyBytes }
    if v1.busyTimeoutMs > 0 { options.busyTimeoutMilliseconds = v1.busyTimeoutMs } else if v1.busyTimeoutMs < 0 { options.busyTimeoutMilliseconds = 0 }
    if version >= 2 {
        let v2 = raw.load(as: pier_open_options.self)
        if let key = v2.key { options.encryption = try storeKey(key, "options->key") }
    }
    return options
}

@_cdecl("pier_db_close")
public func pier_db_close(_ handle: OpaquePointer?) -> Int32 {
    guard let handle else { return setError(.invalid, "db is NULL; pass a handle from pier_db_open") }
    let box = Unmanaged<DatabaseHandle>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
    // From a callback of a call on this handle the lock is already held by this thread.
    if box.isBusyOnThisThread { return setError(.state, DatabaseHandle.busyMessage("pier_db_close")) }
    box.database.withLock { database in database?.close() }
    return 0
}

@_cdecl("pier_db_free")
public func pier_db_free(_ handle: OpaquePointer?) {
    guard let handle else { return }
    let unmanaged = Unmanaged<DatabaseHandle>.fromOpaque(UnsafeRawPointer(handle))
    // From a callback of a call on this handle: nothing is closed or released (the call
    // under way still uses the handle); there is no status to return, so say it twice.
    if unmanaged.takeUnretainedValue().isBusyOnThisThread {
        _ = setError(.state, DatabaseHandle.busyMessage("pier_db_free") + "; the handle was not freed", level: .warning)
        return
    }
    let box = unmanaged.takeRetainedValue()
    box.database.withLock { database in
        database?.close()
        database = nil
    }
}

// MARK: - Writes

@_cdecl("pier_db_put")
public func pier_db_put(_ handle: OpaquePointer?, _ collection: UnsafePointer<CChar>?, _ id: UnsafePointer<CChar>?,
                        _ body: UnsafePointer<CChar>?, _ bodyLength: Int) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in
        try database.store.put(try text(collection, "collection"), id: try text(id, "id"), body: try buffer(body, bodyLength, "body"))
    }
}

@_cdecl("pier_db_put_scoped")
public func pier_db_put_scoped(_ handle: OpaquePointer?, _ collection: UnsafePointer<CChar>?, _ id: UnsafePointer<CChar>?,
                               _ scope: UnsafePointer<CChar>?, _ body: UnsafePointer<CChar>?, _ bodyLength: Int) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in
        try database.store.put(try text(collection, "collection"), id: try text(id, "id"),
                               body: try buffer(body, bodyLength, "body"), scope: try text(scope, "scope"))
    }
}

@_cdecl("pier_db_put_many")
public func pier_db_put_many(_ handle: OpaquePointer?, _ collection: UnsafePointer<CChar>?,
                             _ ids: UnsafePointer<UnsafePointer<CChar>?>?, _ bodies: UnsafePointer<UnsafePointer<CChar>?>?,
                             _ lengths: UnsafePointer<Int>?, _ count: Int) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in
        let collection = try text(collection, "collection")
        guard count >= 0 else { throw PierError(.invalid, "count is too large") }
        guard count == 0 || (ids != nil && bodies != nil && lengths != nil) else {
            throw PierError(.invalid, "ids, bodies and body_lens must not be NULL when count > 0")
        }
        try database.store.putMany(collection, count: count, scope: nil) { (index, put) throws(PierError) in
            try put(try text(ids![index], "id"), try buffer(bodies![index], lengths![index], "body"))
        }
    }
}

@_cdecl("pier_db_patch")
public func pier_db_patch(_ handle: OpaquePointer?, _ collection: UnsafePointer<CChar>?, _ id: UnsafePointer<CChar>?,
                          _ patch: UnsafePointer<CChar>?, _ patchLength: Int) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in
        try database.store.patch(try text(collection, "collection"), id: try text(id, "id"), patch: try buffer(patch, patchLength, "patch"))
    }
}

@_cdecl("pier_db_delete")
public func pier_db_delete(_ handle: OpaquePointer?, _ collection: UnsafePointer<CChar>?, _ id: UnsafePointer<CChar>?) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in
        try database.store.delete(try text(collection, "collection"), id: try text(id, "id"))
    }
}

// MARK: - Reads

@_cdecl("pier_db_get")
public func pier_db_get(_ handle: OpaquePointer?, _ outBody: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                        _ outLength: UnsafeMutablePointer<Int>?, _ collection: UnsafePointer<CChar>?, _ id: UnsafePointer<CChar>?) -> Int32 {
    clear(outBody, outLength)
    return withDatabase(handle) { (database) throws(PierError) in
        let out = try required(outBody, "out_body")
        try database.store.withBody(try text(collection, "collection"), id: try text(id, "id")) { (bytes) throws(PierError) in
            try hand(bytes, out, outLength)
        }
    }
}

@_cdecl("pier_db_list")
public func pier_db_list(_ handle: OpaquePointer?, _ outJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                         _ outLength: UnsafeMutablePointer<Int>?, _ collection: UnsafePointer<CChar>?,
                         _ afterID: UnsafePointer<CChar>?, _ limit: Int) -> Int32 {
    clear(outJSON, outLength)
    return withDatabase(handle) { (database) throws(PierError) in
        let out = try required(outJSON, "out_json")
        let after = afterID == nil ? nil : try text(afterID, "after_id")
        // size_t values past Int.max (SIZE_MAX is the usual "all") mean no limit.
        try hand(try database.store.listJSON(try text(collection, "collection"), after: after, limit: limit < 0 ? Int.max : limit), out, outLength)
    }
}

@_cdecl("pier_db_count")
public func pier_db_count(_ handle: OpaquePointer?, _ outCount: UnsafeMutablePointer<Int64>?, _ collection: UnsafePointer<CChar>?) -> Int32 {
    outCount?.pointee = 0
    return withDatabase(handle) { (database) throws(PierError) in
        let out = try required(outCount, "out_count")
        out.pointee = try database.store.count(try text(collection, "collection"))
    }
}

@_cdecl("pier_db_query")
public func pier_db_query(_ handle: OpaquePointer?, _ outJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                          _ outLength: UnsafeMutablePointer<Int>?, _ sql: UnsafePointer<CChar>?, _ parameters: UnsafePointer<CChar>?) -> Int32 {
    clear(outJSON, outLength)
    return withDatabase(handle) { (database) throws(PierError) in
        let out = try required(outJSON, "out_json")
        let parameters = parameters == nil ? nil : try text(parameters, "params_json")
        try hand(try database.store.query(try text(sql, "sql"), parametersJSON: parameters), out, outLength)
    }
}

@_cdecl("pier_db_create_index")
public func pier_db_create_index(_ handle: OpaquePointer?, _ collection: UnsafePointer<CChar>?, _ field: UnsafePointer<CChar>?) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in
        try database.store.createIndex(try text(collection, "collection"), field: try text(field, "field"))
    }
}

// MARK: - Transactions

@_cdecl("pier_db_begin")
public func pier_db_begin(_ handle: OpaquePointer?) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in try database.store.begin() }
}

@_cdecl("pier_db_commit")
public func pier_db_commit(_ handle: OpaquePointer?) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in try database.store.commit() }
}

@_cdecl("pier_db_rollback")
public func pier_db_rollback(_ handle: OpaquePointer?) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in try database.store.rollback() }
}

// MARK: - Metadata

@_cdecl("pier_db_state")
public func pier_db_state(_ handle: OpaquePointer?, _ outState: UnsafeMutablePointer<Int32>?,
                          _ collection: UnsafePointer<CChar>?, _ id: UnsafePointer<CChar>?) -> Int32 {
    outState?.pointee = 0
    return withDatabase(handle) { (database) throws(PierError) in
        let out = try required(outState, "out_state")
        out.pointee = try database.store.syncState(try text(collection, "collection"), id: try text(id, "id")).rawValue
    }
}

@_cdecl("pier_db_metadata")
public func pier_db_metadata(_ handle: OpaquePointer?, _ outJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                             _ outLength: UnsafeMutablePointer<Int>?, _ collection: UnsafePointer<CChar>?, _ id: UnsafePointer<CChar>?) -> Int32 {
    clear(outJSON, outLength)
    return withDatabase(handle) { (database) throws(PierError) in
        let out = try required(outJSON, "out_json")
        let meta = try database.store.metadata(try text(collection, "collection"), id: try text(id, "id"))
        try hand(meta.json, out, outLength)
    }
}

@_cdecl("pier_db_client_id")
public func pier_db_client_id(_ handle: OpaquePointer?, _ outID: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    clear(outID, nil)
    return withDatabase(handle) { (database) throws(PierError) in
        try hand(database.clientID, try required(outID, "out_id"), nil)
    }
}

@_cdecl("pier_db_info")
public func pier_db_info(_ handle: OpaquePointer?, _ outJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                         _ outLength: UnsafeMutablePointer<Int>?) -> Int32 {
    clear(outJSON, outLength)
    return withDatabase(handle) { (database) throws(PierError) in
        let out = try required(outJSON, "out_json")
        try hand(try database.store.summaryJSON(), out, outLength)
    }
}
