import Foundation
import PierPostgres
import PierServer
import PierStore
import Synchronization
import Testing

/// One conformance suite for every MasterStore implementation. Each backend is a factory
/// that makes a fresh, empty store; PostgreSQL joins the list when PIER_TEST_POSTGRES_URL
/// is set (scripts/pg-cluster start prints one), each store in a schema of its own.
enum Backends {
    struct Factory: CustomTestStringConvertible, Sendable {
        let name: String
        /// Makes a store; an SQLite store's files go in the given folder.
        let make: @Sendable (_ folder: String) throws -> any MasterStore
        var testDescription: String { name }
    }

    static var all: [Factory] {
        var factories = [Factory(name: "sqlite") { folder in
            try SQLiteMasterStore(path: folder + "/master-" + UUID().uuidString + ".pier")
        }]
        if let url = postgresURL {
            factories.append(Factory(name: "postgres") { _ in try PostgresMasterStore(url: url, schema: freshSchema()) })
        }
        return factories
    }

    /// The test cluster's URL, nil when the PostgreSQL tests are not configured.
    static var postgresURL: String? {
        guard let url = ProcessInfo.processInfo.environment["PIER_TEST_POSTGRES_URL"], !url.isEmpty else { return nil }
        return url
    }

    /// A schema name no other test uses, so every store starts empty.
    static func freshSchema() -> String {
        "pier_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    }
}

@Suite("MasterStore conformance")
final class MasterStoreConformanceTests {
    /// The SQLite stores of a test live in this folder, removed after the test.
    let folder = NSTemporaryDirectory() + "pier-master-" + UUID().uuidString

    init() throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func record(_ id: String, version: Int64, scope: String = "s", deleted: Bool = false, body: String? = #"{"a":1}"#, at: Int64 = 1000) -> ServerRecord {
        ServerRecord(collection: "c", id: id, scope: scope, version: version, hlc: HLC(milliseconds: at, counter: 0), clientID: "client",
                     deleted: deleted, body: body.map { Array($0.utf8) }, fieldMeta: nil, updatedAt: at)
    }

    @Test("versions are taken in order, written records read back, and a failed transaction leaves nothing", arguments: Backends.all)
    func versionsAndAtomicity(_ backend: Backends.Factory) throws {
        let store = try backend.make(folder)
        let written = try store.write { (tx) throws(PierError) -> ServerRecord in
            #expect(try tx.currentVersion() == 0)
            let version = try tx.nextVersion()
            #expect(version == 1)
            let r = record("r1", version: version)
            try tx.writeRecord(r)
            return r
        }
        #expect(try store.read { (r) throws(PierError) in try r.record("c", "r1") } == written)
        #expect(try store.read { (r) throws(PierError) in try r.currentVersion() } == 1)
        #expect(throws: PierError.self) {
            try store.write { (tx) throws(PierError) in
                try tx.writeRecord(record("r2", version: try tx.nextVersion()))
                throw PierError(.conflict, "abort")
            }
        }
        #expect(try store.read { (r) throws(PierError) in try r.record("c", "r2") } == nil)
        #expect(try store.read { (r) throws(PierError) in try r.currentVersion() } == 1, "an aborted transaction does not consume versions")
    }

    @Test("changes come back in version order, filtered by scope, public collections and collection list", arguments: Backends.all)
    func changesFiltering(_ backend: Backends.Factory) throws {
        let store = try backend.make(folder)
        try store.write { (tx) throws(PierError) in
            for (i, scope) in ["a", "b", "a", "b", "a"].enumerated() {
                try tx.writeRecord(record("r\(i)", version: try tx.nextVersion(), scope: scope))
            }
            var reference = record("price", version: try tx.nextVersion(), scope: "office")
            reference.collection = "prices"
            try tx.writeRecord(reference)
        }
        let all = try store.read { (r) throws(PierError) in try r.changes(after: 0, filter: PullFilter(readScopes: nil), limit: 100) }
        #expect(all.map(\.version) == [1, 2, 3, 4, 5, 6])
        let scoped = try store.read { (r) throws(PierError) in
            try r.changes(after: 1, filter: PullFilter(readScopes: ["a"], publicCollections: ["prices"]), limit: 100)
        }
        #expect(scoped.map(\.id) == ["r2", "r4", "price"])
        let limited = try store.read { (r) throws(PierError) in try r.changes(after: 0, filter: PullFilter(readScopes: nil, collections: ["c"]), limit: 2) }
        #expect(limited.map(\.id) == ["r0", "r1"])
    }

