// PierServer: the sans-I/O sync handler and the master stores behind it.
//
// Owns: conflict policies (DESIGN.md section 6), the global version counter, idempotent
// batches, per-client cursors, tombstone purge, the business log, scopes and the HLC
// drift bound. A request frame and a verified identity go in, a response frame comes
// out; the HTTP server, the C API and the in-process transport all call `handle`.
// Depends on PierWire and PierStore (errors, HLC, SQLite wrapper); must not depend on
// networking, Foundation or the client engine.
public import PierStore
public import PierWire
import Synchronization

/// A sync server: one handler over one master store.
public final class SyncServer: Sendable {
    public let store: any MasterStore
    public let config: ServerConfig
    private let clock: any WallClock
    private let resolvers: Mutex<[String: Resolver]>
    private let prefetcher: PullPrefetcher?

    public init(store: any MasterStore, config: ServerConfig = ServerConfig(), clock: any WallClock = SystemClock()) {
        self.store = store
        self.config = config
        self.clock = clock
        self.resolvers = Mutex(config.resolvers)
        prefetcher = config.pullPrefetchThreads > 0
            ? PullPrefetcher(threads: config.pullPrefetchThreads, maxPages: config.pullPrefetchMaxPages,
                             maxBytes: config.pullPrefetchMaxBytes, timeToLiveMilliseconds: config.pullPrefetchTimeToLiveMilliseconds)
            : nil
    }

    deinit {
        prefetcher?.stop()
    }

    /// What the pull prefetch has done so far (all zero when it is off).
    public var prefetchStatistics: PrefetchStatistics {
        prefetcher?.statistics ?? PrefetchStatistics()
    }

    /// Installs (or with nil removes) the resolver of a `custom` collection.
    public func setResolver(_ collection: String, _ resolver: Resolver?) {
        resolvers.withLock { $0[collection] = resolver }
    }

    /// Opens a server on an SQLite master file.
    public convenience init(path: String, config: ServerConfig = ServerConfig()) throws(PierError) {
        self.init(store: try SQLiteMasterStore(path: path), config: config)
    }

    public var wireLimits: WireLimits {
        var limits = WireLimits.default
        limits.maxFrameBytes = config.maxFrameBytes
        limits.maxPayloadBytes = max(limits.maxPayloadBytes, config.maxFrameBytes)
        limits.maxBodyBytes = config.maxBodyBytes
        limits.maxItems = max(limits.maxItems, config.maxBatchChanges)
        return limits
    }

    /// Handles one request frame for a verified identity. Always returns a frame: a sync
    /// response, or an error message (malformed frame, forbidden client id, ...).
    /// `encoding` defaults to the configured `compressionLevel`; the answer is written in
    /// the request's format version (or this server's newest, if the request's is newer),
    /// so that a client of an older version can read it.
    public func handle(frame: [UInt8], identity: Identity, encoding: EncodeOptions? = nil) -> [UInt8] {
        do throws(PierError) {
            let header: FrameHeader, message: Message
            do throws(WireError) { (header, message) = try Frame.decodeWithHeader(frame, limits: wireLimits) } catch {
                throw PierError(.protocol, error.message)
            }
            guard case .syncRequest(let request) = message else {
                throw PierError(.protocol, "expected a sync_request frame, got \(message.type.name)")
            }
            return try respond(to: request, identity: identity, encoding: self.encoding(answering: header, encoding)).frame
        } catch {
            PierLog.log(error.code == .internalError ? .error : .info, "sync from \(identity.user) refused: \(error)")
            return Self.errorFrame(error)
        }
    }

    static func errorFrame(_ error: PierError) -> [UInt8] {
        let message = Message.error(ErrorMessage(code: error.code.rawValue, message: error.message))
        // An error message is small and always encodable; fall back to an empty frame only if not.
        // Version 1, which every reader reads (the bytes of an error are the same in version 2).
        return (try? Frame.encode(message, options: EncodeOptions(compressionLevel: 0, formatVersion: 1))) ?? []
    }

    /// The options frames are encoded with unless a caller asks otherwise.
    public var encoding: EncodeOptions { EncodeOptions(compressionLevel: config.compressionLevel) }

    /// `encoding` (default: the configured one) writing the format version a client that
    /// sent a request with `header` reads: the request's, or the encoding's own version if
    /// that is older (the newest by default; an embedder may pin version 1).
    public func encoding(answering header: FrameHeader, _ encoding: EncodeOptions? = nil) -> EncodeOptions {
        let base = encoding ?? self.encoding
        return base.writing(version: min(header.version, base.formatVersion))
    }

