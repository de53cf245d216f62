import Foundation
import Pier
@testable import PierPostgres
import PierServer
import PierStore
import PierWire
import Synchronization
import Testing

/// PostgreSQL-only behaviour: several stores on one schema standing in for several
/// `pier serve` processes, migrations, connection errors. Needs PIER_TEST_POSTGRES_URL
/// (scripts/pg-cluster start); with PIER_REQUIRE_POSTGRES=1 a missing URL is a failure.
@Suite("PostgreSQL master store")
struct PostgresTests {
    static var configured: Bool { Backends.postgresURL != nil }

    var url: String { Backends.postgresURL ?? "" }

    @Test("the PostgreSQL tests are configured when PIER_REQUIRE_POSTGRES=1")
    func required() {
        if ProcessInfo.processInfo.environment["PIER_REQUIRE_POSTGRES"] == "1" {
            #expect(Self.configured, "PIER_REQUIRE_POSTGRES=1 but PIER_TEST_POSTGRES_URL is not set: run scripts/pg-cluster start")
        }
    }

    // MARK: Opening

    @Test("malformed URLs and schema names are .invalid")
    func badURLs() {
        for bad in ["", "mysql://u@h/db", "postgres://u@h:99999/db", "postgres://u@h:port/db", "postgres://u@h/db?sslmode=maybe",
                    "postgres://u@h/db?nonsense=1", "postgres://u@h/db?sslmode", "postgres://:pw@h/db", "postgres://u@h/d%zz"] {
            let error = #expect(throws: PierError.self, "\(bad)") { try PostgresMasterStore(url: bad) }
            #expect(error?.code == .invalid, "\(bad): \(String(describing: error))")
        }
        for schema in ["", "1abc", "a-b", "a\"b", String(repeating: "x", count: 64)] {
            let error = #expect(throws: PierError.self) { try PostgresMasterStore(url: "postgres://u@127.0.0.1/db", schema: schema) }
            #expect(error?.code == .invalid)
        }
    }

    @Test("URLs parse the libpq way")
    func urlParsing() throws {
        let full = try PostgresURL("postgresql://us%40er:p%3Ass@db.example:6543/my%20db?sslmode=disable&connect_timeout=3&pool_size=4")
        #expect(full.user == "us@er")
        #expect(full.password == "p:ss")
        #expect(full.host == "db.example")
        #expect(full.port == 6543)
        #expect(full.database == "my db")
        #expect(full.tls == .disable)
        #expect(full.connectTimeoutSeconds == 3)
        #expect(full.poolSize == 4)
        let socket = try PostgresURL("postgres://pier@/pier_test?host=/run/postgresql&port=5433")
        #expect(socket.unixSocketPath == "/run/postgresql/.s.PGSQL.5433")
        let v6 = try PostgresURL("postgres://u@[::1]:5440/db")
        #expect(v6.host == "::1" && v6.port == 5440 && v6.tls == .prefer)
        #expect(!full.location.contains("p:ss"), "messages never show the password")
    }

