import NIOCore
import PierServer
import PierStore
import PostgresNIO

/// One `read` (REPEATABLE READ, read only) or `write` (READ COMMITTED plus explicit
/// locks) transaction on a borrowed connection. Handed to the store call's body only for
/// the duration of the call.
final class PostgresTransaction: MasterTransaction {
    private let session: Session
    private let n: Names
    private let writable: Bool
    /// The newest version this transaction took; the counter row is locked from the first.
    private var takenVersion: Int64?
    private var firstTakenVersion: Int64?

    init(_ session: Session, _ names: Names, writable: Bool) {
        self.session = session
        self.n = names
        self.writable = writable
    }

    /// Writes the counter back when more than one version was taken (the first was taken
    /// by an UPDATE that already wrote it).
    func finish() throws(PierError) {
        if let takenVersion, takenVersion != firstTakenVersion {
            try run("UPDATE \(unescaped: n.meta) SET value = \(takenVersion) WHERE key = 'version'", "saving the version counter")
        }
    }

    @discardableResult
    private func run(_ query: PostgresQuery, _ doing: @autoclosure () -> String) throws(PierError) -> [Columns] {
        try session.rows(query, doing()).map(Columns.init)
    }

    private func requireWritable(_ what: String) throws(PierError) {
        if !writable { throw PierError(.readOnly, "\(what) needs a write transaction") }
    }

    // MARK: Records and versions

    private static let recordColumns = "scope, version, hlc, client_id, deleted, body, field_meta, updated_at"

    private func record(_ collection: String, _ id: String, _ row: Columns) throws(PierError) -> ServerRecord {
        ServerRecord(collection: collection, id: id, scope: try row.string(0), version: try row.int(1),
                     hlc: HLC(rawValue: try row.int(2)), clientID: try row.string(3), deleted: try row.bool(4),
                     body: try row.bytes(5), fieldMeta: try row.bytes(6), updatedAt: try row.int(7))
    }

    func record(_ collection: String, _ id: String) throws(PierError) -> ServerRecord? {
        let rows = try run("""
            SELECT \(unescaped: Self.recordColumns) FROM \(unescaped: n.records) WHERE collection = \(collection) AND id = \(id)
            """, "reading record \(collection)/\(id)")
        return try rows.first.map { (row) throws(PierError) in try record(collection, id, row) }
    }

    /// An advisory lock on the key first, so that two transactions creating the same new
    /// record serialise too (a row lock needs a row); then the row itself, read after the
    /// lock with a fresh READ COMMITTED snapshot.
    func lockRecord(_ collection: String, _ id: String) throws(PierError) -> ServerRecord? {
        try requireWritable("locking a record")
        try run("SELECT pg_advisory_xact_lock(hashtext(\(n.recordLocks)), hashtext(\(Self.lockKey(collection, id))))",
                "locking record \(collection)/\(id)")
        let rows = try run("""
            SELECT \(unescaped: Self.recordColumns) FROM \(unescaped: n.records) WHERE collection = \(collection) AND id = \(id) FOR UPDATE
            """, "locking record \(collection)/\(id)")
        return try rows.first.map { (row) throws(PierError) in try record(collection, id, row) }
    }

    /// The advisory locks of all the records, taken in one statement in the order of the
    /// lock keys (the hashes), so every writer takes shared locks in the same order — even
    /// when two ids hash alike. A transaction then holds every record lock before it takes
    /// the version counter, and never waits for a record while holding the counter.
    func lockRecords(_ keys: [(collection: String, id: String)]) throws(PierError) {
        try requireWritable("locking records")
        guard !keys.isEmpty else { return }
        let lockKeys = keys.map { Self.lockKey($0.collection, $0.id) }
        try run("""
            SELECT pg_advisory_xact_lock(hashtext(\(n.recordLocks)), h)
            FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(\(lockKeys)::text[]) AS k ORDER BY h) AS ordered
            """, "locking \(keys.count) records")
    }

    /// A record's advisory-lock key: collection and id joined by a unit separator.
    private static func lockKey(_ collection: String, _ id: String) -> String { collection + "\u{1F}" + id }

    func currentVersion() throws(PierError) -> Int64 {
        if let takenVersion { return takenVersion }
        return try meta("version")
    }