    /// Handles one decoded request and encodes the answer (`encoding` defaults to the
    /// configured `compressionLevel`). A pull without a push may be answered with the page
    /// the pull prefetch prepared for it, and when more records are waiting, the next page
    /// is prepared in the background while the client applies this one.
    public func respond(to request: SyncRequest, identity: Identity, encoding: EncodeOptions? = nil) throws(PierError) -> (response: SyncResponse, frame: [UInt8]) {
        let encoding = encoding ?? self.encoding
        let answer: PreparedPage
        let newestBatch: UInt64
        if let prefetcher, request.changes.isEmpty, let pull = request.pull {
            // The checks and the client's bookkeeping happen either way; then the pull.
            let (response, newest) = try handle(request: request, identity: identity, pulling: false)
            newestBatch = newest
            if let page = prefetcher.take(Self.prefetchKey(request.clientID, identity, pull, encoding, newest)) {
                answer = page
            } else {
                answer = try Self.page(pull, identity: identity, store: store, config: config, encoding: encoding, answering: response)
            }
        } else {
            let (response, newest) = try handle(request: request, identity: identity, pulling: true)
            newestBatch = newest
            answer = PreparedPage(response: response, frame: try Self.encode(response, encoding))
        }
        if let prefetcher, var next = request.pull, answer.response.hasMore, !answer.response.resyncRequired {
            next.cursor = answer.response.cursor
            let key = Self.prefetchKey(request.clientID, identity, next, encoding, newestBatch)
            let (store, config, clock, pull) = (self.store, self.config, self.clock, next)
            prefetcher.schedule(key) { () -> PreparedPage? in
                do throws(PierError) {
                    return try Self.page(pull, identity: identity, store: store, config: config, encoding: encoding,
                                         answering: SyncResponse(serverTime: clock.milliseconds(), cursor: pull.cursor))
                } catch {
                    PierLog.log(.info, "pull prefetch for client \(key.clientID) gave up: \(error)")
                    return nil
                }
            }
        }
        return (answer.response, answer.frame)
    }

    /// `response` with the page of `pull` in it, and its frame. Static, like `pull`, so the
    /// prefetch threads can run it without holding the server.
    private static func page(_ pull: SyncRequest.PullRequest, identity: Identity, store: any MasterStore, config: ServerConfig,
                             encoding: EncodeOptions, answering response: SyncResponse) throws(PierError) -> PreparedPage {
        var response = response
        try Self.pull(pull, identity: identity, store: store, config: config, into: &response)
        return PreparedPage(response: response, frame: try encode(response, encoding))
    }

    private static func prefetchKey(_ clientID: String, _ identity: Identity, _ pull: SyncRequest.PullRequest,
                                     _ encoding: EncodeOptions, _ newestBatch: UInt64) -> PrefetchKey {
        PrefetchKey(clientID: clientID, user: identity.user, readScopes: identity.readScopes, cursor: pull.cursor,
                    maxRecords: pull.maxRecords, maxBytes: pull.maxBytes, collections: pull.collections, encoding: encoding,
                    newestBatch: newestBatch)
    }

    private static func encode(_ response: SyncResponse, _ encoding: EncodeOptions) throws(PierError) -> [UInt8] {
        do throws(WireError) { return try Frame.encode(.syncResponse(response), options: encoding) } catch {
            throw PierError(.internalError, "cannot encode the response: \(error.message)")
        }
    }

    /// Handles one decoded request.
    public func handle(request: SyncRequest, identity: Identity) throws(PierError) -> SyncResponse {
        try handle(request: request, identity: identity, pulling: true).response
    }

