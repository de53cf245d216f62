// PierSync: the client sync engine.
//
// A sans-I/O state machine: `nextRequest()` gives the bytes of the next request frame,
// `receive(_:)` takes the response frame and applies it to the store in one local
// transaction. It never touches a network; transports (in-process, host callback, HTTP)
// carry the bytes. Owns the outbox batching, the in-flight batch kept for replay after a
// lost reply, result and pull application, conflicts and their resolution, resync.
// Depends on PierStore and PierWire; must not depend on PierServer or Foundation.
public import PierStore
import CSQLite
import PierWire

/// Options of one sync.
public struct SyncOptions: Sendable {
    /// Most changes in one push batch.
    public var maxBatchChanges = 500
    /// Most body bytes in one push batch (approximate; a single larger record still goes alone).
    public var maxBatchBytes = 1 << 20
    /// Most records and bytes asked for in one pull page.
    public var pullMaxRecords: UInt32 = 1000
    public var pullMaxBytes: UInt32 = 1 << 20
    /// With unresolved conflicts, push everything else instead of refusing to sync.
    public var blockOnlyConflicted = false
    /// DEFLATE level for request frames (0 = never compress).
    public var compressionLevel = EncodeOptions.defaultCompressionLevel
    /// A sync stops with `.limit` after this many round trips (protects against a record
    /// that is edited faster than it can be pushed).
    public var maxRoundTrips = 100_000

    public init() {}
}

/// What a sync did.
public struct SyncReport: Sendable, Equatable {
    public var pushed = 0
    public var applied = 0
    public var merged = 0
    public var superseded = 0
    public var rejected = 0
    public var conflicts = 0
    public var pulled = 0
    /// Bytes of frames sent and received, and of their payloads before compression.
    public var bytesSent = 0
    public var bytesSentRaw = 0
    public var bytesReceived = 0
    public var bytesReceivedRaw = 0
    public var roundTrips = 0
    public var durationNanoseconds: UInt64 = 0
    /// The server asked for a full re-pull (this client was behind the tombstone horizon).
    public var resynced = false
    /// A batch sent earlier whose reply was lost was sent again.
    public var replayedBatch = false

    public init() {}
}

/// Progress during a long sync, reported after every round trip.
public struct SyncProgress: Sendable, Equatable {
    public var roundTrips: Int
    public var pushed: Int
    /// Local changes still waiting to be pushed.
    public var pending: Int64
    public var pulled: Int
    /// More records are waiting on the server.
    public var pulling: Bool
}

/// A conflict waiting on this device for a resolution.
public struct LocalConflict: Sendable, Equatable {
    public var conflictID: String
    public var collection: String
    public var id: String
    /// This device's body (nil when this device deleted the record).
    public var localBody: String?
    /// The server's body (nil when the server deleted the record).
    public var serverBody: String?
    /// The server copy the local edit was based on (nil for a record new to the server).
    public var baseBody: String?
    public var localDeleted: Bool
    public var serverDeleted: Bool
    public var baseVersion: Int64
    public var serverVersion: Int64
}

/// How a conflict is settled.
public enum Resolution: Sendable, Equatable {
    /// Keep this device's version; it is pushed with the server's version as its base.
    case keepLocal
    /// Take the server's version.
    case keepServer
    /// Keep a merged body (a JSON object), pushed with the server's version as its base.
    case merged(String)
}

/// Settles incoming conflicts automatically; return nil to leave one for the user.
public typealias ConflictResolver = (LocalConflict) -> Resolution?

/// The client side of one sync.
public final class SyncEngine {
    private let store: Store
    private let options: SyncOptions
    private let resolver: ConflictResolver?
    public private(set) var report = SyncReport()

    private enum Phase { case start, waiting, more, done }
    private var phase = Phase.start
    /// The items of the batch in flight, by position in its request.
    private var inflight: [InflightItem] = []
    private var inflightBatch: UInt64 = 0
    /// The pull cursor of the request waiting for its response.
    private var requestCursor: Int64 = 0
    private var started: UInt64 = 0
    private var lastPullHadMore = false

    struct InflightItem {
        var collection: String
        var id: String
        var localSeq: Int64
        var op: SyncRequest.Change.Operation
        var body: [UInt8]?
    }

    public init(store: Store, options: SyncOptions = SyncOptions(), resolver: ConflictResolver? = nil) {
        self.store = store
        self.options = options
        self.resolver = resolver
    }