    /// The first call increments the counter row and so holds its lock to the end of the
    /// transaction: the next writer waits there until this one commits, which makes
    /// versions commit (and become visible) in the order taken, across processes. Later
    /// calls count on in memory; `finish` writes the last one back.
    func nextVersion() throws(PierError) -> Int64 {
        try requireWritable("taking a version")
        if let takenVersion {
            self.takenVersion = takenVersion + 1
            return takenVersion + 1
        }
        let rows = try run("UPDATE \(unescaped: n.meta) SET value = value + 1 WHERE key = 'version' RETURNING value",
                           "taking a version")
        let version = try rows.first.unwrap("taking a version").int(0)
        takenVersion = version
        firstTakenVersion = version
        return version
    }

    func purgeHorizon() throws(PierError) -> Int64 { try meta("purge_horizon") }

    private func meta(_ key: String) throws(PierError) -> Int64 {
        let rows = try run("SELECT value FROM \(unescaped: n.meta) WHERE key = \(key)", "reading \(key)")
        return try rows.first?.int(0) ?? 0
    }

    func changes(after cursor: Int64, filter: PullFilter, limit: Int) throws(PierError) -> [ServerRecord] {
        let scopes: [String]? = filter.readScopes.map { $0.sorted() }
        let publicCollections = filter.publicCollections.sorted()
        let collections: [String]? = filter.collections.isEmpty ? nil : filter.collections.sorted()
        let rows = try run("""
            SELECT collection, id, scope, version, hlc, deleted, body, updated_at FROM \(unescaped: n.records)
            WHERE version > \(cursor)
              AND (\(scopes)::text[] IS NULL OR scope = ANY(\(scopes)::text[]) OR collection = ANY(\(publicCollections)::text[]))
              AND (\(collections)::text[] IS NULL OR collection = ANY(\(collections)::text[]))
            ORDER BY version LIMIT \(Int64(max(0, limit)))
            """, "reading changes after version \(cursor)")
        var out: [ServerRecord] = []
        out.reserveCapacity(rows.count)
        for row in rows {
            // As in the SQLite store: a pull needs neither the writer's client id nor field metadata.
            out.append(ServerRecord(collection: try row.string(0), id: try row.string(1), scope: try row.string(2),
                                    version: try row.int(3), hlc: HLC(rawValue: try row.int(4)), clientID: "",
                                    deleted: try row.bool(5), body: try row.bytes(6), updatedAt: try row.int(7)))
        }
        return out
    }

    func writeRecord(_ r: ServerRecord) throws(PierError) {
        try requireWritable("writing a record")
        try run("""
            INSERT INTO \(unescaped: n.records)(collection, id, scope, version, hlc, client_id, deleted, body, field_meta, updated_at)
            VALUES (\(r.collection), \(r.id), \(r.scope), \(r.version), \(r.hlc.rawValue), \(r.clientID), \(r.deleted),
                    \(r.body.byteBuffer)::bytea, \(r.fieldMeta.byteBuffer)::bytea, \(r.updatedAt))
            ON CONFLICT (collection, id) DO UPDATE SET
                scope = EXCLUDED.scope, version = EXCLUDED.version, hlc = EXCLUDED.hlc, client_id = EXCLUDED.client_id,
                deleted = EXCLUDED.deleted, body = EXCLUDED.body, field_meta = EXCLUDED.field_meta, updated_at = EXCLUDED.updated_at
            """, "writing record \(r.collection)/\(r.id)")
    }

    // MARK: Batches and clients

    func storedBatch(clientID: String, batchSeq: UInt64) throws(PierError) -> [UInt8]? {
        let rows = try run("""
            SELECT results FROM \(unescaped: n.batches) WHERE client_id = \(clientID) AND batch_seq = \(Int64(bitPattern: batchSeq))
            """, "reading batch \(batchSeq) of client \(clientID)")
        guard let row = rows.first else { return nil }
        return try row.bytes(0) ?? []
    }

    func newestBatch(clientID: String) throws(PierError) -> UInt64? {
        let rows = try run("SELECT max(batch_seq) FROM \(unescaped: n.batches) WHERE client_id = \(clientID)",
                           "reading the newest batch of client \(clientID)")
        guard let row = rows.first, let seq = try row.optionalInt(0) else { return nil }
        return UInt64(bitPattern: seq)
    }

