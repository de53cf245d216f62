import CSQLite
public import PierStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The master store in one SQLite file: the embedded default.
///
/// One connection behind a mutex: SQLite has one writer at a time anyway, and the
/// mutex makes reads and writes from the HTTP server's threads safe.
public final class SQLiteMasterStore: MasterStore {
    public let path: String
    private let state: Mutex<State?>
    /// The thread inside a call (0 when none): a resolver that calls back into the store
    /// from inside a batch gets `.state` instead of deadlocking on the mutex.
    private let owner = Atomic<UInt>(0)

    static let applicationID: Int32 = 0x5049_5253  // "PIRS"
    static let schemaVersion = 1

    /// Opens (creating if needed) the master store at `path`.
    public init(path: String, durability: Durability = .normal) throws(PierError) {
        self.path = path
        let connection = try Connection(path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX)
        sqlite3_busy_timeout(connection.db, 10_000)
        try Self.prepareSchema(connection, path: path, durability: durability)
        let statements = try State(connection)
        state = Mutex(statements)
    }

    /// Closes the file; later calls fail with `.closed`.
    public func close() {
        state.withLock { $0 = nil }
    }

    private static func prepareSchema(_ c: Connection, path: String, durability: Durability) throws(PierError) {
        let idStatement = try c.prepare("PRAGMA application_id")
        let appID: Int64
        do throws(PierError) { appID = try idStatement.step() ? idStatement.int64(0) : 0 } catch {
            throw PierError(.notADatabase, "\(path) is not a Pier server store", underlying: error.message)
        }
        idStatement.reset()
        let count = try c.prepare("SELECT count(*) FROM sqlite_master")
        let objects = try count.step() ? count.int64(0) : 0
        count.reset()
        if appID != Int64(applicationID) && !(appID == 0 && objects == 0) {
            throw PierError(.notADatabase, "\(path) is not a Pier server store (application_id \(appID)); Pier leaves it untouched")
        }
        try c.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=\(durability == .full ? "FULL" : "NORMAL"); PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;")
        if objects > 0 {
            let version = try c.prepare("SELECT value FROM pier_server_meta WHERE key = 'schema_version'")
            let stored = try version.step() ? Int(version.int64(0)) : 0
            version.reset()
            if stored > schemaVersion {
                throw PierError(.version, "server store schema version \(stored) is newer than this Pier supports (\(schemaVersion))")
            }
            return
        }
        try c.execute("""
            BEGIN IMMEDIATE;
            PRAGMA application_id = \(applicationID);
            CREATE TABLE pier_server_meta(key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
            INSERT INTO pier_server_meta VALUES ('schema_version', \(schemaVersion)), ('version', 0), ('purge_horizon', 0);
            -- The version is the rowid: a pull is a sequential scan of the table in version
            -- order, and a write (which takes a new version) appends at its end.
            CREATE TABLE records(
                version    INTEGER PRIMARY KEY,
                collection TEXT NOT NULL,
                id         TEXT NOT NULL,
                scope      TEXT NOT NULL,
                hlc        INTEGER NOT NULL,
                client_id  TEXT NOT NULL,
                deleted    INTEGER NOT NULL,
                body       TEXT,
                field_meta TEXT,
                updated_at INTEGER NOT NULL
            );
            CREATE UNIQUE INDEX records_by_key ON records(collection, id);
            CREATE TABLE clients(
                client_id    TEXT PRIMARY KEY NOT NULL,
                user         TEXT NOT NULL,
                first_seen   INTEGER NOT NULL,
                last_seen    INTEGER NOT NULL,
                acked_cursor INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE batches(
                client_id  TEXT NOT NULL,
                batch_seq  INTEGER NOT NULL,
                results    BLOB NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (client_id, batch_seq)
            ) WITHOUT ROWID;
            CREATE TABLE business_log(
                seq          INTEGER PRIMARY KEY,
                server_time  INTEGER NOT NULL,
                client_id    TEXT NOT NULL,
                user         TEXT NOT NULL,
                collection   TEXT NOT NULL,
                record_id    TEXT NOT NULL,
                op           TEXT NOT NULL,
                outcome      TEXT NOT NULL,
                base_version INTEGER NOT NULL,
                new_version  INTEGER NOT NULL,
                client_hlc   INTEGER NOT NULL,
                detail       TEXT NOT NULL
            );
            CREATE INDEX business_log_record ON business_log(collection, record_id);
            CREATE TABLE conflicts(
                conflict_id      TEXT PRIMARY KEY NOT NULL,
                collection       TEXT NOT NULL,
                record_id        TEXT NOT NULL,
                client_id        TEXT NOT NULL,
                user             TEXT NOT NULL,
                base_version     INTEGER NOT NULL,
                server_version   INTEGER NOT NULL,
                client_body      TEXT,
                server_body      TEXT,
                client_deleted   INTEGER NOT NULL,
                server_deleted   INTEGER NOT NULL,
                created_at       INTEGER NOT NULL,
                status           TEXT NOT NULL,
                resolved_version INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX conflicts_open ON conflicts(collection, record_id) WHERE status = 'open';
            COMMIT;
            """)
    }

