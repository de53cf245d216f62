/// The type byte of a frame: which message its payload holds.
public enum MessageType: UInt8, Sendable, Hashable, CaseIterable {
    /// A client's push batch and pull request (`SyncRequest`).
    case syncRequest = 1
    /// The server's answer to a `SyncRequest` (`SyncResponse`).
    case syncResponse = 2
    /// A failure reported instead of a response (`ErrorMessage`).
    case error = 3

    /// The name used in docs/PROTOCOL.md and in JSON renderings.
    public var name: String {
        switch self {
        case .syncRequest: return "sync_request"
        case .syncResponse: return "sync_response"
        case .error: return "error"
        }
    }
}

/// One decoded message of any type.
public enum Message: Sendable, Hashable {
    /// A client's push batch and pull request.
    case syncRequest(SyncRequest)
    /// The server's answer.
    case syncResponse(SyncResponse)
    /// A failure reported instead of a response.
    case error(ErrorMessage)

    /// The type byte this message is sent with.
    public var type: MessageType {
        switch self {
        case .syncRequest: return .syncRequest
        case .syncResponse: return .syncResponse
        case .error: return .error
        }
    }
}

/// A client's round trip: a batch of local changes to push and, optionally, a pull request.
public struct SyncRequest: Sendable, Hashable {
    /// The client's id (a random UUID fixed when its store was created).
    public var clientID: String
    /// The batch sequence number; monotonically increasing per client, so the server can
    /// recognise a replayed batch.
    public var batchSeq: UInt64
    /// The changes to push, in local commit order.
    public var changes: [Change]
    /// The pull request riding along, if the client wants records back.
    public var pull: PullRequest?

    /// Creates a request.
    public init(clientID: String, batchSeq: UInt64, changes: [Change] = [], pull: PullRequest? = nil) {
        self.clientID = clientID
        self.batchSeq = batchSeq
        self.changes = changes
        self.pull = pull
    }

    /// One local change.
    public struct Change: Sendable, Hashable {
        /// What the change does to the record.
        public enum Operation: UInt8, Sendable, Hashable, CaseIterable {
            /// Create or replace the whole body.
            case upsert = 0
            /// Change some top-level fields; `body` holds the changed fields as a JSON object.
            case patch = 1
            /// Delete the record.
            case delete = 2

            /// The name used in docs/PROTOCOL.md and in JSON renderings.
            public var name: String {
                switch self {
                case .upsert: return "upsert"
                case .patch: return "patch"
                case .delete: return "delete"
                }
            }
        }

        /// The collection of the record.
        public var collection: String
        /// The record id. (Stored compactly: reading a UUID id builds its text.)
        public var id: String {
            get { storedID.string }
            set { storedID = CompactID(newValue) }
        }
        var storedID: CompactID
        /// The operation.
        public var op: Operation
        /// The server version this edit was based on (0 for a record the server never had).
        public var baseVersion: Int64
        /// The hybrid logical clock of the local write.
        public var hlc: Int64
        /// The record's scope (partition).
        public var scope: String
        /// The JSON object text: the whole body for upsert, the changed fields for patch;
        /// usually nil for delete. Carried as bytes, never parsed by PierWire.
        public var body: WireBytes?
        /// Top-level fields touched since `baseVersion` (for field merge on the server).
        public var changedFields: [String]

        /// Creates a change.
        public init(
            collection: String, id: String, op: Operation, baseVersion: Int64, hlc: Int64,
            scope: String, body: WireBytes? = nil, changedFields: [String] = []
        ) {
            self.collection = collection
            self.storedID = CompactID(id)
            self.op = op
            self.baseVersion = baseVersion
            self.hlc = hlc
            self.scope = scope
            self.body = body
            self.changedFields = changedFields
        }
    }
}

extension SyncRequest.Change {
    /// The decoder's initialiser: the id is already in compact form.
    init(
        collection: String, storedID: CompactID, op: Operation, baseVersion: Int64, hlc: Int64, scope: String,
        body: WireBytes?, changedFields: [String]
    ) {
        self.collection = collection
        self.storedID = storedID
        self.op = op
        self.baseVersion = baseVersion
        self.hlc = hlc
        self.scope = scope
        self.body = body
        self.changedFields = changedFields
    }
}

extension SyncRequest {
    /// What the client wants pulled.
    public struct PullRequest: Sendable, Hashable {
        /// The highest server version the client has applied.
        public var cursor: Int64
        /// The most records the server should return in this response.
        public var maxRecords: UInt32
        /// The most body bytes the server should return in this response (approximate).
        public var maxBytes: UInt32
        /// The collections to pull; empty means all readable ones.
        public var collections: [String]

        /// Creates a pull request.
        public init(cursor: Int64, maxRecords: UInt32 = 1000, maxBytes: UInt32 = 1 << 20, collections: [String] = []) {
            self.cursor = cursor
            self.maxRecords = maxRecords
            self.maxBytes = maxBytes
            self.collections = collections
        }
    }
}

/// The server's answer to a `SyncRequest`.
public struct SyncResponse: Sendable, Hashable {
    /// The server's clock when it answered, in Unix milliseconds.
    public var serverTime: Int64
    /// One result per pushed change that the server processed.
    public var results: [ChangeResult]
    /// Pulled records in version order, tombstones included.
    public var records: [PulledRecord]
    /// The new pull cursor (the highest version in `records`, or the old cursor).
    public var cursor: Int64
    /// More records are waiting: pull again with the new cursor.
    public var hasMore: Bool
    /// The client's cursor is below the tombstone purge horizon: re-pull the collections
    /// in `resyncCollections` (all collections if it is empty).
    public var resyncRequired: Bool
    /// The collections to re-pull when `resyncRequired` is set.
    public var resyncCollections: [String]
    /// Conflicts registered for changes of this request (manual policy).
    public var conflicts: [ConflictInfo]