    /// The next request frame to send, or nil when the sync is complete.
    public func nextRequest() throws(PierError) -> [UInt8]? {
        switch phase {
        case .done: return nil
        case .waiting: throw PierError(.state, "a request is already waiting for its response; pass it to receive(_:) first")
        case .start:
            started = monotonicNanoseconds()
            try precheck()
            if let replay = try loadInflight() {
                report.replayedBatch = true
                return sent(replay)
            }
        case .more: break
        }
        if report.roundTrips >= options.maxRoundTrips {
            throw PierError(.limit, "sync stopped after \(report.roundTrips) round trips; local records are changing faster than they can be pushed")
        }
        let request = try buildRequest()
        CrashPoint.afterBatchBuilt.reach()
        return sent(request)
    }

    private func sent(_ frame: [UInt8]) -> [UInt8] {
        phase = .waiting
        report.bytesSent += frame.count
        report.bytesSentRaw += Self.rawLength(frame)
        return frame
    }

    private static func rawLength(_ frame: [UInt8]) -> Int {
        (try? FrameHeader.parse(frame)).map { PierWire.headerSize + Int($0.uncompressedLength) } ?? frame.count
    }

    /// Applies a response frame. Throws the server's error when it sent one.
    ///
    /// `pipeline` lets a transport overlap the network with the local work of a long pull:
    /// when the response is a page of a pure pull (the request pushed nothing) with more to
    /// come, the engine hands `pipeline` the next pull request (from the page's cursor)
    /// before it applies the page. `pipeline` starts sending it and returns true, or returns
    /// false to leave it unsent. When it was started and the page applied, that request is
    /// the one in flight and its response goes to the next `receive`. When this call throws,
    /// the started request is moot: drop its response and end the sync (the store's cursor
    /// is still the one before the page, so the next sync asks again from there).
    public func receive(_ frame: [UInt8], pipeline: (([UInt8]) -> Bool)? = nil) throws(PierError) {
        guard phase == .waiting else { throw PierError(.state, "no request is waiting for a response") }
        CrashPoint.afterSend.reach()
        report.roundTrips += 1
        report.bytesReceived += frame.count
        report.bytesReceivedRaw += Self.rawLength(frame)
        let message: Message
        do throws(WireError) { message = try Frame.decode(frame) } catch {
            phase = .more  // the batch stays in flight and is sent again by the next sync
            throw PierError(.protocol, "server response: \(error.message)")
        }
        switch message {
        case .error(let error):
            // The server refused the whole request, so nothing of the batch was applied:
            // forget it and rebuild from the outbox next time.
            try store.syncWrite { (c: Connection) throws(PierError) in try c.execute("DELETE FROM pier_inflight; DELETE FROM pier_inflight_items") }
            inflight = []
            phase = .done
            throw PierError(PierError.Code(rawValue: error.code < 0 ? error.code : -15), "server: \(error.message)")
        case .syncRequest:
            phase = .done
            throw PierError(.protocol, "server answered with a sync_request frame")
        case .syncResponse(let response):
            if response.results.count != inflight.count {
                phase = .done
                throw PierError(.protocol, "server answered \(response.results.count) results for \(inflight.count) changes")
            }
            if let problem = mismatch(response) {
                // Not the answer to this request (a replayed or reordered response, a broken
                // proxy): apply nothing; the batch stays in flight and the next sync sends it
                // again, which the server answers from its stored results.
                phase = .done
                throw PierError(.protocol, "the response does not answer this request: \(problem)")
            }
            var pipelined: (frame: [UInt8], cursor: Int64)?
            if let pipeline, inflight.isEmpty, response.results.isEmpty, !response.resyncRequired, response.hasMore,
               report.roundTrips < options.maxRoundTrips {
                let next = try pullRequest(cursor: response.cursor)
                if pipeline(next) {
                    pipelined = (next, response.cursor)
                    // Counted when it leaves, also if the page then fails and its answer is dropped.
                    report.bytesSent += next.count
                    report.bytesSentRaw += Self.rawLength(next)
                }
            }
            let more = try apply(response)
            report.durationNanoseconds = monotonicNanoseconds() - started
            if let pipelined {
                // A page with more to come always needs another round trip (apply returned
                // true): the pipelined request is it.
                requestCursor = pipelined.cursor
                phase = .waiting
            } else {
                phase = more ? .more : .done
            }
        }
    }