    private func enter() throws(PierError) -> UInt {
        let me = UInt(pthread_self())
        if owner.load(ordering: .relaxed) == me {
            throw PierError(.state, "the server is busy with a call on this thread (a resolver may not call back into its server)")
        }
        return me
    }

    public func write<T>(_ body: (any MasterTransaction) throws(PierError) -> T) throws(PierError) -> T {
        let me = try enter()
        let result: Result<T, PierError> = state.withLock { state in
            owner.store(me, ordering: .relaxed)
            defer { owner.store(0, ordering: .relaxed) }
            guard let state else { return .failure(PierError(.closed, "the server store is closed")) }
            do throws(PierError) {
                try state.begin.run()
                let tx = Transaction(state)
                do throws(PierError) {
                    let value = try body(tx)
                    try tx.finish()
                    try state.commit.run()
                    return .success(value)
                } catch {
                    if !state.connection.isAutocommit { try? state.rollback.run() }
                    return .failure(error)
                }
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    public func read<T>(_ body: (any MasterReader) throws(PierError) -> T) throws(PierError) -> T {
        let me = try enter()
        let result: Result<T, PierError> = state.withLock { state in
            owner.store(me, ordering: .relaxed)
            defer { owner.store(0, ordering: .relaxed) }
            guard let state else { return .failure(PierError(.closed, "the server store is closed")) }
            do throws(PierError) {
                try state.beginRead.run()
                defer { try? state.rollback.run() }
                return .success(try body(Transaction(state)))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Prepared statements of the one connection.
    ///
    /// `@unchecked Sendable` because every use happens inside `state.withLock` (the mutex
    /// serialises all access), and the transaction objects built on it are only handed to
    /// the `write`/`read` body for the duration of the call (MasterStore's contract says
    /// they must not escape).
    fileprivate final class State: @unchecked Sendable {
        let connection: Connection
        let begin, beginRead, commit, rollback: Statement
        let getRecord, putRecord, changes, metaGet, metaSet: Statement
        let batchGet, batchNewest, batchPut, batchTrim, clientGet, clientPut, logPut, conflictPut, conflictClose: Statement

        init(_ c: Connection) throws(PierError) {
            connection = c
            begin = try c.prepare("BEGIN IMMEDIATE")
            beginRead = try c.prepare("BEGIN")
            commit = try c.prepare("COMMIT")
            rollback = try c.prepare("ROLLBACK")
            getRecord = try c.prepare("SELECT scope, version, hlc, client_id, deleted, body, field_meta, updated_at FROM records WHERE collection = ?1 AND id = ?2")
            putRecord = try c.prepare("""
                INSERT OR REPLACE INTO records(collection, id, scope, version, hlc, client_id, deleted, body, field_meta, updated_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                """)
            changes = try c.prepare("""
                SELECT collection, id, scope, version, hlc, '', deleted, body, updated_at FROM records
                WHERE version > ?1
                  AND (?2 IS NULL OR scope IN (SELECT value FROM json_each(?2)) OR collection IN (SELECT value FROM json_each(?3)))
                  AND (?4 IS NULL OR collection IN (SELECT value FROM json_each(?4)))
                ORDER BY version LIMIT ?5
                """)
            metaGet = try c.prepare("SELECT value FROM pier_server_meta WHERE key = ?1")
            metaSet = try c.prepare("UPDATE pier_server_meta SET value = ?2 WHERE key = ?1")
            batchGet = try c.prepare("SELECT results FROM batches WHERE client_id = ?1 AND batch_seq = ?2")
            batchNewest = try c.prepare("SELECT max(batch_seq) FROM batches WHERE client_id = ?1")
            batchPut = try c.prepare("INSERT OR REPLACE INTO batches(client_id, batch_seq, results, created_at) VALUES (?1, ?2, ?3, ?4)")
            // Keep the last 64 batches of a client: a replay older than that is not a lost reply.
            batchTrim = try c.prepare("DELETE FROM batches WHERE client_id = ?1 AND batch_seq <= ?2 - 64")
            clientGet = try c.prepare("SELECT user, first_seen, last_seen, acked_cursor FROM clients WHERE client_id = ?1")
            clientPut = try c.prepare("INSERT OR REPLACE INTO clients(client_id, user, first_seen, last_seen, acked_cursor) VALUES (?1, ?2, ?3, ?4, ?5)")
            logPut = try c.prepare("""
                INSERT INTO business_log(server_time, client_id, user, collection, record_id, op, outcome, base_version, new_version, client_hlc, detail)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                """)
            conflictPut = try c.prepare("""
                INSERT INTO conflicts(conflict_id, collection, record_id, client_id, user, base_version, server_version,
                    client_body, server_body, client_deleted, server_deleted, created_at, status, resolved_version)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'open', 0)
                """)
            conflictClose = try c.prepare("UPDATE conflicts SET status = 'resolved', resolved_version = ?3 WHERE collection = ?1 AND record_id = ?2 AND status = 'open'")
        }
    }

    /// Reads and writes inside one transaction; the version counter is kept in memory and
    /// written back once at the end.
    private final class Transaction: MasterTransaction {
        let s: State
        var version: Int64?
        let startVersion: Int64?

        init(_ s: State) {
            self.s = s
            startVersion = nil
        }

        func finish() throws(PierError) {
            if let version { try setMeta("version", version) }
        }

        private func meta(_ key: String) throws(PierError) -> Int64 {
            s.metaGet.bind(1, key)
            defer { s.metaGet.reset() }
            return try s.metaGet.step() ? s.metaGet.int64(0) : 0
        }

        private func setMeta(_ key: String, _ value: Int64) throws(PierError) {
            s.metaSet.bind(1, key)
            s.metaSet.bind(2, value)
            try s.metaSet.run()
        }

        func record(_ collection: String, _ id: String) throws(PierError) -> ServerRecord? {
            let q = s.getRecord
            q.bind(1, collection)
            q.bind(2, id)
            defer { q.reset() }
            guard try q.step() else { return nil }
            return ServerRecord(collection: collection, id: id, scope: q.string(0) ?? "", version: q.int64(1),
                                hlc: HLC(rawValue: q.int64(2)), clientID: q.string(3) ?? "", deleted: q.int64(4) != 0,
                                body: q.bytes(5), fieldMeta: q.bytes(6), updatedAt: q.int64(7))
        }

        // SQLite's BEGIN IMMEDIATE already holds the only write lock.
        func lockRecord(_ collection: String, _ id: String) throws(PierError) -> ServerRecord? {
            try record(collection, id)
        }

        func currentVersion() throws(PierError) -> Int64 {
            if let version { return version }
            return try meta("version")
        }

        func nextVersion() throws(PierError) -> Int64 {
            let next = try currentVersion() + 1
            version = next
            return next
        }

        func purgeHorizon() throws(PierError) -> Int64 { try meta("purge_horizon") }

        func changes(after cursor: Int64, filter: PullFilter, limit: Int) throws(PierError) -> [ServerRecord] {
            let q = s.changes
            q.bind(1, cursor)
            if let scopes = filter.readScopes { q.bind(2, jsonArray(scopes)) } else { q.bindNull(2) }
            q.bind(3, jsonArray(filter.publicCollections))
            if filter.collections.isEmpty { q.bindNull(4) } else { q.bind(4, jsonArray(filter.collections)) }
            q.bind(5, Int64(limit))
            defer { q.reset() }
            var out: [ServerRecord] = []
            while try q.step() {
                out.append(ServerRecord(collection: q.string(0) ?? "", id: q.string(1) ?? "", scope: q.string(2) ?? "",
                                        version: q.int64(3), hlc: HLC(rawValue: q.int64(4)), clientID: q.string(5) ?? "",
                                        deleted: q.int64(6) != 0, body: q.bytes(7), updatedAt: q.int64(8)))
            }
            return out
        }

        func writeRecord(_ r: ServerRecord) throws(PierError) {
            let q = s.putRecord
            q.bind(1, r.collection)
            q.bind(2, r.id)
            q.bind(3, r.scope)
            q.bind(4, r.version)
            q.bind(5, r.hlc.rawValue)
            q.bind(6, r.clientID)
            q.bind(7, Int64(r.deleted ? 1 : 0))
            q.bind(8, jsonBytes: r.body)
            q.bind(9, jsonBytes: r.fieldMeta)
            q.bind(10, r.updatedAt)
            try q.run()
        }

        func storedBatch(clientID: String, batchSeq: UInt64) throws(PierError) -> [UInt8]? {
            let q = s.batchGet
            q.bind(1, clientID)
            q.bind(2, Int64(bitPattern: batchSeq))
            defer { q.reset() }
            return try q.step() ? q.bytes(0) ?? [] : nil
        }

        func newestBatch(clientID: String) throws(PierError) -> UInt64? {
            let q = s.batchNewest
            q.bind(1, clientID)
            defer { q.reset() }
            guard try q.step(), !q.isNull(0) else { return nil }
            return UInt64(bitPattern: q.int64(0))
        }

        func storeBatch(clientID: String, batchSeq: UInt64, results: [UInt8], now: Int64) throws(PierError) {
            let q = s.batchPut
            q.bind(1, clientID)
            q.bind(2, Int64(bitPattern: batchSeq))
            results.withUnsafeBytes { q.bind(3, blob: $0) }
            q.bind(4, now)
            try q.run()
            s.batchTrim.bind(1, clientID)
            s.batchTrim.bind(2, Int64(bitPattern: batchSeq))
            try s.batchTrim.run()
        }

        func client(_ clientID: String) throws(PierError) -> ClientInfo? {
            let q = s.clientGet
            q.bind(1, clientID)
            defer { q.reset() }
            guard try q.step() else { return nil }
            return ClientInfo(clientID: clientID, user: q.string(0) ?? "", firstSeen: q.int64(1), lastSeen: q.int64(2), ackedCursor: q.int64(3))
        }

        func saveClient(_ info: ClientInfo) throws(PierError) {
            let q = s.clientPut
            q.bind(1, info.clientID)
            q.bind(2, info.user)
            q.bind(3, info.firstSeen)
            q.bind(4, info.lastSeen)
            q.bind(5, info.ackedCursor)
            try q.run()
        }

        func appendLog(_ e: LogEntry) throws(PierError) {
            let q = s.logPut
            q.bind(1, e.serverTime)
            q.bind(2, e.clientID)
            q.bind(3, e.user)
            q.bind(4, e.collection)
            q.bind(5, e.recordID)
            q.bind(6, e.op)
            q.bind(7, e.outcome)
            q.bind(8, e.baseVersion)
            q.bind(9, e.newVersion)
            q.bind(10, e.clientHLC)
            q.bind(11, e.detail)
            try q.run()
        }

        func log(_ f: LogFilter) throws(PierError) -> [LogEntry] {
            var sql = "SELECT seq, server_time, client_id, user, collection, record_id, op, outcome, base_version, new_version, client_hlc, detail FROM business_log WHERE seq > ?1"
            var binds: [(Int32, String)] = []
            var next: Int32 = 2
            func add(_ clause: String, _ value: String?) {
                guard let value else { return }
                sql += " AND \(clause) = ?\(next)"
                binds.append((next, value))
                next += 1
            }
            add("collection", f.collection)
            add("record_id", f.recordID)
            add("client_id", f.clientID)
            add("outcome", f.outcome)
            if let since = f.since { sql += " AND server_time >= \(since)" }
            if let until = f.until { sql += " AND server_time < \(until)" }
            sql += " ORDER BY seq LIMIT \(max(0, f.limit))"
            let q = try s.connection.prepare(sql)
            q.bind(1, f.afterSeq)
            for (index, value) in binds { q.bind(index, value) }
            var out: [LogEntry] = []
            while try q.step() {
                out.append(LogEntry(seq: q.int64(0), serverTime: q.int64(1), clientID: q.string(2) ?? "", user: q.string(3) ?? "",
                                    collection: q.string(4) ?? "", recordID: q.string(5) ?? "", op: q.string(6) ?? "",
                                    outcome: q.string(7) ?? "", baseVersion: q.int64(8), newVersion: q.int64(9),
                                    clientHLC: q.int64(10), detail: q.string(11) ?? ""))
            }
            return out
        }

        func addConflict(_ c: ServerConflict) throws(PierError) {
            let q = s.conflictPut
            q.bind(1, c.conflictID)
            q.bind(2, c.collection)
            q.bind(3, c.recordID)
            q.bind(4, c.clientID)
            q.bind(5, c.user)
            q.bind(6, c.baseVersion)
            q.bind(7, c.serverVersion)
            q.bind(8, jsonBytes: c.clientBody)
            q.bind(9, jsonBytes: c.serverBody)
            q.bind(10, Int64(c.clientDeleted ? 1 : 0))
            q.bind(11, Int64(c.serverDeleted ? 1 : 0))
            q.bind(12, c.createdAt)
            try q.run()
        }

        func closeConflicts(collection: String, id: String, version: Int64) throws(PierError) {
            let q = s.conflictClose
            q.bind(1, collection)
            q.bind(2, id)
            q.bind(3, version)
            try q.run()
        }

        func conflicts(_ f: ConflictFilter) throws(PierError) -> [ServerConflict] {
            var sql = """
                SELECT conflict_id, collection, record_id, client_id, user, base_version, server_version, client_body, server_body,
                       client_deleted, server_deleted, created_at, status, resolved_version FROM conflicts WHERE 1
                """
            var binds: [(Int32, String)] = []
            func add(_ clause: String, _ value: String?, _ close: String = "") {
                guard let value else { return }
                binds.append((Int32(binds.count + 1), value))
                sql += " AND \(clause)?\(binds.count)\(close)"
            }
            add("collection = ", f.collection)
            add("record_id = ", f.recordID)
            add("client_id = ", f.clientID)
            add("(created_at, conflict_id) < (SELECT created_at, conflict_id FROM conflicts WHERE conflict_id = ", f.beforeID, ")")
            if f.openOnly { sql += " AND status = 'open'" }
            if let since = f.since { sql += " AND created_at >= \(since)" }
            if let until = f.until { sql += " AND created_at < \(until)" }
            sql += " ORDER BY created_at DESC, conflict_id DESC LIMIT \(max(0, f.limit))"
            let q = try s.connection.prepare(sql)
            for (index, value) in binds { q.bind(index, value) }
            var out: [ServerConflict] = []
            while try q.step() {
                out.append(ServerConflict(
                    conflictID: q.string(0) ?? "", collection: q.string(1) ?? "", recordID: q.string(2) ?? "",
                    clientID: q.string(3) ?? "", user: q.string(4) ?? "", baseVersion: q.int64(5), serverVersion: q.int64(6),
                    clientBody: q.bytes(7), serverBody: q.bytes(8), clientDeleted: q.int64(9) != 0, serverDeleted: q.int64(10) != 0,
                    createdAt: q.int64(11), status: q.string(12) ?? "", resolvedVersion: q.int64(13)))
            }
            return out
        }

        func minimumActiveCursor(since: Int64) throws(PierError) -> Int64? {
            let q = try s.connection.prepare("SELECT min(acked_cursor) FROM clients WHERE last_seen >= ?1")
            q.bind(1, since)
            guard try q.step(), !q.isNull(0) else { return nil }
            return q.int64(0)
        }

        func purgeTombstones(maxVersion: Int64, olderThan: Int64) throws(PierError) -> Int {
            let top = try s.connection.prepare("SELECT max(version) FROM records WHERE deleted = 1 AND version <= ?1 AND updated_at < ?2")
            top.bind(1, maxVersion)
            top.bind(2, olderThan)
            guard try top.step(), !top.isNull(0) else { return 0 }
            let horizon = top.int64(0)
            let purge = try s.connection.prepare("DELETE FROM records WHERE deleted = 1 AND version <= ?1 AND updated_at < ?2")
            purge.bind(1, maxVersion)
            purge.bind(2, olderThan)
            try purge.run()
            let count = Int(sqlite3_changes(s.connection.db))
            if horizon > (try purgeHorizon()) { try setMeta("purge_horizon", horizon) }
            return count
        }
    }
}

/// A JSON array of strings, for binding a set to `json_each` (sorted: one statement text per set).
func jsonArray(_ values: Set<String>) -> String { JSONWriter.stringArray(values.sorted()) }