    func storeBatch(clientID: String, batchSeq: UInt64, results: [UInt8], now: Int64) throws(PierError) {
        try requireWritable("storing a batch")
        let seq = Int64(bitPattern: batchSeq)
        try run("""
            INSERT INTO \(unescaped: n.batches)(client_id, batch_seq, results, created_at)
            VALUES (\(clientID), \(seq), \(ByteBuffer(bytes: results)), \(now))
            ON CONFLICT (client_id, batch_seq) DO UPDATE SET results = EXCLUDED.results, created_at = EXCLUDED.created_at
            """, "storing batch \(batchSeq) of client \(clientID)")
        // Keep the last 64 batches of a client: a replay older than that is not a lost reply.
        try run("DELETE FROM \(unescaped: n.batches) WHERE client_id = \(clientID) AND batch_seq <= \(seq) - 64",
                "trimming the batches of client \(clientID)")
    }

    /// In a write transaction the client is locked first (an advisory lock on its id), so
    /// two requests of one client serialise: a batch replayed while its first delivery is
    /// still being applied waits, then finds the stored results instead of applying twice.
    func client(_ clientID: String) throws(PierError) -> ClientInfo? {
        if writable {
            try run("SELECT pg_advisory_xact_lock(hashtext(\(n.clientLocks)), hashtext(\(clientID)))", "locking client \(clientID)")
        }
        let rows = try run("""
            SELECT user_name, first_seen, last_seen, acked_cursor FROM \(unescaped: n.clients) WHERE client_id = \(clientID)
            """, "reading client \(clientID)")
        guard let row = rows.first else { return nil }
        return ClientInfo(clientID: clientID, user: try row.string(0), firstSeen: try row.int(1), lastSeen: try row.int(2),
                          ackedCursor: try row.int(3))
    }

    func saveClient(_ info: ClientInfo) throws(PierError) {
        try requireWritable("saving a client")
        try run("""
            INSERT INTO \(unescaped: n.clients)(client_id, user_name, first_seen, last_seen, acked_cursor)
            VALUES (\(info.clientID), \(info.user), \(info.firstSeen), \(info.lastSeen), \(info.ackedCursor))
            ON CONFLICT (client_id) DO UPDATE SET user_name = EXCLUDED.user_name, first_seen = EXCLUDED.first_seen,
                last_seen = EXCLUDED.last_seen, acked_cursor = EXCLUDED.acked_cursor
            """, "saving client \(info.clientID)")
    }

    func minimumActiveCursor(since: Int64) throws(PierError) -> Int64? {
        let rows = try run("SELECT min(acked_cursor) FROM \(unescaped: n.clients) WHERE last_seen >= \(since)",
                           "reading the lowest client cursor")
        return try rows.first?.optionalInt(0)
    }

    // MARK: Business log

    func appendLog(_ e: LogEntry) throws(PierError) {
        try requireWritable("appending to the business log")
        try run("""
            INSERT INTO \(unescaped: n.log)(server_time, client_id, user_name, collection, record_id, op, outcome,
                                             base_version, new_version, client_hlc, detail)
            VALUES (\(e.serverTime), \(e.clientID), \(e.user), \(e.collection), \(e.recordID), \(e.op), \(e.outcome),
                    \(e.baseVersion), \(e.newVersion), \(e.clientHLC), \(e.detail))
            """, "appending to the business log")
    }

    func log(_ f: LogFilter) throws(PierError) -> [LogEntry] {
        var sql = """
            SELECT seq, server_time, client_id, user_name, collection, record_id, op, outcome, base_version, new_version,
                   client_hlc, detail FROM \(n.log) WHERE seq > $1
            """
        var binds = PostgresBindings()
        binds.append(f.afterSeq)
        func add(_ clause: String, _ value: String?) {
            guard let value else { return }
            binds.append(value)
            sql += " AND \(clause) = $\(binds.count)"
        }
        add("collection", f.collection)
        add("record_id", f.recordID)
        add("client_id", f.clientID)
        add("outcome", f.outcome)
        if let since = f.since { sql += " AND server_time >= \(since)" }
        if let until = f.until { sql += " AND server_time < \(until)" }
        sql += " ORDER BY seq LIMIT \(max(0, f.limit))"
        var out: [LogEntry] = []
        for row in try run(PostgresQuery(unsafeSQL: sql, binds: binds), "reading the business log") {
            out.append(LogEntry(seq: try row.int(0), serverTime: try row.int(1), clientID: try row.string(2), user: try row.string(3),
                                collection: try row.string(4), recordID: try row.string(5), op: try row.string(6),
                                outcome: try row.string(7), baseVersion: try row.int(8), newVersion: try row.int(9),
                                clientHLC: try row.int(10), detail: try row.string(11)))
        }
        return out
    }

