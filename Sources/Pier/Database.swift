// Pier: the public Swift API. Swift apps `import Pier` and get `Database` plus the
// store's value types (re-exported from PierStore). Later layers (sync) attach here.
// Must not depend on Foundation; networking comes only through PierCurl (libcurl).
@_exported public import PierStore
@_exported public import PierSync
@_exported public import PierServer
@_exported public import PierCurl
@_exported public import PierCrypto

/// A local Pier database: records in collections, tracked for sync.
///
/// ```swift
/// let db = try Database(path: "field.pier")
/// try db.put("customers", id: Database.newID(), body: #"{"name":"Ada"}"#)
/// ```
///
/// A `Database` is used from one thread at a time; it may move between threads.
public final class Database {
    /// The underlying store, for advanced use (metadata, raw bytes).
    public private(set) var store: Store

    /// Opens (creating if needed) the database at `path`.
    public init(path: String, options: StoreOptions = StoreOptions()) throws(PierError) {
        store = try Store(path: path, options: options)
    }

    // MARK: Encryption at rest

    /// The store's encryption, nil for a plain store.
    public var encryption: Encryption? { store.options.encryption as? Encryption }

    /// Changes the passphrase or key of an encrypted store. O(1): the data key is rewrapped,
    /// no page is rewritten, other connections may stay open. A crash leaves either the old
    /// or the new key working.
    public func changeKey(to newKey: Encryption) throws(PierError) {
        guard store.isOpen else { throw PierError(.closed, "the store is closed") }
        guard let current = encryption else {
            throw PierError(.state, "\(store.path) is not encrypted; encrypt it with Encryption.encrypt first")
        }
        guard !store.options.readOnly else { throw PierError(.readOnly, "the store is open read-only; open it read-write to change its key") }
        try Encryption.changeKey(path: store.path, from: current, to: newKey)
        var options = store.options
        options.encryption = newKey
        store.replaceOptions(options)
    }

    /// Rotates the data key: every page is rewritten under a new random key (wrapped by
    /// `newKey`, or the current passphrase or key when nil), crash-safely. The store is
    /// closed and reopened; no other connection may have it open (`.busy`).
    public func rekey(to newKey: Encryption? = nil) throws(PierError) {
        guard store.isOpen else { throw PierError(.closed, "the store is closed") }
        guard !store.inTransaction else { throw PierError(.state, "rekey inside a transaction; commit or roll back first") }
        guard let current = encryption else {
            throw PierError(.state, "\(store.path) is not encrypted; encrypt it with Encryption.encrypt first")
        }
        let path = store.path
        var options = store.options
        store.close()
        do throws(PierError) {
            try Encryption.rekey(path: path, key: current, newKey: newKey)
        } catch {
            // Not rekeyed: the file is as it was; reopen it with the key it has.
            do throws(PierError) {
                store = try Store(path: path, options: options)
            } catch let reopen {
                throw PierError(error.code, "\(error.message); reopening the store afterwards failed too: \(reopen.message)")
            }
            throw error
        }
        options.encryption = newKey ?? current
        do throws(PierError) {
            store = try Store(path: path, options: options)
        } catch {
            // The file is rekeyed: only the new key opens it from now on. Say so, so the
            // caller does not drop the new key thinking the rekey failed.
            store.replaceOptions(options)
            throw PierError(error.code, "the store was rekeyed (it now opens with the new key) but reopening it failed: \(error.message)")
        }
    }

    /// A new time-ordered id (UUIDv7).
    public static func newID() -> String { UUIDv7.make() }

    public var clientID: String { store.clientID }
    public var isOpen: Bool { store.isOpen }

    /// Closes the database; later calls throw `.closed`.
    public func close() { store.close() }

    public func put(_ collection: String, id: String, body: String, scope: String? = nil) throws(PierError) {
        try store.put(collection, id: id, body: body, scope: scope)
    }

    public func putMany(_ collection: String, _ records: [(id: String, body: String)], scope: String? = nil) throws(PierError) {
        try store.putMany(collection, records, scope: scope)
    }

    public func patch(_ collection: String, id: String, patch: String) throws(PierError) {
        try store.patch(collection, id: id, patch: patch)
    }

    public func get(_ collection: String, id: String) throws(PierError) -> String {
        try store.get(collection, id: id)
    }

    /// The body, or nil when there is no live record.
    public func find(_ collection: String, id: String) throws(PierError) -> String? {
        do { return try store.get(collection, id: id) } catch where error.code == .notFound { return nil }
    }

    public func delete(_ collection: String, id: String) throws(PierError) {
        try store.delete(collection, id: id)
    }

    public func list(_ collection: String, after afterID: String? = nil, limit: Int = 100) throws(PierError) -> [(id: String, body: String)] {
        try store.list(collection, after: afterID, limit: limit)
    }