    /// A request that pushes nothing and pulls from `cursor`: the same bytes `buildRequest`
    /// makes when the outbox is empty, without touching the store.
    private func pullRequest(cursor: Int64) throws(PierError) -> [UInt8] {
        try encode(SyncRequest(clientID: store.clientID, batchSeq: 0, pull: pull(from: cursor)))
    }

    /// The pull part of every request: from `cursor`, within this sync's page limits.
    private func pull(from cursor: Int64) -> SyncRequest.PullRequest {
        SyncRequest.PullRequest(cursor: cursor, maxRecords: options.pullMaxRecords, maxBytes: options.pullMaxBytes)
    }

    private func encode(_ request: SyncRequest) throws(PierError) -> [UInt8] {
        do throws(WireError) {
            return try Frame.encode(.syncRequest(request), options: EncodeOptions(compressionLevel: options.compressionLevel))
        } catch {
            throw PierError(.protocol, "cannot encode the request: \(error.message)")
        }
    }

    /// Why `response` cannot be the answer to the request in flight, or nil when it can:
    /// results must name the batch's changes in order, and a pull answered from the
    /// request's cursor can neither move the cursor back nor hold versions at or below it.
    private func mismatch(_ response: SyncResponse) -> String? {
        for (position, result) in response.results.enumerated() where result.index != UInt32(position) {
            return "result \(position) is for change \(result.index)"
        }
        guard !response.resyncRequired else { return nil }
        let cursor = requestCursor
        if response.cursor < cursor {
            return "its cursor \(response.cursor) is behind the request's \(cursor)"
        }
        if let stale = response.records.first(where: { $0.version <= cursor }) {
            return "it holds version \(stale.version), not after the request's cursor \(cursor)"
        }
        return nil
    }

    /// Progress so far.
    public func progress() throws(PierError) -> SyncProgress {
        SyncProgress(roundTrips: report.roundTrips, pushed: report.pushed, pending: try store.pendingCount(),
                     pulled: report.pulled, pulling: lastPullHadMore)
    }

    public var isDone: Bool { phase == .done }

    // MARK: Building requests

    private func precheck() throws(PierError) {
        let conflicts = try Conflicts.list(store, limit: 6)
        guard !conflicts.isEmpty, !options.blockOnlyConflicted else { return }
        let total = try store.syncRead { (c: Connection) throws(PierError) -> Int64 in
            let q = try c.prepare("SELECT count(*) FROM pier_conflicts")
            return try q.step() ? q.int64(0) : 0
        }
        let names = conflicts.prefix(5).map { "\($0.collection)/\($0.id)" }.joined(separator: ", ")
        throw PierError(.conflict, "\(total) unresolved conflict\(total == 1 ? " blocks" : "s block") the sync (\(names)\(total > 5 ? ", ..." : "")); resolve \(total == 1 ? "it" : "them"), or sync with block_only_conflicted set")
    }

    /// The batch of an earlier sync whose reply never arrived.
    private func loadInflight() throws(PierError) -> [UInt8]? {
        try store.syncRead { (c: Connection) throws(PierError) -> [UInt8]? in
            let batch = try c.prepare("SELECT batch_seq, request FROM pier_inflight ORDER BY batch_seq LIMIT 1")
            guard try batch.step() else { return nil }
            inflightBatch = UInt64(batch.int64(0))
            let request = batch.bytes(1) ?? []
            // The pull cursor only moves when a reply is applied, which ends the batch's
            // flight: the stored request was built from the cursor the store holds now.
            requestCursor = try store.pullCursor()
            let items = try c.prepare("SELECT collection, id, local_seq, op, body FROM pier_inflight_items ORDER BY idx")
            inflight = []
            while try items.step() {
                inflight.append(InflightItem(collection: items.string(0) ?? "", id: items.string(1) ?? "", localSeq: items.int64(2),
                                             op: SyncRequest.Change.Operation(rawValue: UInt8(items.int64(3))) ?? .upsert,
                                             body: items.bytes(4)))
            }
            return request
        }
    }