    @Test("a rewritten record moves to its new version and leaves its old one", arguments: Backends.all)
    func rewriteMovesVersion(_ backend: Backends.Factory) throws {
        let store = try backend.make(folder)
        try store.write { (tx) throws(PierError) in
            try tx.writeRecord(record("x", version: try tx.nextVersion()))
            try tx.writeRecord(record("y", version: try tx.nextVersion()))
            try tx.writeRecord(record("x", version: try tx.nextVersion(), body: #"{"a":2}"#))
        }
        let changes = try store.read { (r) throws(PierError) in try r.changes(after: 0, filter: PullFilter(readScopes: nil), limit: 10) }
        #expect(changes.map(\.id) == ["y", "x"])
        #expect(changes.last?.version == 3)
    }

    @Test("batches, clients, the business log and conflicts round-trip", arguments: Backends.all)
    func bookkeeping(_ backend: Backends.Factory) throws {
        let store = try backend.make(folder)
        try store.write { (tx) throws(PierError) in
            try tx.storeBatch(clientID: "k", batchSeq: 7, results: [1, 2, 3], now: 5)
            try tx.saveClient(ClientInfo(clientID: "k", user: "u", firstSeen: 1, lastSeen: 2, ackedCursor: 3))
            for i in 0..<5 {
                try tx.appendLog(LogEntry(serverTime: Int64(i), clientID: "k", user: "u", collection: i % 2 == 0 ? "c" : "d", recordID: "r\(i)",
                                          op: "upsert", outcome: i == 4 ? "rejected" : "applied", baseVersion: 0, newVersion: Int64(i), clientHLC: 0, detail: "d\(i)"))
            }
            try tx.addConflict(ServerConflict(conflictID: "x1", collection: "c", recordID: "r", clientID: "k", user: "u", baseVersion: 1,
                                              serverVersion: 2, clientBody: Array(#"{"v":1}"#.utf8), serverBody: nil, clientDeleted: false,
                                              serverDeleted: true, createdAt: 9))
        }
        try store.read { (r) throws(PierError) in
            #expect(try r.storedBatch(clientID: "k", batchSeq: 7) == [1, 2, 3])
            #expect(try r.storedBatch(clientID: "k", batchSeq: 8) == nil)
            #expect(try r.client("k") == ClientInfo(clientID: "k", user: "u", firstSeen: 1, lastSeen: 2, ackedCursor: 3))
            #expect(try r.log(LogFilter()).count == 5)
            #expect(try r.log(LogFilter(collection: "c")).map(\.recordID) == ["r0", "r2", "r4"])
            #expect(try r.log(LogFilter(outcome: "rejected")).map(\.detail) == ["d4"])
            #expect(try r.log(LogFilter(since: 1, until: 3)).map(\.serverTime) == [1, 2])
            let page = try r.log(LogFilter(limit: 2))
            #expect(try r.log(LogFilter(afterSeq: page.last!.seq, limit: 2)).map(\.recordID) == ["r2", "r3"])
            #expect(try r.conflicts(ConflictFilter(openOnly: true)).map(\.conflictID) == ["x1"])
        }
        try store.write { (tx) throws(PierError) in try tx.closeConflicts(collection: "c", id: "r", version: 5) }
        try store.read { (r) throws(PierError) in
            #expect(try r.conflicts(ConflictFilter(openOnly: true)).isEmpty)
            #expect(try r.conflicts(ConflictFilter(collection: "c")).first?.resolvedVersion == 5)
        }
    }

    @Test("conflicts filter by collection, record, client, status and time, newest first, and page", arguments: Backends.all)
    func conflictFiltering(_ backend: Backends.Factory) throws {
        let store = try backend.make(folder)
        try store.write { (tx) throws(PierError) in
            for i in 0..<6 {
                try tx.addConflict(ServerConflict(
                    conflictID: "k\(i)", collection: i < 4 ? "c" : "d", recordID: "r\(i % 2)", clientID: i % 3 == 0 ? "a" : "b", user: "u",
                    baseVersion: 1, serverVersion: 2, clientBody: Array(#"{"v":1}"#.utf8), serverBody: Array(#"{"v":2}"#.utf8),
                    clientDeleted: false, serverDeleted: false, createdAt: 100 + Int64(i / 2)))
            }
            try tx.closeConflicts(collection: "c", id: "r0", version: 9)
        }
        try store.read { (r) throws(PierError) in
            #expect(try r.conflicts(ConflictFilter()).map(\.conflictID) == ["k5", "k4", "k3", "k2", "k1", "k0"])
            #expect(try r.conflicts(ConflictFilter(collection: "d")).map(\.conflictID) == ["k5", "k4"])
            #expect(try r.conflicts(ConflictFilter(collection: "c", recordID: "r1")).map(\.conflictID) == ["k3", "k1"])
            #expect(try r.conflicts(ConflictFilter(clientID: "a")).map(\.conflictID) == ["k3", "k0"])
            #expect(try r.conflicts(ConflictFilter(openOnly: true)).map(\.conflictID) == ["k5", "k4", "k3", "k1"])
            #expect(try r.conflicts(ConflictFilter(since: 101, until: 102)).map(\.conflictID) == ["k3", "k2"])
            let first = try r.conflicts(ConflictFilter(limit: 4))
            #expect(try r.conflicts(ConflictFilter(beforeID: first.last!.conflictID, limit: 4)).map(\.conflictID) == ["k1", "k0"])
        }
    }

    @Test("bodies, field metadata and batch results come back byte for byte", arguments: Backends.all)
    func exactBytes(_ backend: Backends.Factory) throws {
        let store = try backend.make(folder)
        let body = #"{ "z" : 1,"a":[1.50, "\u00e9", "é"], "m":{"y":null,"b":true} }"#
        var r = record("exact", version: 1, body: body)
        r.fieldMeta = Array(#"{"z":[1,2],"a":[1,3]}"#.utf8)
        let results: [UInt8] = [0, 255, 0, 1, 0x80]
        try store.write { (tx) throws(PierError) in
            r.version = try tx.nextVersion()
            try tx.writeRecord(r)
            try tx.storeBatch(clientID: "k", batchSeq: UInt64.max, results: results, now: 1)
        }
        try store.read { (reader) throws(PierError) in
            #expect(try reader.record("c", "exact") == r)
            #expect(try reader.changes(after: 0, filter: PullFilter(readScopes: nil), limit: 1).first?.body == Array(body.utf8))
            #expect(try reader.storedBatch(clientID: "k", batchSeq: UInt64.max) == results)
        }
    }

    @Test("writers on many threads take unique versions, and every snapshot shows versions 1...current", arguments: Backends.all)
    func concurrentWriters(_ backend: Backends.Factory) throws {
        let store = try backend.make(folder)
        let done = Atomic(0)
        let problems = Mutex<[String]>([])
        let errors = runThreads(5) { index in
            guard index < 4 else {
                repeat {
                    let (top, versions) = try store.read { (r) throws(PierError) in
                        (try r.currentVersion(), try r.changes(after: 0, filter: PullFilter(readScopes: nil), limit: 1_000).map(\.version))
                    }
                    if versions != Array(stride(from: Int64(1), through: top, by: 1)) {
                        problems.withLock { $0.append("current \(top), visible \(versions)") }
                    }
                } while done.load(ordering: .relaxed) < 4
                return
            }
            defer { done.add(1, ordering: .relaxed) }
            for i in 0..<20 {
                try store.write { (tx) throws(PierError) in
                    let version = try tx.nextVersion()
                    try tx.writeRecord(ServerRecord(collection: "c", id: "t\(index)-\(i)", scope: "s", version: version, hlc: HLC(rawValue: 1),
                                                    clientID: "t", deleted: false, body: Array("{}".utf8), updatedAt: 1))
                    try tx.appendLog(LogEntry(serverTime: 1, clientID: "t\(index)", user: "u", collection: "c", recordID: "t\(index)-\(i)",
                                              op: "upsert", outcome: "applied", baseVersion: 0, newVersion: version, clientHLC: 1, detail: ""))
                }
            }
        }
        #expect(errors.isEmpty, "\(errors)")
        #expect(problems.withLock { $0 }.isEmpty, "\(problems.withLock { $0 }.prefix(3))")
        let log = try store.read { (r) throws(PierError) in try r.log(LogFilter(limit: 1_000)) }
        #expect(log.count == 80)
        #expect(Set(log.map(\.newVersion)) == Set(1...80))
    }

    @Test("tombstone purge removes only old tombstones below the cursor and raises the horizon", arguments: Backends.all)
    func purge(_ backend: Backends.Factory) throws {
        let store = try backend.make(folder)
        try store.write { (tx) throws(PierError) in
            try tx.writeRecord(record("live", version: try tx.nextVersion()))
            try tx.writeRecord(record("old-dead", version: try tx.nextVersion(), deleted: true, body: nil, at: 100))
            try tx.writeRecord(record("young-dead", version: try tx.nextVersion(), deleted: true, body: nil, at: 10_000))
            try tx.writeRecord(record("late-dead", version: try tx.nextVersion(), deleted: true, body: nil, at: 100))
            try tx.saveClient(ClientInfo(clientID: "slow", user: "u", firstSeen: 0, lastSeen: 5_000, ackedCursor: 3))
        }
        let purged = try store.write { (tx) throws(PierError) -> Int in
            let lowest = try tx.minimumActiveCursor(since: 1_000)
            #expect(lowest == 3)
            return try tx.purgeTombstones(maxVersion: lowest ?? 0, olderThan: 5_000)
        }
        #expect(purged == 1)
        try store.read { (r) throws(PierError) in
            #expect(try r.purgeHorizon() == 2)
            #expect(try r.record("c", "old-dead") == nil)
            #expect(try r.record("c", "young-dead") != nil)
            #expect(try r.record("c", "late-dead") != nil, "version 4 is above the slow client's cursor")
        }
    }
}