    /// `pulling: false` does everything but the pull (the caller answers it otherwise).
    /// `newestBatch` is the client's newest stored batch once this request is processed
    /// (0 without a pull prefetch, or from a store that does not say): a prepared page
    /// carries the number it was prepared under, so a push that reached another server
    /// process on the same store in between still makes the page stale.
    private func handle(request: SyncRequest, identity: Identity, pulling: Bool) throws(PierError) -> (response: SyncResponse, newestBatch: UInt64) {
        let now = clock.milliseconds()
        guard !request.clientID.isEmpty, request.clientID.utf8.count <= 128 else {
            throw PierError(.protocol, "client_id must be 1-128 bytes")
        }
        guard request.changes.count <= config.maxBatchChanges else {
            throw PierError(.limit, "batch has \(request.changes.count) changes; this server accepts at most \(config.maxBatchChanges)")
        }
        if !request.changes.isEmpty && request.batchSeq == 0 {
            throw PierError(.protocol, "batch_seq must be 1 or more when changes are pushed")
        }

        // A push may change records of the client's next page: never answer it from a
        // page prepared before.
        if !request.changes.isEmpty { prefetcher?.invalidate(clientID: request.clientID) }

        var results: [SyncResponse.ChangeResult] = []
        var conflicts: [SyncResponse.ConflictInfo] = []
        var newestBatch: UInt64 = 0
        let wantsNewest = prefetcher != nil && request.pull != nil
        try store.write { (tx) throws(PierError) in
            // A store may run this body again after a deadlock (PostgreSQL): start clean.
            results = []
            conflicts = []
            newestBatch = 0
            var client = try tx.client(request.clientID)
                ?? ClientInfo(clientID: request.clientID, user: identity.user, firstSeen: now, lastSeen: now, ackedCursor: 0)
            if client.user != identity.user {
                throw PierError(.forbidden, "client id \(request.clientID) belongs to another user")
            }
            client.lastSeen = now
            if let pull = request.pull { client.ackedCursor = max(0, pull.cursor) }
            try tx.saveClient(client)
            // One lookup serves the prefetch key and the late-duplicate check below.
            let newest = wantsNewest || !request.changes.isEmpty ? try tx.newestBatch(clientID: request.clientID) : nil
            newestBatch = newest ?? 0

            guard !request.changes.isEmpty else { return }
            if let stored = try tx.storedBatch(clientID: request.clientID, batchSeq: request.batchSeq) {
                // A replay after a lost reply: answer as before, apply nothing again.
                let previous = try Self.decodeStoredResults(stored)
                results = previous.results
                conflicts = previous.conflicts
                PierLog.log(.info, "replayed batch \(request.batchSeq) of client \(request.clientID)")
                return
            }
            // A client numbers its batches upwards and keeps each until its reply arrives, so
            // a number below its newest that is no longer stored is a duplicate delivered very
            // late (or a store restored from a backup): applying it would apply it twice.
            if let newest, request.batchSeq < newest {
                throw PierError(.protocol, "batch \(request.batchSeq) of client \(request.clientID) is older than its newest (\(newest)) and no longer stored: a late duplicate, or a store restored from a backup or copied to another device (give such a store a new client id); nothing was applied")
            }
            // Every record of the batch at once, in the store's one global order: two batches
            // on shared records then wait for each other instead of deadlocking (PostgreSQL).
            try tx.lockRecords(request.changes.map { (collection: $0.collection, id: $0.id) })
            var context = BatchContext(tx: tx, request: request, identity: identity, now: now)
            for (index, change) in request.changes.enumerated() {
                let outcome = try process(change, index: UInt32(index), &context)
                results.append(outcome.result)
                if let conflict = outcome.conflict { conflicts.append(conflict) }
            }
            let stored = try Self.encodeStoredResults(results, conflicts)
            try tx.storeBatch(clientID: request.clientID, batchSeq: request.batchSeq, results: stored, now: now)
            newestBatch = max(newestBatch, request.batchSeq)
            CrashPoint.serverBeforeCommit.reach()
        }
        if !request.changes.isEmpty { CrashPoint.serverAfterCommit.reach() }

        var response = SyncResponse(serverTime: now, results: results, cursor: request.pull?.cursor ?? 0, conflicts: conflicts)
        if let pull = request.pull, pulling {
            do throws(PierError) {
                try Self.pull(pull, identity: identity, store: store, config: config, into: &response)
            } catch where !request.changes.isEmpty {
                // The batch is committed: its results must reach the client, or it would
                // drop the batch as refused and push it again. The pull waits for the next
                // round trip (has_more, cursor unchanged).
                PierLog.log(.warning, "pull for client \(request.clientID) failed after its batch was applied: \(error)")
                response = SyncResponse(serverTime: now, results: results, cursor: pull.cursor, hasMore: true, conflicts: conflicts)
            }
        }
        return (response, newestBatch)
    }

    // MARK: Pull