    private func buildRequest() throws(PierError) -> [UInt8] {
        try store.syncWrite { (c: Connection) throws(PierError) -> [UInt8] in
            let excluded = store.collectionModes.filter { $0.value.mode == .localOnly || $0.value.mode == .pullOnly }.map(\.key)
            let outbox = try c.prepare("""
                SELECT collection, id, is_active, base_version, hlc, local_seq, scope, body, changed_fields
                FROM pier_records WHERE is_modified = 1 AND sync_state != 2
                  AND collection NOT IN (SELECT value FROM json_each(?2))
                ORDER BY local_seq LIMIT ?1
                """)
            outbox.bind(1, Int64(options.maxBatchChanges))
            outbox.bind(2, Self.jsonArray(excluded))
            let fields = try c.prepare("SELECT value FROM json_each(?1)")
            var changes: [SyncRequest.Change] = []
            var items: [InflightItem] = []
            var bytes = 0
            while try outbox.step() {
                let active = outbox.int64(2) != 0
                let body = active ? outbox.bytes(7) : nil
                let size = (body?.count ?? 0) + 64
                if !changes.isEmpty && bytes + size > options.maxBatchBytes { break }
                bytes += size
                var changed: [String] = []
                if active, let list = outbox.string(8) {
                    fields.bind(1, list)
                    while try fields.step() { if let name = fields.string(0) { changed.append(name) } }
                    fields.reset()
                }
                let change = SyncRequest.Change(
                    collection: outbox.string(0) ?? "", id: outbox.string(1) ?? "", op: active ? .upsert : .delete,
                    baseVersion: outbox.int64(3), hlc: outbox.int64(4), scope: outbox.string(6) ?? "",
                    body: body.map { WireBytes($0) }, changedFields: changed)
                changes.append(change)
                items.append(InflightItem(collection: change.collection, id: change.id, localSeq: outbox.int64(5), op: change.op, body: body))
            }
            outbox.reset()

            let meta = try c.prepare("SELECT key, value FROM pier_meta WHERE key IN ('push_batch_seq', 'pull_cursor', 'resync')")
            var batchSeq: Int64 = 0, cursor: Int64 = 0
            while try meta.step() {
                switch meta.string(0) {
                case "push_batch_seq": batchSeq = meta.int64(1)
                case "pull_cursor": cursor = meta.int64(1)
                default: break
                }
            }
            var request = SyncRequest(clientID: store.clientID, batchSeq: 0, changes: changes, pull: pull(from: cursor))
            if !changes.isEmpty {
                batchSeq += 1
                request.batchSeq = UInt64(batchSeq)
                let save = try c.prepare("UPDATE pier_meta SET value = ?1 WHERE key = 'push_batch_seq'")
                save.bind(1, batchSeq)
                try save.run()
            }
            let frame = try encode(request)
            if !changes.isEmpty {
                // Kept until the reply is applied: after a lost reply the same bytes go again.
                let keep = try c.prepare("INSERT INTO pier_inflight(batch_seq, request) VALUES (?1, ?2)")
                keep.bind(1, batchSeq)
                frame.withUnsafeBytes { keep.bind(2, blob: $0) }
                try keep.run()
                let item = try c.prepare("INSERT INTO pier_inflight_items(idx, collection, id, local_seq, op, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                for (index, entry) in items.enumerated() {
                    item.bind(1, Int64(index))
                    item.bind(2, entry.collection)
                    item.bind(3, entry.id)
                    item.bind(4, entry.localSeq)
                    item.bind(5, Int64(entry.op.rawValue))
                    item.bind(6, jsonBytes: entry.body)
                    try item.run()
                }
            }
            inflight = items
            inflightBatch = request.batchSeq
            requestCursor = cursor
            return frame
        }
    }

    static func jsonArray(_ values: [String]) -> String { JSONWriter.stringArray(values) }

    // MARK: Applying responses

