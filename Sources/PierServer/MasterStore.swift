public import PierStore

/// The server's copy of one record.
public struct ServerRecord: Sendable, Equatable {
    public var collection: String
    public var id: String
    public var scope: String
    /// The global version stamped by the write that produced this state.
    public var version: Int64
    /// The HLC of that write (clamped to the drift bound) and the client that made it.
    public var hlc: HLC
    public var clientID: String
    public var deleted: Bool
    /// JSON object text; nil for a tombstone.
    public var body: [UInt8]?
    /// For merge_fields collections: per top-level field, the version and HLC of its last
    /// change, as JSON `{"field": [version, hlc], ...}`.
    public var fieldMeta: [UInt8]?
    /// Server time of the write (Unix ms).
    public var updatedAt: Int64

    public init(collection: String, id: String, scope: String, version: Int64, hlc: HLC, clientID: String,
                deleted: Bool, body: [UInt8]?, fieldMeta: [UInt8]? = nil, updatedAt: Int64) {
        self.collection = collection
        self.id = id
        self.scope = scope
        self.version = version
        self.hlc = hlc
        self.clientID = clientID
        self.deleted = deleted
        self.body = body
        self.fieldMeta = fieldMeta
        self.updatedAt = updatedAt
    }
}

/// One line of the business log: a change the server processed and what it decided.
public struct LogEntry: Sendable, Equatable {
    public var seq: Int64
    public var serverTime: Int64
    public var clientID: String
    public var user: String
    public var collection: String
    public var recordID: String
    public var op: String
    /// applied, merged, superseded, rejected, conflict.
    public var outcome: String
    public var baseVersion: Int64
    public var newVersion: Int64
    public var clientHLC: Int64
    public var detail: String

    public init(seq: Int64 = 0, serverTime: Int64, clientID: String, user: String, collection: String, recordID: String,
                op: String, outcome: String, baseVersion: Int64, newVersion: Int64, clientHLC: Int64, detail: String) {
        self.seq = seq
        self.serverTime = serverTime
        self.clientID = clientID
        self.user = user
        self.collection = collection
        self.recordID = recordID
        self.op = op
        self.outcome = outcome
        self.baseVersion = baseVersion
        self.newVersion = newVersion
        self.clientHLC = clientHLC
        self.detail = detail
    }
}

/// A conflict registered under the manual policy.
public struct ServerConflict: Sendable, Equatable {
    public var conflictID: String
    public var collection: String
    public var recordID: String
    public var clientID: String
    public var user: String
    public var baseVersion: Int64
    public var serverVersion: Int64
    public var clientBody: [UInt8]?
    public var serverBody: [UInt8]?
    public var clientDeleted: Bool
    public var serverDeleted: Bool
    public var createdAt: Int64
    /// "open" until a later change to the record is applied, then "resolved".
    public var status: String
    public var resolvedVersion: Int64

    public init(conflictID: String, collection: String, recordID: String, clientID: String, user: String,
                baseVersion: Int64, serverVersion: Int64, clientBody: [UInt8]?, serverBody: [UInt8]?,
                clientDeleted: Bool, serverDeleted: Bool, createdAt: Int64, status: String = "open", resolvedVersion: Int64 = 0) {
        self.conflictID = conflictID
        self.collection = collection
        self.recordID = recordID
        self.clientID = clientID
        self.user = user
        self.baseVersion = baseVersion
        self.serverVersion = serverVersion
        self.clientBody = clientBody
        self.serverBody = serverBody
        self.clientDeleted = clientDeleted
        self.serverDeleted = serverDeleted
        self.createdAt = createdAt
        self.status = status
        self.resolvedVersion = resolvedVersion
    }
}

/// What the server knows of a client.
public struct ClientInfo: Sendable, Equatable {
    public var clientID: String
    /// The user the client id is bound to (the first one that used it).
    public var user: String
    public var firstSeen: Int64
    public var lastSeen: Int64
    /// The pull cursor the client last reported having applied.
    public var ackedCursor: Int64

    public init(clientID: String, user: String, firstSeen: Int64, lastSeen: Int64, ackedCursor: Int64) {
        self.clientID = clientID
        self.user = user
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.ackedCursor = ackedCursor
    }
}

/// Which records a pull may return.
public struct PullFilter: Sendable {
    /// Scopes the reader may see; nil = all.
    public var readScopes: Set<String>?
    /// Collections readable by everybody (reference data), whatever the scope.
    public var publicCollections: Set<String>
    /// Collections asked for; empty = all.
    public var collections: Set<String>

    public init(readScopes: Set<String>?, publicCollections: Set<String> = [], collections: Set<String> = []) {
        self.readScopes = readScopes
        self.publicCollections = publicCollections
        self.collections = collections
    }
}

/// A query of the business log. Every field narrows; nil/0 means any.
public struct LogFilter: Sendable {
    public var collection: String?
    public var recordID: String?
    public var clientID: String?
    public var outcome: String?
    public var since: Int64?
    public var until: Int64?
    /// Entries with a sequence number above this (paging).
    public var afterSeq: Int64 = 0
    public var limit = 100

