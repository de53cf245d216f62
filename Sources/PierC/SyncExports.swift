// The sync half of include/pier.h: the client's pier_sync, conflicts, collection modes,
// and the pier_server_* handler over an SQLite master store. Option and report structs
// come from the header itself (module CPier), so their layout is the C layout.
public import CPier
import Pier
import PierCurl
import PierServer
import PierStore
import PierSync
import PierWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Server handles

final class ServerHandle: Sendable {
    let server: Mutex<SyncServer?>
    /// The threads running this server's resolver callback. The resolver closures hold
    /// this, not the handle (the server holds the closures: no cycle).
    let resolving = ResolvingThreads()
    init(_ server: SyncServer) { self.server = Mutex(server) }

    static func from(_ pointer: OpaquePointer?) throws(PierError) -> ServerHandle {
        guard let pointer else { throw PierError(.invalid, "server is NULL; pass a handle from pier_server_open") }
        return Unmanaged<ServerHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    /// The handle, unless the calling thread is inside its resolver: pier.h promises
    /// PIER_ESTATE there, where the call would otherwise abort on the store's lock (close),
    /// succeed on an error frame (handle) or swap resolvers mid-batch (set_resolver).
    static func enter(_ pointer: OpaquePointer?, _ function: StaticString) throws(PierError) -> ServerHandle {
        let handle = try from(pointer)
        if handle.resolving.containsCurrentThread { throw PierError(.state, busyMessage(function)) }
        return handle
    }

    static func busyMessage(_ function: StaticString) -> String {
        "\(function) was called from this server's resolver; a resolver may not call back into its server (make the call after pier_server_handle or pier_sync returns)"
    }

    /// The open server. SyncServer is thread-safe, so calls run outside the handle's lock.
    func open() throws(PierError) -> SyncServer {
        guard let server = server.withLock({ $0 }) else { throw PierError(.closed, "the server is closed") }
        return server
    }
}

/// The threads inside a server's resolver callback (a thread appears once per nested call).
final class ResolvingThreads: Sendable {
    private let threads = Mutex<[UInt]>([])

    var containsCurrentThread: Bool {
        let me = UInt(pthread_self())
        return threads.withLock { $0.contains(me) }
    }