    /// Applies results and pulled records in one local transaction. Returns true when
    /// another round trip is needed.
    private func apply(_ response: SyncResponse) throws(PierError) -> Bool {
        var pendingConflicts: [LocalConflict] = []
        let morePush = try store.syncWrite { (c: Connection) throws(PierError) -> Bool in
            let a = try Applier(c, store: store)
            for (result, item) in zip(response.results, inflight) {
                report.pushed += 1
                if let conflict = try a.result(result, item) { pendingConflicts.append(conflict) }
                switch result.outcome {
                case .applied: report.applied += 1
                case .merged: report.merged += 1
                case .superseded: report.superseded += 1
                case .rejected: report.rejected += 1
                case .conflict: report.conflicts += 1
                }
            }
            if !inflight.isEmpty {
                try c.execute("DELETE FROM pier_inflight; DELETE FROM pier_inflight_items")
                inflight = []
            }
            store.receiveHLC(HLC(milliseconds: max(0, min(response.serverTime, HLC.maxMilliseconds)), counter: 0))
            if response.resyncRequired {
                report.resynced = true
                try a.startResync(response.resyncCollections)
                lastPullHadMore = true
                return true
            }
            var newest = HLC.zero
            for record in response.records {
                let mode = store.collectionMode(record.collection)
                if mode == .pushOnly || mode == .localOnly { continue }
                try a.pulled(record)
                report.pulled += 1
                newest = max(newest, HLC(rawValue: record.hlc))
            }
            if newest > .zero { store.receiveHLC(newest) }
            try a.setMeta("pull_cursor", response.cursor)
            if !response.hasMore { try a.finishResyncIfAny() }
            lastPullHadMore = response.hasMore
            let more = try a.outboxHasMore(excluding: store.collectionModes.filter { $0.value.mode == .localOnly || $0.value.mode == .pullOnly }.map(\.key))
            CrashPoint.beforeApplyCommit.reach()
            return more
        }
        // Resolver callbacks run after the transaction; what they settle is pushed by
        // this same sync.
        var resolved = false
        if let resolver {
            for conflict in pendingConflicts {
                if let resolution = resolver(conflict) {
                    try Conflicts.resolve(store, conflictID: conflict.conflictID, resolution)
                    resolved = true
                }
            }
        }
        return morePush || lastPullHadMore || resolved
    }
}

/// The statements that apply one response.
private final class Applier {
    let c: Connection
    let store: Store
    let row, rowState, deleteRow, markSynced, markSyncedIfUnchanged, rebase, adopt, insertPulled, refreshPulled, pendingServerVersion: Statement
    let addConflict, setConflictState, metaSet, markRejected, clearResyncMark: Statement

    init(_ c: Connection, store: Store) throws(PierError) {
        self.c = c
        self.store = store
        row = try c.prepare("""
            SELECT local_seq, is_modified, is_active, server_version, base_version, sync_state, resync_mark,
                   coalesce(server_body, CASE WHEN is_from_server THEN body END), body
            FROM pier_records WHERE collection = ?1 AND id = ?2
            """)
        // The same without the bodies, for the decisions that do not need them.
        rowState = try c.prepare("""
            SELECT local_seq, is_modified, is_active, server_version, base_version, sync_state, resync_mark
            FROM pier_records WHERE collection = ?1 AND id = ?2
            """)
        deleteRow = try c.prepare("DELETE FROM pier_records WHERE collection = ?1 AND id = ?2")
        // The pushed state is now the server's: the record is synced.
        markSynced = try c.prepare("""
            UPDATE pier_records SET body = coalesce(?4, body), is_modified = 0, sync_state = 0, is_from_server = 1,
                base_version = ?3, server_version = ?3, server_body = NULL, changed_fields = NULL, resync_mark = 0
            WHERE collection = ?1 AND id = ?2
            """)
        // The same, only while the row still holds the pushed edit (not edited again since
        // the batch was built): an applied push then needs no lookup first.
        markSyncedIfUnchanged = try c.prepare("""
            UPDATE pier_records SET body = coalesce(?4, body), is_modified = 0, sync_state = 0, is_from_server = 1,
                base_version = ?3, server_version = ?3, server_body = NULL, changed_fields = NULL, resync_mark = 0
            WHERE collection = ?1 AND id = ?2 AND local_seq = ?5
            """)
        // The record was edited again while its push was in flight: keep the newer edit
        // pending, based on the version the server now has.
        rebase = try c.prepare("""
            UPDATE pier_records SET is_from_server = ?5, base_version = ?3, server_version = ?3, server_body = ?4,
                changed_fields = CASE WHEN ?4 IS NULL OR is_active = 0 THEN NULL
                                      ELSE \(ChangedFields.sql(new: "pier_records.body", base: "?4")) END
            WHERE collection = ?1 AND id = ?2
            """)
        // Take the server's copy (superseded, first-write-wins).
        adopt = try c.prepare("""
            UPDATE pier_records SET body = ?4, is_active = 1, is_modified = 0, sync_state = ?5, is_from_server = 1,
                base_version = ?3, server_version = ?3, server_body = NULL, changed_fields = NULL, resync_mark = 0
            WHERE collection = ?1 AND id = ?2
            """)
        insertPulled = try c.prepare("""
            INSERT INTO pier_records(collection, id, body, scope, is_from_server, is_modified, is_active, base_version, hlc,
                                     local_seq, server_version, sync_state, resync_mark)
            VALUES (?1, ?2, ?3, ?4, 1, 0, 1, ?5, ?6, 0, ?5, 0, 0)
            ON CONFLICT(collection, id) DO NOTHING
            """)
        refreshPulled = try c.prepare("""
            UPDATE pier_records SET body = ?3, scope = ?4, is_from_server = 1, is_modified = 0, is_active = 1, base_version = ?5,
                server_version = ?5, hlc = ?6, server_body = NULL, changed_fields = NULL, sync_state = 0, resync_mark = 0
            WHERE collection = ?1 AND id = ?2
            """)
        pendingServerVersion = try c.prepare("UPDATE pier_records SET server_version = ?3, resync_mark = 0 WHERE collection = ?1 AND id = ?2")
        addConflict = try c.prepare("""
            INSERT OR REPLACE INTO pier_conflicts(conflict_id, collection, id, local_body, server_body, base_body, local_deleted,
                server_deleted, base_version, server_version, server_hlc, created_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
            """)
        setConflictState = try c.prepare("UPDATE pier_records SET sync_state = 2, server_version = ?3 WHERE collection = ?1 AND id = ?2")
        metaSet = try c.prepare("INSERT OR REPLACE INTO pier_meta(key, value) VALUES (?1, ?2)")
        markRejected = try c.prepare("UPDATE pier_records SET is_modified = 0, sync_state = 3 WHERE collection = ?1 AND id = ?2")
        clearResyncMark = try c.prepare("UPDATE pier_records SET resync_mark = 0 WHERE collection = ?1 AND id = ?2 AND resync_mark = 1")
    }