    /// Static so that the pull prefetch's threads can run it without holding the server.
    private static func pull(_ pull: SyncRequest.PullRequest, identity: Identity, store: any MasterStore, config: ServerConfig,
                             into response: inout SyncResponse) throws(PierError) {
        let publicCollections = Set(config.collections.filter { $0.value.readableByAll }.map(\.key))
        let filter = PullFilter(readScopes: identity.readScopes, publicCollections: publicCollections,
                                collections: Set(pull.collections))
        let limit = max(1, min(Int(pull.maxRecords == 0 ? 1000 : pull.maxRecords), config.maxPullRecords))
        let maxBytes = max(1, min(Int(pull.maxBytes == 0 ? 1 << 20 : pull.maxBytes), config.maxPullBytes))
        try store.read { (reader) throws(PierError) in
            let cursor = max(0, pull.cursor)
            let horizon = try reader.purgeHorizon()
            if cursor > 0 && cursor < horizon {
                response.resyncRequired = true
                response.cursor = 0
                return
            }
            let top = try reader.currentVersion()
            let rows = try reader.changes(after: cursor, filter: filter, limit: limit + 1)
            var bytes = 0
            var records: [SyncResponse.PulledRecord] = []
            records.reserveCapacity(min(rows.count, limit))
            for row in rows {
                if records.count == limit || (bytes >= maxBytes && !records.isEmpty) { break }
                bytes += (row.body?.count ?? 0) + row.id.utf8.count + 16
                records.append(SyncResponse.PulledRecord(collection: row.collection, id: row.id, version: row.version, scope: row.scope,
                                                         hlc: row.hlc.rawValue, deleted: row.deleted, body: wire(row.body)))
            }
            response.hasMore = records.count < rows.count
            // Without more to send, the cursor moves to the newest committed version, past
            // versions this reader may not see.
            response.cursor = response.hasMore ? (records.last?.version ?? cursor) : max(cursor, top)
            response.records = records
        }
    }

    // MARK: Push

    private struct BatchContext {
        let tx: any MasterTransaction
        let request: SyncRequest
        let identity: Identity
        let now: Int64
    }

    private struct Decision {
        var result: SyncResponse.ChangeResult
        var conflict: SyncResponse.ConflictInfo?
    }