    /// Runs `body` with the calling thread marked as inside the resolver.
    func marking<R>(_ body: () -> R) -> R {
        let me = UInt(pthread_self())
        threads.withLock { $0.append(me) }
        defer {
            threads.withLock { list in
                if let index = list.lastIndex(of: me) { list.remove(at: index) }
            }
        }
        return body()
    }
}

private func serverCall(_ pointer: OpaquePointer?, _ function: StaticString, _ body: (SyncServer) throws(PierError) -> Void) -> Int32 {
    do throws(PierError) {
        try body(try ServerHandle.enter(pointer, function).open())
        return 0
    } catch {
        return fail(error)
    }
}

@_cdecl("pier_server_open")
public func pier_server_open(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ path: UnsafePointer<CChar>?, _ config: UnsafePointer<CChar>?) -> Int32 {
    out?.pointee = nil
    do throws(PierError) {
        let out = try required(out, "out_server")
        let configuration = config == nil ? ServerConfig() : try ServerConfig.parse(json: try text(config, "config_json"))
        let server = SyncServer(store: try SQLiteMasterStore(path: try text(path, "path")), config: configuration)
        out.pointee = OpaquePointer(Unmanaged.passRetained(ServerHandle(server)).toOpaque())
        return 0
    } catch {
        return fail(error)
    }
}

@_cdecl("pier_server_close")
public func pier_server_close(_ pointer: OpaquePointer?) -> Int32 {
    do throws(PierError) {
        let handle = try ServerHandle.enter(pointer, "pier_server_close")
        let server = handle.server.withLock { server -> SyncServer? in
            defer { server = nil }
            return server
        }
        (server?.store as? SQLiteMasterStore)?.close()
        return 0
    } catch {
        return fail(error)
    }
}

@_cdecl("pier_server_free")
public func pier_server_free(_ pointer: OpaquePointer?) {
    guard let pointer else { return }
    let unmanaged = Unmanaged<ServerHandle>.fromOpaque(UnsafeRawPointer(pointer))
    // From its own resolver: nothing is closed or released (the batch under way still
    // uses the server); there is no status to return, so say it twice.
    if unmanaged.takeUnretainedValue().resolving.containsCurrentThread {
        _ = setError(.state, ServerHandle.busyMessage("pier_server_free") + "; the handle was not freed", level: .warning)
        return
    }
    _ = pier_server_close(pointer)
    unmanaged.release()
}

/// PIER_MAX_IDENTITY_SCOPES: the longest scope list an identity may carry.
private let maxIdentityScopes = 65_536

/// Reads a pier_identity (NULL = trusted local).
func identity(_ raw: UnsafePointer<pier_identity>?) throws(PierError) -> Identity {
    guard let raw else { return .trusted() }
    let value = raw.pointee
    guard value.version >= 1 else { throw PierError(.invalid, "identity->version is 0; initialise it with PIER_IDENTITY_INIT") }
    // size_t arrives as Int: a count past Int.max is negative here.
    func scopes(_ list: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int, _ field: StaticString) throws(PierError) -> Set<String>? {
        guard count >= 0, count <= maxIdentityScopes else {
            throw PierError(.invalid, "identity->\(field)_count must be 0-\(maxIdentityScopes) (PIER_MAX_IDENTITY_SCOPES), got \(UInt(bitPattern: count))")
        }
        guard let list else {
            // NULL with a count is a list the caller forgot, not "every scope".
            guard count == 0 else {
                throw PierError(.invalid, "identity->\(field)s is NULL but identity->\(field)_count is \(count); pass the array, or NULL with a count of 0 for every scope")
            }
            return nil
        }
        var out = Set<String>()
        for index in 0..<count {
            guard let name = list[index] else { throw PierError(.invalid, "identity->\(field)s[\(index)] is NULL") }
            guard let scope = String(validatingCString: name) else { throw PierError(.invalid, "identity->\(field)s[\(index)] is not valid UTF-8") }
            out.insert(scope)
        }
        return out
    }
    let user = value.user == nil ? "local" : try text(value.user, "identity->user")
    return Identity(user: user, readScopes: try scopes(value.read_scopes, value.read_scope_count, "read_scope"),
                    writeScopes: try scopes(value.write_scopes, value.write_scope_count, "write_scope"),
                    isAdmin: value.is_admin != 0)
}

@_cdecl("pier_server_handle")
public func pier_server_handle(_ pointer: OpaquePointer?, _ outFrame: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                               _ outLength: UnsafeMutablePointer<Int>?, _ request: UnsafePointer<UInt8>?, _ requestLength: Int,
                               _ who: UnsafePointer<pier_identity>?) -> Int32 {
    outFrame?.pointee = nil
    outLength?.pointee = 0
    return serverCall(pointer, "pier_server_handle") { (server) throws(PierError) in
        let out = try required(outFrame, "out_frame")
        guard let request else { throw PierError(.invalid, "request is NULL; pass the bytes of the request frame") }
        guard requestLength >= 0 else { throw PierError(.invalid, "request_len is too large (\(UInt(bitPattern: requestLength)) as size_t)") }
        let frame = server.handle(frame: Array(UnsafeBufferPointer(start: request, count: requestLength)), identity: try identity(who))
        let result: Result<Void, PierError> = out.withMemoryRebound(to: UnsafeMutablePointer<CChar>?.self, capacity: 1) { p in
            do throws(PierError) { try withBytes(frame) { (bytes) throws(PierError) in try hand(bytes, p, outLength) }; return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }
}

@_cdecl("pier_server_log")
public func pier_server_log(_ pointer: OpaquePointer?, _ outJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                            _ outLength: UnsafeMutablePointer<Int>?, _ filter: UnsafePointer<CChar>?) -> Int32 {
    clear(outJSON, outLength)
    return serverCall(pointer, "pier_server_log") { (server) throws(PierError) in
        let out = try required(outJSON, "out_json")
        let parsed = filter == nil ? LogFilter() : try LogFilter.parse(json: try text(filter, "filter_json"))
        try hand(jsonArray(try server.log(parsed)) { $0.json }, out, outLength)
    }
}

@_cdecl("pier_server_conflicts")
public func pier_server_conflicts(_ pointer: OpaquePointer?, _ outJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                                  _ outLength: UnsafeMutablePointer<Int>?, _ collection: UnsafePointer<CChar>?, _ openOnly: Int32) -> Int32 {
    clear(outJSON, outLength)
    return serverCall(pointer, "pier_server_conflicts") { (server) throws(PierError) in
        let out = try required(outJSON, "out_json")
        let name = collection == nil ? nil : try text(collection, "collection")
        try hand(jsonArray(try server.conflicts(ConflictFilter(collection: name, openOnly: openOnly != 0, limit: 10_000))) { $0.json }, out, outLength)
    }
}

@_cdecl("pier_server_purge_tombstones")
public func pier_server_purge_tombstones(_ pointer: OpaquePointer?, _ outPurged: UnsafeMutablePointer<Int64>?, _ horizon: Int64) -> Int32 {
    outPurged?.pointee = 0
    return serverCall(pointer, "pier_server_purge_tombstones") { (server) throws(PierError) in
        let count = try server.purgeTombstones(horizonMilliseconds: horizon < 0 ? nil : horizon)
        outPurged?.pointee = Int64(count)
    }
}

/// The host's resolver function and context.
private struct ResolverCallback: @unchecked Sendable {
    // The context is only handed back to the host's callback, which pier.h says runs on
    // the thread calling pier_server_handle; the host owns its thread-safety.
    let function: pier_resolver_cb
    let context: UnsafeMutableRawPointer?
}

@_cdecl("pier_server_set_resolver")
public func pier_server_set_resolver(_ pointer: OpaquePointer?, _ collection: UnsafePointer<CChar>?,
                                     _ callback: pier_resolver_cb?, _ context: UnsafeMutableRawPointer?) -> Int32 {
    serverCall(pointer, "pier_server_set_resolver") { (server) throws(PierError) in
        let name = try text(collection, "collection")
        guard let callback else {
            server.setResolver(name, nil)
            return
        }
        let target = ResolverCallback(function: callback, context: context)
        let resolving = try ServerHandle.from(pointer).resolving
        server.setResolver(name) { input in
            input.collection.withCString { collection in
                input.id.withCString { id in
                    input.clientID.withCString { clientID in
                        input.user.withCString { user in
                            withOptionalBytes(input.clientBody) { client in
                                withOptionalBytes(input.serverBody) { serverBody in
                                    var c = pier_resolver_input(
                                        version: 1, collection: collection, id: id,
                                        client_body: client.baseAddress?.assumingMemoryBound(to: CChar.self), client_body_len: client.count,
                                        server_body: serverBody.baseAddress?.assumingMemoryBound(to: CChar.self), server_body_len: serverBody.count,
                                        base_version: input.baseVersion, server_version: input.serverVersion,
                                        client_hlc: input.clientHLC.rawValue, server_hlc: input.serverHLC.rawValue,
                                        client_id: clientID, user: user)
                                    var body: UnsafePointer<CChar>?
                                    var length = 0
                                    let decision = resolving.marking { target.function(target.context, &c, &body, &length) }
                                    switch decision {
                                    case PIER_DECIDE_KEEP_BODY:
                                        guard let body else { return .manual }
                                        return .keep(Array(UnsafeRawBufferPointer(start: body, count: length)))
                                    case PIER_DECIDE_KEEP_SERVER: return .keepServer
                                    case PIER_DECIDE_REJECT: return .reject("custom")
                                    default: return .manual
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Lends optional bytes as a buffer whose base address is NULL when absent.
private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    guard let bytes else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
    if bytes.isEmpty { return [UInt8(0)].withUnsafeBytes { body(UnsafeRawBufferPointer(start: $0.baseAddress, count: 0)) } }
    return bytes.withUnsafeBytes(body)
}

// MARK: - Client sync

@_cdecl("pier_db_set_collection_mode")
public func pier_db_set_collection_mode(_ handle: OpaquePointer?, _ collection: UnsafePointer<CChar>?, _ mode: Int32, _ purge: Int32) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in
        guard let value = CollectionMode(rawValue: mode) else {
            throw PierError(.invalid, "mode must be PIER_MODE_TWO_WAY, PIER_MODE_PULL_ONLY, PIER_MODE_PUSH_ONLY or PIER_MODE_LOCAL_ONLY, got \(mode)")
        }
        try database.setCollectionMode(try text(collection, "collection"), value, purgeAfterPush: purge != 0)
    }
}

/// A transport that calls the host's function.
private struct HostTransport: SyncTransport {
    let function: pier_transport_cb
    let context: UnsafeMutableRawPointer?

    func roundTrip(_ request: [UInt8]) throws(PierError) -> [UInt8] {
        var response: UnsafePointer<UInt8>?
        var length = 0
        let status = request.withUnsafeBufferPointer { function(context, $0.baseAddress, $0.count, &response, &length) }
        guard status == 0 else {
            let code = PierError.Code(rawValue: status < 0 ? status : PierError.Code.network.rawValue)
            throw PierError(code, "the transport callback failed with \(code.name)")
        }
        guard let response else { throw PierError(.network, "the transport callback returned no response") }
        return Array(UnsafeBufferPointer(start: response, count: length))
    }
}

@_cdecl("pier_sync")
public func pier_sync(_ handle: OpaquePointer?, _ outReport: UnsafeMutablePointer<pier_sync_report>?,
                      _ rawOptions: UnsafePointer<pier_sync_options>?) -> Int32 {
    var report = SyncReport()
    let status = withDatabase(handle) { (database) throws(PierError) in
        let o = try syncOptions(rawOptions)
        var options = SyncOptions()
        if o.max_batch_changes > 0 { options.maxBatchChanges = o.max_batch_changes }
        if o.max_batch_bytes > 0 { options.maxBatchBytes = o.max_batch_bytes }
        if o.pull_max_records > 0 { options.pullMaxRecords = o.pull_max_records }
        if o.pull_max_bytes > 0 { options.pullMaxBytes = o.pull_max_bytes }
        options.blockOnlyConflicted = o.block_only_conflicted != 0

        let chosen = (o.server != nil ? 1 : 0) + (o.transport != nil ? 1 : 0) + (o.url != nil ? 1 : 0)
        guard chosen == 1 else {
            throw PierError(.invalid, chosen == 0
                ? "options has no transport; set one of server (in-process), transport (a callback) or url (HTTP)"
                : "options sets more than one of server, transport and url; set exactly one")
        }
        guard o.url != nil || (o.token == nil && o.ca_file == nil) else {
            throw PierError(.invalid, "options->token and options->ca_file apply only with options->url")
        }
        let transport: any SyncTransport
        if let server = o.server {
            transport = InProcessTransport(server: try ServerHandle.enter(server, "pier_sync").open(), identity: try identity(o.identity))
        } else if let function = o.transport {
            transport = HostTransport(function: function, context: o.transport_ctx)
        } else {
            transport = try httpTransport(o)
        }

        var progress: ((SyncProgress) -> Void)?
        if let function = o.progress {
            let context = o.progress_ctx
            progress = { p in
                var c = pier_sync_progress(version: 1, round_trips: Int64(p.roundTrips), pushed: Int64(p.pushed),
                                           pending: p.pending, pulled: Int64(p.pulled), pulling: p.pulling ? 1 : 0)
                function(context, &c)
            }
        }
        var resolver: ConflictResolver?
        if let function = o.resolver {
            let context = o.resolver_ctx
            resolver = { conflict in
                var resolution: Resolution?
                conflict.conflictID.withCString { conflictID in
                    conflict.collection.withCString { collection in
                        conflict.id.withCString { id in
                            withOptionalCString(conflict.localBody) { local in
                                withOptionalCString(conflict.serverBody) { server in
                                    withOptionalCString(conflict.baseBody) { base in
                                        var c = pier_conflict(version: 1, conflict_id: conflictID, collection: collection, id: id,
                                                              local_body: local, server_body: server, base_body: base,
                                                              base_version: conflict.baseVersion, server_version: conflict.serverVersion)
                                        var body: UnsafePointer<CChar>?
                                        var length = 0
                                        switch function(context, &c, &body, &length) {
                                        case PIER_RESOLVE_KEEP_LOCAL: resolution = .keepLocal
                                        case PIER_RESOLVE_KEEP_SERVER: resolution = .keepServer
                                        case PIER_RESOLVE_MERGED:
                                            if let body {
                                                resolution = .merged(String(decoding: UnsafeRawBufferPointer(start: body, count: length), as: UTF8.self))
                                            }
                                        default: resolution = nil
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                return resolution
            }
        }
        let engine = SyncEngine(store: database.store, options: options, resolver: resolver)
        defer { report = engine.report }
        try Sync.drive(engine, over: transport, progress: progress)
    }
    if let outReport, outReport.pointee.version >= 1 {
        let version = outReport.pointee.version
        var r = pier_sync_report()
        r.version = version
        r.pushed = Int64(report.pushed)
        r.applied = Int64(report.applied)
        r.merged = Int64(report.merged)
        r.superseded = Int64(report.superseded)
        r.rejected = Int64(report.rejected)
        r.conflicts = Int64(report.conflicts)
        r.pulled = Int64(report.pulled)
        r.bytes_sent = Int64(report.bytesSent)
        r.bytes_sent_raw = Int64(report.bytesSentRaw)
        r.bytes_received = Int64(report.bytesReceived)
        r.bytes_received_raw = Int64(report.bytesReceivedRaw)
        r.round_trips = Int64(report.roundTrips)
        r.duration_ms = Double(report.durationNanoseconds) / 1e6
        r.resynced = report.resynced ? 1 : 0
        r.replayed_batch = report.replayedBatch ? 1 : 0
        outReport.pointee = r
    }
    return status
}

/// The caller's options as a current-version struct: a version-1 caller's struct ends
/// before the HTTP fields, so only its prefix is read and the rest stays zero (defaults).
private func syncOptions(_ raw: UnsafePointer<pier_sync_options>?) throws(PierError) -> pier_sync_options {
    guard let raw else { throw PierError(.invalid, "options is NULL; set a server, a transport or a url in PIER_SYNC_OPTIONS_INIT") }
    let version = UnsafeRawPointer(raw).load(as: UInt32.self)
    guard version >= 1 else { throw PierError(.invalid, "options->version is 0; initialise options with PIER_SYNC_OPTIONS_INIT") }
    if version >= 2 { return raw.pointee }
    var options = pier_sync_options()
    let v1Size = MemoryLayout<pier_sync_options>.offset(of: \pier_sync_options.url)!
    withUnsafeMutableBytes(of: &options) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: v1Size)) }
    return options
}

/// The built-in HTTP transport the version-2 fields describe.
private func httpTransport(_ o: pier_sync_options) throws(PierError) -> HTTPTransport {
    var configuration = HTTPTransport.Configuration()
    if o.connect_timeout_ms > 0 { configuration.connectTimeoutMilliseconds = Int(o.connect_timeout_ms) }
    if o.timeout_ms > 0 { configuration.timeoutMilliseconds = Int(o.timeout_ms) }
    var retry = RetryPolicy.default
    if o.max_attempts > 0 { retry.maxAttempts = Int(o.max_attempts) }
    if o.retry_base_delay_ms > 0 { retry.baseDelayMilliseconds = Int(o.retry_base_delay_ms) }
    if o.retry_max_delay_ms > 0 { retry.maxDelayMilliseconds = Int(o.retry_max_delay_ms) }
    configuration.retry = retry
    if o.max_response_bytes > 0 { configuration.maxResponseBytes = min(Int(o.max_response_bytes), Int.max) }
    if o.ca_file != nil { configuration.caFile = try text(o.ca_file, "options->ca_file") }
    let token = o.token == nil ? nil : try text(o.token, "options->token")
    return try HTTPTransport(baseURL: try text(o.url, "options->url"), token: token, configuration: configuration)
}

private func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let text else { return body(nil) }
    return text.withCString { body($0) }
}

@_cdecl("pier_db_conflicts")
public func pier_db_conflicts(_ handle: OpaquePointer?, _ outJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                              _ outLength: UnsafeMutablePointer<Int>?) -> Int32 {
    clear(outJSON, outLength)
    return withDatabase(handle) { (database) throws(PierError) in
        let out = try required(outJSON, "out_json")
        try hand(jsonArray(try database.conflicts()) { $0.json }, out, outLength)
    }
}

@_cdecl("pier_db_resolve")
public func pier_db_resolve(_ handle: OpaquePointer?, _ conflictID: UnsafePointer<CChar>?, _ resolution: Int32,
                            _ body: UnsafePointer<CChar>?, _ bodyLength: Int) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in
        let id = try text(conflictID, "conflict_id")
        switch resolution {
        case PIER_RESOLVE_KEEP_LOCAL: try database.resolve(id, .keepLocal)
        case PIER_RESOLVE_KEEP_SERVER: try database.resolve(id, .keepServer)
        case PIER_RESOLVE_MERGED:
            let bytes = try buffer(body, bodyLength, "body")
            guard let merged = String(validating: bytes, as: UTF8.self) else { throw PierError(.invalid, "body is not valid UTF-8") }
            try database.resolve(id, .merged(merged))
        default:
            throw PierError(.invalid, "resolution must be PIER_RESOLVE_KEEP_LOCAL, PIER_RESOLVE_KEEP_SERVER or PIER_RESOLVE_MERGED, got \(resolution)")
        }
    }
}