    // MARK: Conflicts

    func addConflict(_ c: ServerConflict) throws(PierError) {
        try requireWritable("registering a conflict")
        try run("""
            INSERT INTO \(unescaped: n.conflicts)(conflict_id, collection, record_id, client_id, user_name, base_version, server_version,
                client_body, server_body, client_deleted, server_deleted, created_at, status, resolved_version)
            VALUES (\(c.conflictID), \(c.collection), \(c.recordID), \(c.clientID), \(c.user), \(c.baseVersion), \(c.serverVersion),
                    \(c.clientBody.byteBuffer)::bytea, \(c.serverBody.byteBuffer)::bytea, \(c.clientDeleted), \(c.serverDeleted),
                    \(c.createdAt), 'open', 0)
            """, "registering conflict \(c.conflictID)")
    }

    func closeConflicts(collection: String, id: String, version: Int64) throws(PierError) {
        try requireWritable("closing conflicts")
        try run("""
            UPDATE \(unescaped: n.conflicts) SET status = 'resolved', resolved_version = \(version)
            WHERE collection = \(collection) AND record_id = \(id) AND status = 'open'
            """, "closing the conflicts of \(collection)/\(id)")
    }

    func conflicts(_ f: ConflictFilter) throws(PierError) -> [ServerConflict] {
        var sql = """
            SELECT conflict_id, collection, record_id, client_id, user_name, base_version, server_version, client_body, server_body,
                   client_deleted, server_deleted, created_at, status, resolved_version FROM \(n.conflicts) WHERE true
            """
        var binds = PostgresBindings()
        func add(_ clause: String, _ value: String?, _ close: String = "") {
            guard let value else { return }
            binds.append(value)
            sql += " AND \(clause)$\(binds.count)\(close)"
        }
        add("collection = ", f.collection)
        add("record_id = ", f.recordID)
        add("client_id = ", f.clientID)
        add("(created_at, conflict_id) < (SELECT created_at, conflict_id FROM \(n.conflicts) WHERE conflict_id = ", f.beforeID, ")")
        if f.openOnly { sql += " AND status = 'open'" }
        if let since = f.since { sql += " AND created_at >= \(since)" }
        if let until = f.until { sql += " AND created_at < \(until)" }
        sql += " ORDER BY created_at DESC, conflict_id DESC LIMIT \(max(0, f.limit))"
        var out: [ServerConflict] = []
        for row in try run(PostgresQuery(unsafeSQL: sql, binds: binds), "reading conflicts") {
            out.append(ServerConflict(
                conflictID: try row.string(0), collection: try row.string(1), recordID: try row.string(2),
                clientID: try row.string(3), user: try row.string(4), baseVersion: try row.int(5), serverVersion: try row.int(6),
                clientBody: try row.bytes(7), serverBody: try row.bytes(8), clientDeleted: try row.bool(9),
                serverDeleted: try row.bool(10), createdAt: try row.int(11), status: try row.string(12),
                resolvedVersion: try row.int(13)))
        }
        return out
    }

    // MARK: Tombstones

    func purgeTombstones(maxVersion: Int64, olderThan: Int64) throws(PierError) -> Int {
        try requireWritable("purging tombstones")
        let rows = try run("""
            WITH gone AS (
                DELETE FROM \(unescaped: n.records) WHERE deleted AND version <= \(maxVersion) AND updated_at < \(olderThan)
                RETURNING version
            )
            SELECT count(*), max(version) FROM gone
            """, "purging tombstones")
        let row = try rows.first.unwrap("purging tombstones")
        guard let horizon = try row.optionalInt(1) else { return 0 }
        try run("UPDATE \(unescaped: n.meta) SET value = greatest(value, \(horizon)) WHERE key = 'purge_horizon'",
                "raising the purge horizon")
        return Int(try row.int(0))
    }
}