    private func process(_ change: SyncRequest.Change, index: UInt32, _ c: inout BatchContext) throws(PierError) -> Decision {
        let tx = c.tx
        let policy = config.policy(for: change.collection)
        var detail: [String] = []

        // The drift bound: a device whose clock runs ahead cannot win every comparison.
        var hlc = HLC(rawValue: change.hlc)
        let ceiling = HLC(milliseconds: c.now + config.driftBoundMilliseconds, counter: 0)
        if hlc > ceiling {
            detail.append("hlc \(hlc) clamped to \(ceiling) (client clock ahead by \((hlc.milliseconds - c.now) / 1000) s)")
            PierLog.log(.warning, "client \(c.request.clientID) sent an HLC \((hlc.milliseconds - c.now) / 1000) s ahead; clamped")
            hlc = ceiling
        }

        func log(_ outcome: SyncResponse.ChangeResult.Outcome, version: Int64, _ extra: String? = nil) throws(PierError) {
            var text = detail
            if let extra { text.append(extra) }
            try tx.appendLog(LogEntry(serverTime: c.now, clientID: c.request.clientID, user: c.identity.user,
                                      collection: change.collection, recordID: change.id, op: change.op.name,
                                      outcome: outcome.name, baseVersion: change.baseVersion, newVersion: version,
                                      clientHLC: change.hlc, detail: text.joined(separator: "; ")))
        }

        func reject(_ reason: String, _ why: String, server: ServerRecord?) throws(PierError) -> Decision {
            let version = server?.version ?? 0
            try log(.rejected, version: version, "\(reason): \(why)")
            let visible = server.flatMap { c.identity.canRead($0.scope) ? $0 : nil }
            return Decision(result: .init(index: index, outcome: .rejected, version: visible?.version ?? 0,
                                          body: wire(visible?.body), reason: reason, serverHLC: visible?.hlc.rawValue ?? 0))
        }

        // Validate before touching anything.
        if let problem = Self.nameProblem(change.collection, "collection", 128) ?? Self.nameProblem(change.id, "id", 256)
            ?? Self.nameProblem(change.scope, "scope", 256) {
            return try reject("invalid", problem, server: nil)
        }
        var incomingBytes: [UInt8]?
        if change.op != .delete {
            guard let body = change.body else { return try reject("invalid", "\(change.op.name) without a body", server: nil) }
            guard body.count <= config.maxBodyBytes else {
                return try reject("invalid", "body is \(body.count) bytes, over the server's limit of \(config.maxBodyBytes)", server: nil)
            }
            if let problem = body.withUnsafeBytes({ JSONValidator.objectProblem($0) }) {
                return try reject("invalid", "body is not a JSON object: \(problem)", server: nil)
            }
            incomingBytes = body.array
        }
        guard c.identity.canWrite(change.scope) else {
            return try reject("forbidden", "user \(c.identity.user) may not write scope \(change.scope)", server: nil)
        }

        let current = try tx.lockRecord(change.collection, change.id)
        if let current, !c.identity.canWrite(current.scope) {
            return try reject("forbidden", "the record belongs to scope \(current.scope), which user \(c.identity.user) may not write", server: nil)
        }

        // The body this change leads to, before any policy: an upsert's bytes as sent (never
        // re-rendered), a patch applied to the server copy.
        var proposedBody = incomingBytes
        var changedFields = Set(change.changedFields)
        if change.op == .patch, let bytes = incomingBytes {
            var target = JSONObject()
            if let body = current?.body { target = (try? JSONObject(parsing: body)) ?? JSONObject() }
            do throws(JSONError) {
                let patch = try JSONObject(parsing: bytes)
                try target.apply(patch: patch)
                if changedFields.isEmpty { changedFields = Set(patch.keys) }
            } catch {
                return try reject("invalid", error.message, server: current)
            }
            proposedBody = target.bytes
        }
        let clientDeletes = change.op == .delete

        let serverVersion = current?.version ?? 0
        let serverDeleted = current?.deleted ?? (change.baseVersion > 0)
        let unchangedSinceBase = current == nil ? change.baseVersion == 0 : current!.version == change.baseVersion

        func write(body: [UInt8]?, deleted: Bool, fieldMeta: [UInt8]?) throws(PierError) -> Int64 {
            let version = try tx.nextVersion()
            try tx.writeRecord(ServerRecord(collection: change.collection, id: change.id, scope: change.scope, version: version,
                                            hlc: hlc, clientID: c.request.clientID, deleted: deleted, body: deleted ? nil : body,
                                            fieldMeta: fieldMeta, updatedAt: c.now))
            if policy.policy == .manual || policy.policy == .custom || policy.updateDelete == .manual {
                try tx.closeConflicts(collection: change.collection, id: change.id, version: version)
            }
            return version
        }

        func meta(for body: [UInt8]?, version: Int64) -> [UInt8]? {
            guard policy.policy == .mergeFields, let body, let new = try? JSONObject(parsing: body) else { return nil }
            var fields = FieldMeta(current?.fieldMeta)
            let old = current?.body.flatMap { try? JSONObject(parsing: $0) } ?? JSONObject()
            for key in Set(new.keys).union(old.keys) where !JSONObject.sameValue(new[key], old[key]) {
                fields.entries[key] = (version, hlc.rawValue)
            }
            return fields.bytes
        }

        func apply(_ note: String? = nil) throws(PierError) -> Decision {
            // Nothing to write: a delete of a deleted record, or a body identical to the
            // server's (a conflict settled by keeping the server copy). Open conflicts of
            // the record are settled all the same.
            let deletedAlready = clientDeletes && (current == nil || current!.deleted)
            // Byte equality: a client that takes the server's copy sends back its exact bytes.
            let sameBody = !clientDeletes && current.map { !$0.deleted && $0.scope == change.scope && $0.body == proposedBody } == true
            if deletedAlready || (sameBody && unchangedSinceBase) {
                if current != nil { try tx.closeConflicts(collection: change.collection, id: change.id, version: serverVersion) }
                try log(.applied, version: serverVersion, note ?? (deletedAlready ? "already deleted" : "unchanged"))
                return Decision(result: .init(index: index, outcome: .applied, version: serverVersion, serverHLC: current?.hlc.rawValue ?? 0))
            }
            let pending = try tx.currentVersion() + 1
            let version = try write(body: proposedBody, deleted: clientDeletes, fieldMeta: clientDeletes ? nil : meta(for: proposedBody, version: pending))
            try log(.applied, version: version, note)
            // A patch's result is only known here: return it so the client holds the same body.
            let body = change.op == .patch ? proposedBody : nil
            return Decision(result: .init(index: index, outcome: .applied, version: version, body: wire(body), serverHLC: hlc.rawValue))
        }

        func keepServer(_ outcome: SyncResponse.ChangeResult.Outcome, _ note: String) throws(PierError) -> Decision {
            try log(outcome, version: serverVersion, note)
            let reason = outcome == .rejected ? note.split(separator: ":").first.map(String.init) ?? note : ""
            return Decision(result: .init(index: index, outcome: outcome, version: serverVersion,
                                          body: wire(current?.deleted == false ? current?.body : nil), reason: reason,
                                          serverHLC: current?.hlc.rawValue ?? 0))
        }

        func conflict(_ note: String) throws(PierError) -> Decision {
            let id = UUIDv7.make(clock: clock)
            try tx.addConflict(ServerConflict(conflictID: id, collection: change.collection, recordID: change.id,
                                              clientID: c.request.clientID, user: c.identity.user, baseVersion: change.baseVersion,
                                              serverVersion: serverVersion, clientBody: proposedBody,
                                              serverBody: current?.deleted == false ? current?.body : nil,
                                              clientDeleted: clientDeletes, serverDeleted: serverDeleted, createdAt: c.now))
            try log(.conflict, version: serverVersion, "\(note); conflict \(id)")
            let serverBody = current?.deleted == false ? current?.body : nil
            return Decision(
                result: .init(index: index, outcome: .conflict, version: serverVersion, body: wire(serverBody),
                              conflictID: id, serverHLC: current?.hlc.rawValue ?? 0),
                conflict: SyncResponse.ConflictInfo(conflictID: id, collection: change.collection, id: change.id, serverVersion: serverVersion,
                                       baseVersion: change.baseVersion, localBody: wire(proposedBody), serverBody: wire(serverBody)))
        }

        if unchangedSinceBase { return try apply() }
        let stale = "server at version \(serverVersion), change based on \(change.baseVersion)"

        if policy.policy == .custom {
            guard let resolver = resolvers.withLock({ $0[change.collection] }) else {
                return try conflict("\(stale); no custom resolver is registered for \(change.collection)")
            }
            let decision = resolver(ResolverInput(collection: change.collection, id: change.id, clientBody: proposedBody,
                                                  serverBody: current?.deleted == false ? current?.body : nil,
                                                  baseVersion: change.baseVersion, serverVersion: serverVersion, clientHLC: hlc,
                                                  serverHLC: current?.hlc ?? .zero, clientID: c.request.clientID, user: c.identity.user))
            switch decision {
            case .keep(let body):
                guard (try? JSONObject(parsing: body)) != nil else {
                    return try reject("invalid", "the custom resolver returned a body that is not a JSON object", server: current)
                }
                if !clientDeletes, let proposedBody, JSONObject.sameValue(body, proposedBody) { return try apply("custom resolver kept the client's body") }
                if let current, !current.deleted, let serverBody = current.body, JSONObject.sameValue(body, serverBody) {
                    return try keepServer(.superseded, "custom resolver kept the server's body")
                }
                let version = try write(body: body, deleted: false, fieldMeta: nil)
                try log(.merged, version: version, "custom resolver chose a new body")
                return Decision(result: .init(index: index, outcome: .merged, version: version, body: wire(body), serverHLC: hlc.rawValue))
            case .keepServer: return try keepServer(.superseded, "custom resolver kept the server's copy")
            case .reject(let reason): return try reject(reason.isEmpty ? "custom" : reason, "custom resolver refused the change", server: current)
            case .manual: return try conflict("custom resolver asked for a manual resolution")
            }
        }

        if clientDeletes || serverDeleted {
            if clientDeletes && serverDeleted { return try apply("deleted on both sides") }
            switch policy.updateDelete {
            case .updateWins:
                return clientDeletes ? try keepServer(.superseded, "update_wins: the server's update beats this delete (\(stale))")
                                     : try apply("update_wins: the update revives a record deleted on the server")
            case .deleteWins:
                return clientDeletes ? try apply("delete_wins: the delete beats the server's update")
                                     : try keepServer(.superseded, "delete_wins: the record was deleted on the server (\(stale))")
            case .manual:
                return try conflict("update versus delete (\(stale))")
            }
        }

        switch policy.policy {
        case .clientWins: return try apply("client_wins (\(stale))")
        case .arrivalWins: return try apply("arrival_wins: the later arrival wins (\(stale))")
        case .firstWriteWins: return try keepServer(.rejected, "first_write_wins: \(stale); the server copy stands")
        case .manual: return try conflict(stale)
        case .lastWriteWins:
            guard let current else { return try apply() }
            if (hlc, c.request.clientID) > (current.hlc, current.clientID) {
                return try apply("last_write_wins: client HLC \(hlc) is newer than \(current.hlc)")
            }
            return try keepServer(.superseded, "last_write_wins: server HLC \(current.hlc) is newer than \(hlc)")
        case .mergeFields:
            let proposed = proposedBody.flatMap { try? JSONObject(parsing: $0) } ?? JSONObject()
            return try mergeFields(change, index: index, current: current, proposed: proposed,
                                   changedFields: changedFields, hlc: hlc, policy: policy, context: c,
                                   write: write, log: log, conflict: conflict, stale: stale)
        case .custom: return try conflict(stale)  // handled above
        }
    }