    struct Row {
        var localSeq: Int64
        var modified: Bool
        var active: Bool
        var serverVersion: Int64
        var baseVersion: Int64
        var state: Int64
        /// Still to be confirmed by the resync in progress.
        var marked: Bool
        var serverBody: [UInt8]?
        var body: [UInt8]?
    }

    /// The local row of a record; `bodies: false` leaves `serverBody` and `body` nil (no copies).
    func current(_ collection: String, _ id: String, bodies: Bool = true) throws(PierError) -> Row? {
        let q = bodies ? row : rowState
        q.bind(1, collection)
        q.bind(2, id)
        defer { q.reset() }
        guard try q.step() else { return nil }
        return Row(localSeq: q.int64(0), modified: q.int64(1) != 0, active: q.int64(2) != 0, serverVersion: q.int64(3),
                   baseVersion: q.int64(4), state: q.int64(5), marked: q.int64(6) != 0,
                   serverBody: bodies ? q.bytes(7) : nil, body: bodies ? q.bytes(8) : nil)
    }

    func key(_ s: Statement, _ collection: String, _ id: String) {
        s.bind(1, collection)
        s.bind(2, id)
    }

    func delete(_ collection: String, _ id: String) throws(PierError) {
        key(deleteRow, collection, id)
        try deleteRow.run()
    }

    func synced(_ collection: String, _ id: String, version: Int64, body: [UInt8]?) throws(PierError) {
        key(markSynced, collection, id)
        markSynced.bind(3, version)
        markSynced.bind(4, jsonBytes: body)
        try markSynced.run()
    }

    func rebased(_ collection: String, _ id: String, version: Int64, serverBody: [UInt8]?) throws(PierError) {
        key(rebase, collection, id)
        rebase.bind(3, version)
        rebase.bind(4, jsonBytes: serverBody)
        // A record whose server copy is a tombstone is new again as far as the server's
        // body goes: push it whole.
        rebase.bind(5, Int64(serverBody == nil ? 0 : 1))
        try rebase.run()
    }

    func adopted(_ collection: String, _ id: String, version: Int64, body: [UInt8]?, state: SyncState) throws(PierError) {
        guard let body else { return try delete(collection, id) }
        key(adopt, collection, id)
        adopt.bind(3, version)
        adopt.bind(4, jsonBytes: body)
        adopt.bind(5, Int64(state.rawValue))
        try adopt.run()
    }