    public init(collection: String? = nil, recordID: String? = nil, clientID: String? = nil, outcome: String? = nil,
                since: Int64? = nil, until: Int64? = nil, afterSeq: Int64 = 0, limit: Int = 100) {
        self.collection = collection
        self.recordID = recordID
        self.clientID = clientID
        self.outcome = outcome
        self.since = since
        self.until = until
        self.afterSeq = afterSeq
        self.limit = limit
    }
}

/// A query of server-side conflicts, newest first. Every field narrows; nil means any.
public struct ConflictFilter: Sendable {
    public var collection: String?
    public var recordID: String?
    public var clientID: String?
    /// Hides resolved conflicts.
    public var openOnly = false
    /// Creation time bounds (server Unix ms): `since <= created_at < until`.
    public var since: Int64?
    public var until: Int64?
    /// Paging: conflicts older than this one (the last of the previous page).
    public var beforeID: String?
    public var limit = 100

    public init(collection: String? = nil, recordID: String? = nil, clientID: String? = nil, openOnly: Bool = false,
                since: Int64? = nil, until: Int64? = nil, beforeID: String? = nil, limit: Int = 100) {
        self.collection = collection
        self.recordID = recordID
        self.clientID = clientID
        self.openOnly = openOnly
        self.since = since
        self.until = until
        self.beforeID = beforeID
        self.limit = limit
    }
}

/// Reads a master store can answer.
public protocol MasterReader {
    func record(_ collection: String, _ id: String) throws(PierError) -> ServerRecord?
    /// The highest version committed.
    func currentVersion() throws(PierError) -> Int64
    /// The highest version whose tombstones may have been purged.
    func purgeHorizon() throws(PierError) -> Int64
    /// Records with `version > cursor` visible through `filter`, in version order, at most
    /// `limit` of them.
    func changes(after cursor: Int64, filter: PullFilter, limit: Int) throws(PierError) -> [ServerRecord]
    /// The stored results of a batch already processed.
    func storedBatch(clientID: String, batchSeq: UInt64) throws(PierError) -> [UInt8]?
    /// The highest batch number stored for a client, nil when none is. (A store that
    /// answers nil, the default, turns off the refusal of late duplicate batches.)
    func newestBatch(clientID: String) throws(PierError) -> UInt64?
    func client(_ clientID: String) throws(PierError) -> ClientInfo?
    func log(_ filter: LogFilter) throws(PierError) -> [LogEntry]
    /// Conflicts through `filter`, newest first (by creation time, then id).
    func conflicts(_ filter: ConflictFilter) throws(PierError) -> [ServerConflict]
}

/// A write transaction. Everything done through it commits together or not at all.
public protocol MasterTransaction: MasterReader {
    /// Reads a record and holds its lock until the transaction ends.
    func lockRecord(_ collection: String, _ id: String) throws(PierError) -> ServerRecord?
    /// Locks the records a batch is about to touch, all at once and in one global order, so
    /// that writers sharing records wait for each other instead of deadlocking. Each is still
    /// read with `lockRecord`. A store with one writer at a time has nothing to do (the default).
    func lockRecords(_ keys: [(collection: String, id: String)]) throws(PierError)
    /// Takes the next global version; versions become visible in the order taken.
    func nextVersion() throws(PierError) -> Int64
    func writeRecord(_ record: ServerRecord) throws(PierError)
    func appendLog(_ entry: LogEntry) throws(PierError)
    func addConflict(_ conflict: ServerConflict) throws(PierError)
    /// Marks the open conflicts of a record resolved by `version`.
    func closeConflicts(collection: String, id: String, version: Int64) throws(PierError)
    func storeBatch(clientID: String, batchSeq: UInt64, results: [UInt8], now: Int64) throws(PierError)
    func saveClient(_ info: ClientInfo) throws(PierError)
    /// The lowest cursor of clients seen since `since`, nil when there are none.
    func minimumActiveCursor(since: Int64) throws(PierError) -> Int64?
    /// Deletes tombstones with `version <= maxVersion` written before `olderThan`;
    /// returns how many went and raises the purge horizon to the highest purged version.
    func purgeTombstones(maxVersion: Int64, olderThan: Int64) throws(PierError) -> Int
}

extension MasterTransaction {
    public func lockRecords(_ keys: [(collection: String, id: String)]) throws(PierError) {}
}

extension MasterReader {
    public func newestBatch(clientID: String) throws(PierError) -> UInt64? { nil }
}

/// Where the server keeps the master copy: SQLite (one file, the default) or PostgreSQL.
/// One conformance suite (Tests/PierServerTests) runs against every implementation.
public protocol MasterStore: AnyObject, Sendable {
    /// Runs `body` in one serialisable write transaction; rolls back when it throws.
    ///
    /// A store may roll back and run `body` again when the database aborted the
    /// transaction (PostgreSQL, after a deadlock between writers), so `body` must not
    /// leave effects outside the transaction that a second run would duplicate.
    func write<T>(_ body: (any MasterTransaction) throws(PierError) -> T) throws(PierError) -> T
    /// Runs `body` on a consistent snapshot.
    func read<T>(_ body: (any MasterReader) throws(PierError) -> T) throws(PierError) -> T
}