    /// Three-way merge of top-level fields: a field only the client changed takes the
    /// client's value, a field only the server changed keeps the server's, and a field both
    /// changed follows its field policy (last-write-wins by default).
    private func mergeFields(
        _ change: SyncRequest.Change, index: UInt32, current: ServerRecord?, proposed: JSONObject, changedFields: Set<String>,
        hlc: HLC, policy: CollectionPolicy, context c: BatchContext,
        write: (_ body: [UInt8]?, _ deleted: Bool, _ fieldMeta: [UInt8]?) throws(PierError) -> Int64,
        log: (_ outcome: SyncResponse.ChangeResult.Outcome, _ version: Int64, _ extra: String?) throws(PierError) -> Void,
        conflict: (_ note: String) throws(PierError) -> Decision,
        stale: String
    ) throws(PierError) -> Decision {
        guard let current, let serverBody = current.body, let server = try? JSONObject(parsing: serverBody) else {
            let version = try write(proposed.bytes, false, nil)
            try log(.applied, version, "merge_fields: no server copy to merge with")
            return Decision(result: .init(index: index, outcome: .applied, version: version, serverHLC: hlc.rawValue))
        }
        var fieldMeta = FieldMeta(current.fieldMeta)
        // A change that never saw the server copy (base 0) changed every field it holds.
        let clientFields = change.baseVersion == 0 && changedFields.isEmpty ? Set(proposed.keys) : changedFields
        var merged = server
        var taken: [String] = []
        var kept: [String] = []
        for field in clientFields.sorted() {
            let clientValue = proposed[field]
            let serverValue = server[field]
            // A field without history on a record that keeps history was never changed on
            // the server; only a record written before it kept history falls back to its version.
            let serverChange = fieldMeta.entries[field] ?? (current.fieldMeta == nil ? (current.version, current.hlc.rawValue) : (0, 0))
            let serverChanged = serverChange.version > change.baseVersion
            if !serverChanged || JSONObject.sameValue(clientValue, serverValue) {
                merged[field] = clientValue
                taken.append(field)
                continue
            }
            switch policy.fieldPolicies[field] ?? .lastWriteWins {
            case .clientWins:
                merged[field] = clientValue
                taken.append(field)
            case .firstWriteWins:
                kept.append(field)
            case .manual:
                return try conflict("merge_fields: field \(field) changed on both sides (\(stale))")
            default:
                if (hlc, c.request.clientID) > (HLC(rawValue: serverChange.hlc), current.clientID) {
                    merged[field] = clientValue
                    taken.append(field)
                } else {
                    kept.append(field)
                }
            }
        }
        let version = try c.tx.currentVersion() + 1
        for field in taken where !JSONObject.sameValue(proposed[field], server[field]) || fieldMeta.entries[field] == nil {
            fieldMeta.entries[field] = (version, hlc.rawValue)
        }
        let body = merged.bytes
        let written = try write(body, false, fieldMeta.bytes)
        let note = "merge_fields: took \(taken.isEmpty ? "nothing" : taken.joined(separator: ",")) from the client"
            + (kept.isEmpty ? "" : ", kept the server's \(kept.joined(separator: ","))")
        let sameAsClient = JSONObject.sameValue(body, proposed.bytes)
        try log(sameAsClient ? .applied : .merged, written, note)
        return Decision(result: .init(index: index, outcome: sameAsClient ? .applied : .merged, version: written,
                                      body: sameAsClient ? nil : wire(body), serverHLC: hlc.rawValue))
    }