    /// Applies one push result; returns the conflict it registered, if any.
    func result(_ r: SyncResponse.ChangeResult, _ item: SyncEngine.InflightItem) throws(PierError) -> LocalConflict? {
        try check(r.body, item.collection, item.id)
        let purgedAfterPush = store.collectionModes[item.collection].map { $0.mode == .pushOnly && $0.purgeAfterPush } == true
        if r.outcome == .applied || r.outcome == .merged, item.op != .delete, !purgedAfterPush {
            // The common case, in one statement: the row still holds the pushed edit, so it
            // is synced now (what the general path below does when it is not edited again).
            key(markSyncedIfUnchanged, item.collection, item.id)
            markSyncedIfUnchanged.bind(3, r.version)
            markSyncedIfUnchanged.bind(4, jsonBytes: r.body?.array)
            markSyncedIfUnchanged.bind(5, item.localSeq)
            try markSyncedIfUnchanged.run()
            if sqlite3_changes(c.db) > 0 { return nil }
        }
        guard let now = try current(item.collection, item.id) else { return nil }  // deleted locally meanwhile
        var editedAgain = now.localSeq != item.localSeq
        if editedAgain && !now.active && now.baseVersion == 0 && item.op != .delete && r.outcome != .applied && r.outcome != .merged {
            // A create that lost to the server's copy, deleted here since: the delete was of
            // this device's own write, not of the server's record. The server copy stands.
            editedAgain = false
        }
        switch r.outcome {
        case .applied, .merged:
            let serverBody = r.body?.array ?? item.body
            if editedAgain {
                try rebased(item.collection, item.id, version: r.version, serverBody: item.op == .delete ? nil : serverBody)
            } else if item.op == .delete {
                try delete(item.collection, item.id)  // the tombstone is acknowledged
            } else if purgedAfterPush {
                try delete(item.collection, item.id)
            } else {
                try synced(item.collection, item.id, version: r.version, body: r.body?.array)
            }
        case .superseded:
            if editedAgain {
                try rebased(item.collection, item.id, version: r.version, serverBody: r.body?.array)
            } else {
                try adopted(item.collection, item.id, version: r.version, body: r.body?.array, state: .synced)
            }
        case .rejected:
            let policyRefusal = r.reason == "first_write_wins" || r.reason == "stale"
            if editedAgain {
                if policyRefusal { try rebased(item.collection, item.id, version: r.version, serverBody: r.body?.array) }
            } else if policyRefusal {
                try adopted(item.collection, item.id, version: r.version, body: r.body?.array, state: .rejected)
                if r.body == nil { break }
            } else {
                // Forbidden or invalid: the local data stays as the user wrote it, marked
                // rejected, and is not pushed again until it is edited.
                key(markRejected, item.collection, item.id)
                try markRejected.run()
                PierLog.log(.warning, "server rejected \(item.collection)/\(item.id): \(r.reason)")
            }
        case .conflict:
            let conflict = LocalConflict(
                conflictID: r.conflictID, collection: item.collection, id: item.id,
                localBody: now.active ? now.body.map { String(decoding: $0, as: UTF8.self) } : nil,
                serverBody: r.body.map { $0.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } },
                baseBody: now.serverBody.map { String(decoding: $0, as: UTF8.self) },
                localDeleted: !now.active, serverDeleted: r.body == nil,
                baseVersion: now.baseVersion, serverVersion: r.version)
            addConflict.bind(1, conflict.conflictID)
            addConflict.bind(2, conflict.collection)
            addConflict.bind(3, conflict.id)
            addConflict.bind(4, conflict.localBody)
            addConflict.bind(5, conflict.serverBody)
            addConflict.bind(6, conflict.baseBody)
            addConflict.bind(7, Int64(conflict.localDeleted ? 1 : 0))
            addConflict.bind(8, Int64(conflict.serverDeleted ? 1 : 0))
            addConflict.bind(9, conflict.baseVersion)
            addConflict.bind(10, conflict.serverVersion)
            addConflict.bind(11, r.serverHLC)
            addConflict.bind(12, store.lastHLC.milliseconds)
            try addConflict.run()
            key(setConflictState, item.collection, item.id)
            setConflictState.bind(3, r.version)
            try setConflictState.run()
            return conflict
        }
        return nil
    }

    /// Bodies from the server are checked like local ones before they are stored: a
    /// broken or hostile server must not put invalid JSON into the store.
    func check(_ body: WireBytes?, _ collection: String, _ id: String) throws(PierError) {
        guard let body else { return }
        if let problem = body.withUnsafeBytes({ JSONValidator.objectProblem($0) }) {
            throw PierError(.protocol, "the server sent \(collection)/\(id) with a body that is not a JSON object (\(problem)); nothing of this response was applied")
        }
    }

    /// Applies one pulled record. Pending local edits are never overwritten.
    func pulled(_ r: SyncResponse.PulledRecord) throws(PierError) {
        // Each field once: a record's id is rebuilt from its compact wire form on every read.
        var collection = r.collection, id = r.id
        if !r.deleted {
            try check(r.body, collection, id)
            // A record new to this device (every record of an initial sync) is one insert;
            // only when the id exists does the lookup below decide what to do. The text is
            // bound borrowed (no copies): it outlives the step and the reset below.
            var scope = r.scope
            let rc: Int32 = collection.withUTF8 { c in id.withUTF8 { i in scope.withUTF8 { sc in
                let s = insertPulled
                s.bind(1, borrowedText: UnsafeRawBufferPointer(c))
                s.bind(2, borrowedText: UnsafeRawBufferPointer(i))
                s.bind(4, borrowedText: UnsafeRawBufferPointer(sc))
                s.bind(5, r.version)
                s.bind(6, r.hlc)
                // A record sent without a body is stored as `{}`, as `bind(_:wire:)` does.
                return (r.body ?? "{}").withUnsafeBytes { body in
                    s.bind(3, borrowedText: body)
                    return sqlite3_step(s.stmt)
                }
            } } }
            if rc != SQLITE_DONE {
                let error = c.lastError
                insertPulled.reset()
                throw error
            }
            insertPulled.reset()
            if sqlite3_changes(c.db) > 0 { return }
        }
        guard let now = try current(collection, id, bodies: false) else { return }
        if r.version <= now.serverVersion {
            // Already known (our own push, answered before this page). A resync still
            // expecting the record learns that the server has it.
            if !now.modified && now.marked { try clearMark(collection, id) }
            return
        }
        if now.modified || now.state == 2 {
            key(pendingServerVersion, collection, id)
            pendingServerVersion.bind(3, r.version)
            try pendingServerVersion.run()
            return
        }
        if r.deleted { return try delete(collection, id) }
        key(refreshPulled, collection, id)
        refreshPulled.bind(3, wire: r.body)
        refreshPulled.bind(4, r.scope)
        refreshPulled.bind(5, r.version)
        refreshPulled.bind(6, r.hlc)
        try refreshPulled.run()
    }

    private func clearMark(_ collection: String, _ id: String) throws(PierError) {
        key(clearResyncMark, collection, id)
        try clearResyncMark.run()
    }

    func setMeta(_ key: String, _ value: Int64) throws(PierError) {
        metaSet.bind(1, key)
        metaSet.bind(2, value)
        try metaSet.run()
    }

    /// The server purged tombstones this client never saw: mark every synced record and
    /// pull everything again; records still marked at the end are gone on the server.
    func startResync(_ collections: [String]) throws(PierError) {
        let mark = try c.prepare("""
            UPDATE pier_records SET resync_mark = 1
            WHERE is_from_server = 1 AND is_modified = 0 AND (?1 = '[]' OR collection IN (SELECT value FROM json_each(?1)))
            """)
        mark.bind(1, SyncEngine.jsonArray(collections))
        try mark.run()
        try setMeta("resync", 1)
        try setMeta("pull_cursor", 0)
        PierLog.log(.info, "server asked for a resync; re-pulling")
    }

    func finishResyncIfAny() throws(PierError) {
        let flag = try c.prepare("SELECT value FROM pier_meta WHERE key = 'resync'")
        guard try flag.step(), flag.int64(0) == 1 else { return }
        try c.execute("DELETE FROM pier_records WHERE resync_mark = 1 AND is_modified = 0")
        try setMeta("resync", 0)
    }

    func outboxHasMore(excluding: [String]) throws(PierError) -> Bool {
        let q = try c.prepare("SELECT 1 FROM pier_records WHERE is_modified = 1 AND sync_state != 2 AND collection NOT IN (SELECT value FROM json_each(?1)) LIMIT 1")
        q.bind(1, SyncEngine.jsonArray(excluding))
        return try q.step()
    }
}

extension WireBytes {
    /// The bytes copied into an array.
    var array: [UInt8] { withUnsafeBytes { Array($0) } }
}

extension Statement {
    /// Binds a body received on the wire as JSON text without copying it first; an absent
    /// body binds as an empty object.
    func bind(_ index: Int32, wire: WireBytes?) {
        guard let wire else { return bind(index, "{}") }
        wire.withUnsafeBytes { bind(index, text: $0) }
    }
}