    @Test("nothing listening is .network and says where")
    func nothingListening() {
        let error = #expect(throws: PierError.self) {
            try PostgresMasterStore(url: "postgres://pier:pier@127.0.0.1:1/pier_test?sslmode=disable&connect_timeout=5")
        }
        #expect(error?.code == .network)
        #expect(error?.message.contains("127.0.0.1:1") == true, "\(String(describing: error))")
    }

    @Test("a wrong password is .auth with the server's reason", .enabled(if: configured))
    func wrongPassword() throws {
        var parsed = try PostgresURL(url)
        parsed.password = "wrong"
        let bad = "postgres://\(parsed.user):wrong@\(parsed.host):\(parsed.port)/\(parsed.database ?? "")?sslmode=disable"
        let error = #expect(throws: PierError.self) { try PostgresMasterStore(url: bad, schema: Backends.freshSchema()) }
        #expect(error?.code == .auth, "\(String(describing: error))")
        #expect(error?.message.contains("password authentication failed") == true, "\(String(describing: error))")
    }

    @Test("a missing database is .notFound", .enabled(if: configured))
    func missingDatabase() throws {
        let parsed = try PostgresURL(url)
        let bad = "postgres://\(parsed.user):\(parsed.password ?? "")@\(parsed.host):\(parsed.port)/no_such_db?sslmode=disable"
        let error = #expect(throws: PierError.self) { try PostgresMasterStore(url: bad, schema: Backends.freshSchema()) }
        #expect(error?.code == .notFound, "\(String(describing: error))")
    }

    @Test("sslmode=prefer falls back to plain text on a server without TLS", .enabled(if: configured))
    func preferTLS() throws {
        let plain = url.replacingOccurrences(of: "sslmode=disable", with: "sslmode=prefer")
        let store = try PostgresMasterStore(url: plain, schema: Backends.freshSchema())
        defer { store.close() }
        #expect(try store.read { (r) throws(PierError) in try r.currentVersion() } == 0)
    }

    @Test("a Unix socket URL (host=/folder) connects", .enabled(if: configured))
    func unixSocket() throws {
        let store = try PostgresMasterStore(url: url, schema: Backends.freshSchema())
        defer { store.close() }
        let folder = try #require(try store.execute("SHOW unix_socket_directories").first?.first)
        let parsed = try PostgresURL(url)
        let socketURL = "postgres://\(parsed.user):\(parsed.password ?? "")@/\(parsed.database ?? "")?host=\(folder.split(separator: ",")[0])&port=\(parsed.port)"
        let viaSocket = try PostgresMasterStore(url: socketURL, schema: store.schema)
        defer { viaSocket.close() }
        _ = try store.write { (tx) throws(PierError) in try tx.nextVersion() }
        #expect(try viaSocket.read { (r) throws(PierError) in try r.currentVersion() } == 1)
    }

    @Test("a pooled connection the server dropped is replaced; one dropped inside a write is .network and applies nothing", .enabled(if: configured))
    func droppedConnections() throws {
        let schema = Backends.freshSchema()
        let name = "pier_drop_" + schema.suffix(8)
        let store = try PostgresMasterStore(url: url + "&application_name=\(name)&query_timeout=10", schema: schema)
        let killer = try PostgresMasterStore(url: url, schema: schema)
        defer {
            store.close()
            killer.close()
        }
        func dropConnections() throws {
            let killed = try killer.execute("SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity WHERE application_name = '\(name)'")
            #expect(killed.first?.first != "0", "the store had a connection to drop")
        }
        _ = try store.write { (tx) throws(PierError) in try tx.nextVersion() }
        try dropConnections()
        // The idle connection in the pool is dead: the next calls reconnect by themselves.
        #expect(try store.read { (r) throws(PierError) in try r.currentVersion() } == 1)
        try dropConnections()
        _ = try store.write { (tx) throws(PierError) in try tx.nextVersion() }

        let error = #expect(throws: PierError.self) {
            try store.write { (tx) throws(PierError) in
                let version = try tx.nextVersion()
                try tx.writeRecord(ServerRecord(collection: "c", id: "lost", scope: "s", version: version, hlc: HLC(rawValue: 1),
                                                clientID: "w", deleted: false, body: Array("{}".utf8), updatedAt: 1))
                do { try dropConnections() } catch { Issue.record("\(error)") }
                try tx.appendLog(LogEntry(serverTime: 1, clientID: "w", user: "u", collection: "c", recordID: "lost", op: "upsert",
                                          outcome: "applied", baseVersion: 0, newVersion: version, clientHLC: 1, detail: ""))
            }
        }
        #expect(error?.code == .network, "\(String(describing: error))")
        try store.read { (r) throws(PierError) in
            #expect(try r.record("c", "lost") == nil)
            #expect(try r.currentVersion() == 2)
        }
    }

    @Test("a schema written by a newer Pier is .version; a schema of other tables is .notADatabase", .enabled(if: configured))
    func foreignSchemas() throws {
        let schema = Backends.freshSchema()
        let store = try PostgresMasterStore(url: url, schema: schema)
        _ = try store.execute("INSERT INTO \(schema).pier_schema(version) VALUES (99)")
        let newer = #expect(throws: PierError.self) { try PostgresMasterStore(url: url, schema: schema) }
        #expect(newer?.code == .version, "\(String(describing: newer))")

        let other = Backends.freshSchema()
        _ = try store.execute("CREATE SCHEMA \(other)")
        _ = try store.execute("CREATE TABLE \(other).invoices(id int)")
        let foreign = #expect(throws: PierError.self) { try PostgresMasterStore(url: url, schema: other) }
        #expect(foreign?.code == .notADatabase, "\(String(describing: foreign))")
        #expect(try store.execute("SELECT count(*)::text FROM pg_tables WHERE schemaname = '\(other)'") == [["1"]], "left untouched")
        store.close()
        #expect(throws: PierError.self) { try store.read { (r) throws(PierError) in try r.currentVersion() } }
    }

    @Test("several processes opening a new schema at once migrate it exactly once", .enabled(if: configured))
    func concurrentMigration() throws {
        let schema = Backends.freshSchema()
        let url = url
        let stores = Mutex<[PostgresMasterStore]>([])
        let errors = runThreads(6) { _ in
            let store = try PostgresMasterStore(url: url, schema: schema)
            stores.withLock { $0.append(store) }
        }
        #expect(errors.isEmpty, "\(errors)")
        let opened = stores.withLock { $0 }
        #expect(opened.count == 6)
        let first = try #require(opened.first)
        #expect(try first.execute("SELECT version::text FROM \(schema).pier_schema") == [["1"]])
        for store in opened {
            _ = try store.write { (tx) throws(PierError) in try tx.nextVersion() }
        }
        #expect(try first.read { (r) throws(PierError) in try r.currentVersion() } == 6)
        for store in opened { store.close() }
    }

    // MARK: Several processes

    @Test("two stores on one schema: versions become visible in the order taken, with no gaps", .enabled(if: configured))
    func versionsVisibleInOrder() throws {
        let schema = Backends.freshSchema()
        let stores = [try PostgresMasterStore(url: url, schema: schema), try PostgresMasterStore(url: url, schema: schema)]
        defer { for store in stores { store.close() } }
        let writersLeft = Atomic(4)
        let gaps = Mutex<[String]>([])
        let errors = runThreads(5) { index in
            if index < 4 {
                defer { writersLeft.subtract(1, ordering: .relaxed) }
                for i in 0..<25 {
                    try stores[index % 2].write { (tx) throws(PierError) in
                        let version = try tx.nextVersion()
                        // Hold the version a while before committing, as a slow batch would.
                        usleep(UInt32.random(in: 0...2_000))
                        try tx.writeRecord(ServerRecord(collection: "c", id: "w\(index)-\(i)", scope: "s", version: version,
                                                        hlc: HLC(rawValue: 1), clientID: "w", deleted: false,
                                                        body: Array(#"{"i":\#(i)}"#.utf8), updatedAt: 1))
                    }
                }
            } else {
                var checks = 0
                while writersLeft.load(ordering: .relaxed) > 0 || checks == 0 {
                    checks += 1
                    let (top, versions) = try stores[1].read { (r) throws(PierError) in
                        (try r.currentVersion(), try r.changes(after: 0, filter: PullFilter(readScopes: nil), limit: 1_000).map(\.version))
                    }
                    // Every record is new, so a snapshot must hold exactly versions 1...top.
                    if versions != Array(stride(from: Int64(1), through: top, by: 1)) {
                        gaps.withLock { $0.append("top \(top), visible \(versions)") }
                    }
                }
            }
        }
        #expect(errors.isEmpty, "\(errors)")
        #expect(gaps.withLock { $0 }.isEmpty, "\(gaps.withLock { $0 }.prefix(3))")
        #expect(try stores[0].read { (r) throws(PierError) in try r.currentVersion() } == 100)
    }

    @Test("two creates of one new record on two stores serialise", .enabled(if: configured))
    func createsSerialise() throws {
        let schema = Backends.freshSchema()
        let stores = [try PostgresMasterStore(url: url, schema: schema), try PostgresMasterStore(url: url, schema: schema)]
        defer { for store in stores { store.close() } }
        let outcomes = Mutex<[String]>([])
        let errors = runThreads(8) { index in
            try stores[index % 2].write { (tx) throws(PierError) in
                let current = try tx.lockRecord("c", "new")
                usleep(2_000)
                let version = try tx.nextVersion()
                let count = current.map { Int(String(decoding: $0.body ?? [], as: UTF8.self).dropFirst(5).dropLast()) ?? -1 } ?? 0
                try tx.writeRecord(ServerRecord(collection: "c", id: "new", scope: "s", version: version, hlc: HLC(rawValue: 1),
                                                clientID: "w", deleted: false, body: Array(#"{"n":\#(count + 1)}"#.utf8), updatedAt: 1))
                outcomes.withLock { $0.append(current == nil ? "created" : "updated") }
            }
        }
        #expect(errors.isEmpty, "\(errors)")
        let final = try stores[0].read { (r) throws(PierError) in try r.record("c", "new") }
        #expect(final.map { String(decoding: $0.body ?? [], as: UTF8.self) } == #"{"n":8}"#, "no increment lost")
        #expect(outcomes.withLock { $0.filter { $0 == "created" }.count } == 1)
    }

    @Test("a deadlock between two writers is retried transparently", .enabled(if: configured))
    func deadlockRetried() throws {
        let schema = Backends.freshSchema()
        let stores = [try PostgresMasterStore(url: url, schema: schema), try PostgresMasterStore(url: url, schema: schema)]
        defer { for store in stores { store.close() } }
        let runs = Atomic(0)
        let firstLocks = Atomic(0)
        let errors = runThreads(2) { index in
            var attempt = 0
            try stores[index].write { (tx) throws(PierError) in
                attempt += 1
                runs.add(1, ordering: .relaxed)
                let (first, second) = index == 0 ? ("a", "b") : ("b", "a")
                _ = try tx.lockRecord("c", first)
                if attempt == 1 {
                    // Both hold their first lock before either asks for the second: a sure deadlock.
                    firstLocks.add(1, ordering: .relaxed)
                    let deadline = ContinuousClock.now + .seconds(20)
                    while firstLocks.load(ordering: .relaxed) < 2 && ContinuousClock.now < deadline { usleep(1_000) }
                }
                _ = try tx.lockRecord("c", second)
                try tx.writeRecord(ServerRecord(collection: "c", id: "by\(index)", scope: "s", version: try tx.nextVersion(),
                                                hlc: HLC(rawValue: 1), clientID: "w", deleted: false, body: Array("{}".utf8), updatedAt: 1))
            }
        }
        #expect(errors.isEmpty, "\(errors)")
        #expect(runs.load(ordering: .relaxed) == 3, "PostgreSQL broke the deadlock by aborting one writer, which ran again")
        try stores[0].read { (r) throws(PierError) in
            #expect(try r.record("c", "by0") != nil)
            #expect(try r.record("c", "by1") != nil)
            #expect(try r.currentVersion() == 2)
        }
    }

    /// Two batches on records a and b in opposite orders through two servers, arranged so
    /// that B holds b when A starts, and B goes on only once A waits for a lock.
    /// `prelock: false` hides the store's `lockRecords` from SyncServer.
    private func opposingBatches(prelock: Bool) throws -> (runsA: Int, runsB: Int, responses: [Int: SyncResponse], log: [LogEntry]) {
        let schema = Backends.freshSchema()
        let nameA = "pier_dl_" + schema.suffix(10)
        let storeA = try PostgresMasterStore(url: url + "&application_name=\(nameA)", schema: schema)
        let storeB = try PostgresMasterStore(url: url, schema: schema)
        let observer = try PostgresMasterStore(url: url, schema: schema)
        defer { for store in [storeA, storeB, observer] { store.close() } }
        let bHoldsB = Barrier(parties: 1)
        let wrappedA = HookStore(storeA, prelock: prelock, afterFirstLock: nil)
        let wrappedB = HookStore(storeB, prelock: prelock) {
            bHoldsB.arriveAndWait()
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                let waiting = try? observer.execute("SELECT count(*)::text FROM pg_stat_activity WHERE application_name = '\(nameA)' AND wait_event_type = 'Lock'")
                if waiting?.first?.first != "0" { break }
                usleep(2_000)
            }
        }
        let servers = [SyncServer(store: wrappedA), SyncServer(store: wrappedB)]
        @Sendable func change(_ id: String) -> SyncRequest.Change {
            SyncRequest.Change(collection: "c", id: id, op: .upsert, baseVersion: 0, hlc: 1, scope: "s", body: WireBytes(#"{"v":1}"#))
        }
        let responses = Mutex<[Int: SyncResponse]>([:])
        let errors = runThreads(2) { index in
            if index == 0 { bHoldsB.waitForAll() }
            let ids = index == 0 ? ["a", "b"] : ["b", "a"]
            let response = try servers[index].handle(request: SyncRequest(clientID: "k\(index)", batchSeq: 1, changes: ids.map(change)),
                                                     identity: .trusted())
            responses.withLock { $0[index] = response }
        }
        #expect(errors.isEmpty, "\(errors)")
        return (wrappedA.runs.load(ordering: .relaxed), wrappedB.runs.load(ordering: .relaxed), responses.withLock { $0 },
                try servers[0].log(LogFilter(limit: 100)))
    }

    @Test("a batch PostgreSQL aborts for a deadlock is handled again from scratch: one result per change, one log line each", .enabled(if: configured))
    func serverRetriesDeadlockedBatch() throws {
        // Without the up-front locks, A takes the version counter after answering its change
        // to a, then waits for b, which B holds while B waits for the counter: a deadlock.
        // A waited first, so PostgreSQL's check aborts A, whose batch must run again from scratch.
        let run = try opposingBatches(prelock: false)
        // At least once more; a retry can meet B again and deadlock anew, so no exact count.
        #expect(run.runsA >= 2, "A's batch ran again")
        for index in 0..<2 {
            #expect(run.responses[index]?.results.map(\.index) == [0, 1], "one result per change, not one per attempt")
        }
        #expect(run.log.count == 4)
        let versions = run.log.filter { $0.outcome == "applied" || $0.outcome == "merged" }.map(\.newVersion)
        #expect(Set(versions).count == versions.count)
    }

    @Test("batches sharing records in opposite orders wait for each other instead of deadlocking", .enabled(if: configured))
    func noDeadlockWithPrelock() throws {
        let run = try opposingBatches(prelock: true)
        #expect(run.runsA == 1 && run.runsB == 1, "no batch was aborted and run again")
        for index in 0..<2 {
            #expect(run.responses[index]?.results.count == 2)
        }
        #expect(run.log.count == 4)
    }

    @Test("clients syncing through two servers on one database: no lost update, unique versions, a full log", .enabled(if: configured))
    func twoServers() throws {
        let schema = Backends.freshSchema()
        var config = ServerConfig()
        config.collections["shared"] = CollectionPolicy(.mergeFields)
        let stores = [try PostgresMasterStore(url: url, schema: schema), try PostgresMasterStore(url: url, schema: schema)]
        defer { for store in stores { store.close() } }
        let servers = stores.map { SyncServer(store: $0, config: config) }
        let dir = NSTemporaryDirectory() + "pier-pg-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let clients = 4, rounds = 5, sharedRecords = 3
        let pushed = Atomic(0)
        // Seed the shared records, so every client edits the same ones.
        let seed = try Database(path: dir + "/seed.pier")
        for s in 0..<sharedRecords { try seed.put("shared", id: "s\(s)", body: "{}") }
        pushed.add(try seed.sync(with: servers[0]).pushed, ordering: .relaxed)
        seed.close()

        let writersLeft = Atomic(clients)
        let reader = Mutex<(cursor: Int64, seen: [String: Int64])>((0, [:]))
        let errors = runThreads(clients + 1) { index in
            if index == clients {
                // A reader pulling incrementally through the second server while the writers run.
                var rounds = 0
                while writersLeft.load(ordering: .relaxed) > 0 || rounds < 2 {
                    rounds += writersLeft.load(ordering: .relaxed) == 0 ? 1 : 0
                    try reader.withLock { (state) throws in
                        state.cursor = try pullAll(servers[1], from: state.cursor, into: &state.seen)
                    }
                }
                return
            }
            defer { writersLeft.subtract(1, ordering: .relaxed) }
            let db = try Database(path: dir + "/client\(index).pier")
            defer { db.close() }
            pushed.add(try db.sync(with: servers[index % 2]).pushed, ordering: .relaxed)
            for round in 1...rounds {
                // Odd clients go through the shared records backwards: batches lock them in
                // opposite orders.
                for s in index % 2 == 0 ? Array(0..<sharedRecords) : (0..<sharedRecords).reversed() {
                    try db.patch("shared", id: "s\(s)", patch: #"{"c\#(index)":\#(round)}"#)
                }
                for k in 0..<3 {
                    try db.put("own", id: "c\(index)-\(k)", body: #"{"round":\#(round)}"#)
                }
                if round == rounds { try db.delete("own", id: "c\(index)-0") }
                // Alternate servers, as a load balancer would.
                pushed.add(try db.sync(with: servers[(index + round) % 2]).pushed, ordering: .relaxed)
            }
        }
        #expect(errors.isEmpty, "\(errors)")

        // No lost update: every client's last value of its field is in every shared record.
        for s in 0..<sharedRecords {
            let record = try #require(try servers[0].record("shared", "s\(s)"))
            let body = try JSONSerialization.jsonObject(with: Data(record.body ?? [])) as? [String: Int]
            #expect(body == Dictionary(uniqueKeysWithValues: (0..<clients).map { ("c\($0)", rounds) }), "s\(s): \(String(describing: body))")
        }
        // A pull from 0 sees every record's final state.
        var full: [String: Int64] = [:]
        _ = try pullAll(servers[0], from: 0, into: &full)
        #expect(full.count == sharedRecords + clients * 3)
        for index in 0..<clients {
            #expect(full["own/c\(index)-0"] != nil, "the tombstone is pulled")
            let own = try #require(try servers[1].record("own", "c\(index)-1"))
            #expect(String(decoding: own.body ?? [], as: UTF8.self) == #"{"round":\#(rounds)}"#)
            #expect(try servers[1].record("own", "c\(index)-0")?.deleted == true)
        }
        // The incremental reader never missed a version that committed late.
        #expect(reader.withLock { $0.seen } == full)

        // Every version is unique, and the business log has one line per change pushed.
        var log: [LogEntry] = []
        while true {
            let page = try servers[1].log(LogFilter(afterSeq: log.last?.seq ?? 0, limit: 1_000))
            if page.isEmpty { break }
            log += page
        }
        #expect(log.count == pushed.load(ordering: .relaxed))
        let stamped = log.filter { $0.outcome == "applied" || $0.outcome == "merged" }.map(\.newVersion)
        #expect(stamped.count == log.count, "nothing was rejected or conflicted: \(Set(log.map(\.outcome)))")
        #expect(Set(stamped).count == stamped.count, "every change got its own version")
        #expect(try stores[0].read { (r) throws(PierError) in try r.currentVersion() } == Int64(stamped.count))
    }
}

/// Pulls every page from `cursor` on, folding records into `seen` (key -> version);
/// returns the new cursor.
private func pullAll(_ server: SyncServer, from cursor: Int64, into seen: inout [String: Int64]) throws -> Int64 {
    var cursor = cursor
    while true {
        let response = try server.handle(request: SyncRequest(clientID: "pg-reader", batchSeq: 0,
                                                              pull: .init(cursor: cursor, maxRecords: 7, maxBytes: 1 << 20)),
                                         identity: Identity(user: "pg-reader"))
        for record in response.records {
            if record.version <= cursor {
                throw PierError(.internalError, "a pull after cursor \(cursor) returned version \(record.version)")
            }
            seen["\(record.collection)/\(record.id)"] = record.version
        }
        cursor = response.cursor
        if !response.hasMore { return cursor }
    }
}

/// Runs `body(0..<count)` on `count` threads of their own and waits (at most two minutes)
/// for all of them; returns the errors they threw.
func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) -> [String] {
    let errors = Mutex<[String]>([])
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            defer { group.leave() }
            do { try body(index) } catch { errors.withLock { $0.append("thread \(index): \(error)") } }
        }
        thread.stackSize = 4 << 20
        thread.start()
    }
    if group.wait(timeout: .now() + 120) == .timedOut {
        errors.withLock { $0.append("threads still running after 120 s") }
    }
    return errors.withLock { $0 }
}

/// A meeting point for `parties` threads (waits at most 20 s, so a broken test cannot hang).
final class Barrier: Sendable {
    private let arrived = Atomic(0)
    let parties: Int
    init(parties: Int) { self.parties = parties }

    func arriveAndWait() {
        arrived.add(1, ordering: .relaxed)
        waitForAll()
    }

    func waitForAll() {
        let deadline = ContinuousClock.now + .seconds(20)
        while arrived.load(ordering: .relaxed) < parties && ContinuousClock.now < deadline { usleep(1_000) }
    }
}

/// A master store that runs `afterFirstLock` right after the first `lockRecord` of its
/// first write, and counts how often write bodies run.
final class HookStore: MasterStore {
    let inner: any MasterStore
    let prelock: Bool
    let afterFirstLock: (@Sendable () -> Void)?
    let runs = Atomic(0)

    /// `prelock: false` turns `lockRecords` into nothing.
    init(_ inner: any MasterStore, prelock: Bool, afterFirstLock: (@Sendable () -> Void)?) {
        self.inner = inner
        self.prelock = prelock
        self.afterFirstLock = afterFirstLock
    }

    func write<T>(_ body: (any MasterTransaction) throws(PierError) -> T) throws(PierError) -> T {
        try inner.write { (tx) throws(PierError) -> T in
            let first = runs.add(1, ordering: .relaxed).newValue == 1
            return try body(Transaction(tx, prelock: prelock, hook: first ? afterFirstLock : nil))
        }
    }

    func read<T>(_ body: (any MasterReader) throws(PierError) -> T) throws(PierError) -> T {
        try inner.read(body)
    }

    final class Transaction: MasterTransaction {
        let tx: any MasterTransaction
        let prelock: Bool
        var hook: (@Sendable () -> Void)?
        init(_ tx: any MasterTransaction, prelock: Bool, hook: (@Sendable () -> Void)?) {
            self.tx = tx
            self.prelock = prelock
            self.hook = hook
        }

        func lockRecords(_ keys: [(collection: String, id: String)]) throws(PierError) {
            if prelock { try tx.lockRecords(keys) }
        }

        func lockRecord(_ collection: String, _ id: String) throws(PierError) -> ServerRecord? {
            let record = try tx.lockRecord(collection, id)
            hook?()
            hook = nil
            return record
        }
        func record(_ collection: String, _ id: String) throws(PierError) -> ServerRecord? { try tx.record(collection, id) }
        func currentVersion() throws(PierError) -> Int64 { try tx.currentVersion() }
        func purgeHorizon() throws(PierError) -> Int64 { try tx.purgeHorizon() }
        func changes(after cursor: Int64, filter: PullFilter, limit: Int) throws(PierError) -> [ServerRecord] {
            try tx.changes(after: cursor, filter: filter, limit: limit)
        }
        func storedBatch(clientID: String, batchSeq: UInt64) throws(PierError) -> [UInt8]? { try tx.storedBatch(clientID: clientID, batchSeq: batchSeq) }
        func newestBatch(clientID: String) throws(PierError) -> UInt64? { try tx.newestBatch(clientID: clientID) }
        func client(_ clientID: String) throws(PierError) -> ClientInfo? { try tx.client(clientID) }
        func log(_ filter: LogFilter) throws(PierError) -> [LogEntry] { try tx.log(filter) }
        func conflicts(_ filter: ConflictFilter) throws(PierError) -> [ServerConflict] { try tx.conflicts(filter) }
        func nextVersion() throws(PierError) -> Int64 { try tx.nextVersion() }
        func writeRecord(_ record: ServerRecord) throws(PierError) { try tx.writeRecord(record) }
        func appendLog(_ entry: LogEntry) throws(PierError) { try tx.appendLog(entry) }
        func addConflict(_ conflict: ServerConflict) throws(PierError) { try tx.addConflict(conflict) }
        func closeConflicts(collection: String, id: String, version: Int64) throws(PierError) {
            try tx.closeConflicts(collection: collection, id: id, version: version)
        }
        func storeBatch(clientID: String, batchSeq: UInt64, results: [UInt8], now: Int64) throws(PierError) {
            try tx.storeBatch(clientID: clientID, batchSeq: batchSeq, results: results, now: now)
        }
        func saveClient(_ info: ClientInfo) throws(PierError) { try tx.saveClient(info) }
        func minimumActiveCursor(since: Int64) throws(PierError) -> Int64? { try tx.minimumActiveCursor(since: since) }
        func purgeTombstones(maxVersion: Int64, olderThan: Int64) throws(PierError) -> Int {
            try tx.purgeTombstones(maxVersion: maxVersion, olderThan: olderThan)
        }
    }
}