    public func count(_ collection: String) throws(PierError) -> Int64 { try store.count(collection) }

    /// Runs a read-only query; returns a JSON array of row objects.
    public func query(_ sql: String, parameters: String? = nil) throws(PierError) -> String {
        try store.query(sql, parametersJSON: parameters).string
    }

    public func createIndex(_ collection: String, field: String) throws(PierError) {
        try store.createIndex(collection, field: field)
    }

    public func syncState(_ collection: String, id: String) throws(PierError) -> SyncState {
        try store.syncState(collection, id: id)
    }

    public func metadata(_ collection: String, id: String) throws(PierError) -> RecordMetadata {
        try store.metadata(collection, id: id)
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    public func transaction<T>(_ body: (Database) throws -> T) throws -> T {
        try store.begin()
        do {
            let result = try body(self)
            try store.commit()
            return result
        } catch {
            if store.inTransaction { try? store.rollback() }
            throw error
        }
    }

    public func begin() throws(PierError) { try store.begin() }
    public func commit() throws(PierError) { try store.commit() }
    public func rollback() throws(PierError) { try store.rollback() }

    // MARK: Sync

    /// Pushes every pending change and pulls everything new, over `transport`.
    public func sync(over transport: any SyncTransport, options: SyncOptions = SyncOptions(),
                     resolver: ConflictResolver? = nil, progress: ((SyncProgress) -> Void)? = nil) throws(PierError) -> SyncReport {
        try Sync.run(store, over: transport, options: options, resolver: resolver, progress: progress)
    }

    /// Syncs directly into a server in the same process (embedded servers, tests, demos).
    public func sync(with server: SyncServer, as identity: Identity = .trusted(), options: SyncOptions = SyncOptions(),
                     resolver: ConflictResolver? = nil, progress: ((SyncProgress) -> Void)? = nil) throws(PierError) -> SyncReport {
        try sync(over: InProcessTransport(server: server, identity: identity), options: options, resolver: resolver, progress: progress)
    }

    /// Syncs with the Pier server at `url` over HTTP(S) (`POST <url>/v1/sync`, docs/PROTOCOL.md
    /// §12), using the built-in libcurl transport.
    ///
    /// ```swift
    /// let report = try db.sync(url: "https://sync.example.com", token: jwt)
    /// ```
    ///
    /// Transient failures (connection errors, timeouts, 429, 500, 502, 503, 504) are retried
    /// as `http.retry` says; retrying a batch is safe because the server answers a resent
    /// batch from its stored results. When retries run out the error is `.network` and the
    /// changes stay pending for the next sync.
    /// - Parameters:
    ///   - token: sent as `Authorization: Bearer <token>` when given.
    ///   - http: timeouts, retries, response cap and TLS settings.
    /// - Throws: `.invalid` for a bad URL or token; `.auth`, `.forbidden`, `.limit`,
    ///   `.protocol` from the server's error response; `.network` when it cannot be reached;
    ///   everything `sync(over:)` throws.
    public func sync(url: String, token: String? = nil, http: HTTPTransport.Configuration = HTTPTransport.Configuration(),
                     options: SyncOptions = SyncOptions(), resolver: ConflictResolver? = nil,
                     progress: ((SyncProgress) -> Void)? = nil) throws(PierError) -> SyncReport {
        let transport = try HTTPTransport(baseURL: url, token: token, configuration: http)
        return try sync(over: transport, options: options, resolver: resolver, progress: progress)
    }

    /// Conflicts waiting for a resolution.
    public func conflicts() throws(PierError) -> [LocalConflict] { try Conflicts.list(store) }

    /// Settles a conflict; the next sync pushes the outcome.
    public func resolve(_ conflictID: String, _ resolution: Resolution) throws(PierError) {
        try Conflicts.resolve(store, conflictID: conflictID, resolution)
    }

    /// Sets how a collection takes part in sync.
    public func setCollectionMode(_ collection: String, _ mode: CollectionMode, purgeAfterPush: Bool = false) throws(PierError) {
        try store.setCollectionMode(collection, mode, purgeAfterPush: purgeAfterPush)
    }
}

/// A transport straight into a server handler in the same process.
public struct InProcessTransport: SyncTransport {
    public let server: SyncServer
    public let identity: Identity

    public init(server: SyncServer, identity: Identity = .trusted()) {
        self.server = server
        self.identity = identity
    }

    public func roundTrip(_ request: [UInt8]) throws(PierError) -> [UInt8] {
        server.handle(frame: request, identity: identity, encoding: .uncompressed)
    }

    /// Bytes never leave the process: compressing them would only cost time.
    public var prefersCompression: Bool { false }
}