    private static func nameProblem(_ value: String, _ what: String, _ max: Int) -> String? {
        let count = value.utf8.count
        if count == 0 || count > max { return "\(what) must be 1-\(max) bytes, got \(count)" }
        if value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) { return "\(what) contains control characters" }
        return nil
    }

    // MARK: Stored batch results

    static func encodeStoredResults(_ results: [SyncResponse.ChangeResult], _ conflicts: [SyncResponse.ConflictInfo]) throws(PierError) -> [UInt8] {
        let message = Message.syncResponse(SyncResponse(serverTime: 0, results: results, cursor: 0, conflicts: conflicts))
        do throws(WireError) { return try message.encodedPayload() } catch {
            throw PierError(.internalError, "cannot store batch results: \(error.message)")
        }
    }

    static func decodeStoredResults(_ bytes: [UInt8]) throws(PierError) -> SyncResponse {
        var limits = WireLimits.default
        limits.maxPayloadBytes = max(limits.maxPayloadBytes, bytes.count)
        limits.maxItems = Int.max / 2
        let message: Message
        do throws(WireError) { message = try Message.decode(payload: bytes, type: .syncResponse, limits: limits) } catch {
            throw PierError(.corrupt, "stored batch results cannot be decoded: \(error.message)")
        }
        guard case .syncResponse(let response) = message else {
            throw PierError(.corrupt, "stored batch results are not a sync response")
        }
        return response
    }

    // MARK: Administration

    /// The business log, filtered and paged.
    public func log(_ filter: LogFilter = LogFilter()) throws(PierError) -> [LogEntry] {
        try store.read { (reader) throws(PierError) in try reader.log(filter) }
    }

    /// Conflicts registered on the server, newest first.
    public func conflicts(_ filter: ConflictFilter = ConflictFilter()) throws(PierError) -> [ServerConflict] {
        try store.read { (reader) throws(PierError) in try reader.conflicts(filter) }
    }

    /// The server copy of a record.
    public func record(_ collection: String, _ id: String) throws(PierError) -> ServerRecord? {
        try store.read { (reader) throws(PierError) in try reader.record(collection, id) }
    }

    /// Purges tombstones that every active client has pulled and that are older than the
    /// horizon. Clients whose cursor is below the new purge horizon are told to resync.
    @discardableResult
    public func purgeTombstones(horizonMilliseconds: Int64? = nil) throws(PierError) -> Int {
        let now = clock.milliseconds()
        let horizon = horizonMilliseconds ?? config.tombstoneHorizonMilliseconds
        let purged = try store.write { (tx) throws(PierError) -> Int in
            var lowest = try tx.currentVersion()
            if let active = try tx.minimumActiveCursor(since: now - config.activeClientWindowMilliseconds) { lowest = active }
            let count = try tx.purgeTombstones(maxVersion: lowest, olderThan: now - horizon + 1)
            if count > 0 { PierLog.log(.info, "purged \(count) tombstones up to version \(lowest)") }
            return count
        }
        if purged > 0 { prefetcher?.invalidateAll() }
        return purged
    }
}