    /// Creates a response.
    public init(
        serverTime: Int64, results: [ChangeResult] = [], records: [PulledRecord] = [], cursor: Int64,
        hasMore: Bool = false, resyncRequired: Bool = false, resyncCollections: [String] = [],
        conflicts: [ConflictInfo] = []
    ) {
        self.serverTime = serverTime
        self.results = results
        self.records = records
        self.cursor = cursor
        self.hasMore = hasMore
        self.resyncRequired = resyncRequired
        self.resyncCollections = resyncCollections
        self.conflicts = conflicts
    }

    /// What happened to one pushed change.
    public struct ChangeResult: Sendable, Hashable {
        /// The server's decision.
        public enum Outcome: UInt8, Sendable, Hashable, CaseIterable {
            /// Written as sent; `version` is the new server version.
            case applied = 0
            /// Combined with a concurrent server edit; `body` is the merged body.
            case merged = 1
            /// Lost a last-write-wins comparison; `body` is the server copy.
            case superseded = 2
            /// Refused (`reason`: stale, forbidden, invalid, first_write_wins); `body` may
            /// hold the server copy.
            case rejected = 3
            /// Registered as a conflict `conflictID`; `body` may hold the server copy.
            case conflict = 4

            /// The name used in docs/PROTOCOL.md and in JSON renderings.
            public var name: String {
                switch self {
                case .applied: return "applied"
                case .merged: return "merged"
                case .superseded: return "superseded"
                case .rejected: return "rejected"
                case .conflict: return "conflict"
                }
            }
        }

        /// The position of the change in the request's `changes`.
        public var index: UInt32
        /// The decision.
        public var outcome: Outcome
        /// The record's server version after the decision.
        public var version: Int64
        /// The merged body or the server copy, as JSON object text.
        public var body: WireBytes?
        /// Why a change was rejected; empty otherwise.
        public var reason: String
        /// The conflict's id; empty if none.
        public var conflictID: String
        /// The HLC of the server's copy.
        public var serverHLC: Int64

        /// Creates a result.
        public init(
            index: UInt32, outcome: Outcome, version: Int64, body: WireBytes? = nil, reason: String = "",
            conflictID: String = "", serverHLC: Int64 = 0
        ) {
            self.index = index
            self.outcome = outcome
            self.version = version
            self.body = body
            self.reason = reason
            self.conflictID = conflictID
            self.serverHLC = serverHLC
        }
    }

    /// One record changed on the server since the client's cursor.
    public struct PulledRecord: Sendable, Hashable {
        /// The collection.
        public var collection: String
        /// The record id. (Stored compactly: reading a UUID id builds its text.)
        public var id: String {
            get { storedID.string }
            set { storedID = CompactID(newValue) }
        }
        var storedID: CompactID
        /// The server version of this state of the record.
        public var version: Int64
        /// The record's scope.
        public var scope: String
        /// The HLC of the write that produced this state.
        public var hlc: Int64
        /// The record is deleted (a tombstone); `body` is then usually nil.
        public var deleted: Bool
        /// The body as JSON object text.
        public var body: WireBytes?

        /// Creates a pulled record.
        public init(collection: String, id: String, version: Int64, scope: String, hlc: Int64, deleted: Bool = false, body: WireBytes? = nil) {
            self.collection = collection
            self.storedID = CompactID(id)
            self.version = version
            self.scope = scope
            self.hlc = hlc
            self.deleted = deleted
            self.body = body
        }
    }

    /// A conflict the user (or a client resolver) must settle.
    public struct ConflictInfo: Sendable, Hashable {
        /// The conflict's id.
        public var conflictID: String
        /// The collection.
        public var collection: String
        /// The record id.
        public var id: String
        /// The server's current version of the record.
        public var serverVersion: Int64
        /// The version the client's edit was based on.
        public var baseVersion: Int64
        /// The client's body.
        public var localBody: WireBytes?
        /// The server's body.
        public var serverBody: WireBytes?
        /// The common ancestor's body, if the server still has it.
        public var baseBody: WireBytes?

        /// Creates a conflict description.
        public init(
            conflictID: String, collection: String, id: String, serverVersion: Int64, baseVersion: Int64,
            localBody: WireBytes? = nil, serverBody: WireBytes? = nil, baseBody: WireBytes? = nil
        ) {
            self.conflictID = conflictID
            self.collection = collection
            self.id = id
            self.serverVersion = serverVersion
            self.baseVersion = baseVersion
            self.localBody = localBody
            self.serverBody = serverBody
            self.baseBody = baseBody
        }
    }
}

/// A failure reported instead of a `SyncResponse`.
public struct ErrorMessage: Sendable, Hashable {
    /// A Pier status code (negative, one of the `PIER_E...` constants).
    public var code: Int32
    /// What went wrong.
    public var message: String

    /// Creates an error message.
    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }
}

extension SyncResponse.PulledRecord {
    /// The decoder's initialiser: the id is already in compact form.
    @inline(__always)
    init(collection: String, storedID: CompactID, version: Int64, scope: String, hlc: Int64, deleted: Bool, body: WireBytes?) {
        self.collection = collection
        self.storedID = storedID
        self.version = version
        self.scope = scope
        self.hlc = hlc
        self.deleted = deleted
        self.body = body
    }
}