/// Per-field change versions of a merge_fields record: `{"field": [version, hlc]}`.
struct FieldMeta {
    var entries: [String: (version: Int64, hlc: Int64)] = [:]

    init(_ bytes: [UInt8]?) {
        guard let bytes, let object = try? JSONObject(parsing: bytes) else { return }
        for member in object.members {
            let text = String(decoding: member.value, as: UTF8.self)
            let parts = text.dropFirst().dropLast().split(separator: ",")
            if parts.count == 2, let version = Int64(parts[0]), let hlc = Int64(parts[1]) {
                entries[member.key] = (version, hlc)
            }
        }
    }

    var bytes: [UInt8] {
        var out = JSONWriter()
        out.raw("{")
        for (i, key) in entries.keys.sorted().enumerated() {
            if i > 0 { out.raw(",") }
            out.string(key)
            out.raw(":[")
            out.number(entries[key]!.version)
            out.raw(",")
            out.number(entries[key]!.hlc)
            out.raw("]")
        }
        out.raw("}")
        return out.bytes
    }
}

/// Wire bodies from stored bytes.
@inline(__always) func wire(_ bytes: [UInt8]?) -> WireBytes? { bytes.map { WireBytes($0) } }

extension WireBytes {
    /// The bytes copied into an array.
    var array: [UInt8] { withUnsafeBytes { Array($0) } }
}
