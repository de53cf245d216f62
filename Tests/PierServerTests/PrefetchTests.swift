import Foundation
import PierServer
import PierStore
import PierWire
import Testing

/// The pull prefetch (docs/SERVER.md, "Pull prefetch and compression"): pages prepared
/// ahead answer exactly the request they were prepared for, and never one they would
/// answer wrongly.
@Suite("Pull prefetch")
final class PrefetchTests {
    /// Every store of a test lives in this folder, removed after the test.
    let folder = NSTemporaryDirectory() + "pier-prefetch-" + UUID().uuidString
    var path: String { folder + "/master" }
    let server: SyncServer

    init() throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        server = try Self.server(at: folder + "/master")
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    static func server(at path: String, _ configure: (inout ServerConfig) -> Void = { _ in }) throws -> SyncServer {
        var config = ServerConfig()
        configure(&config)
        return SyncServer(store: try SQLiteMasterStore(path: path), config: config)
    }

    /// `count` records r00, r01, ... pushed by another client, at versions 1...count.
    func seed(_ server: SyncServer, _ count: Int, scope: (Int) -> String = { _ in "s" }) throws {
        let changes = (0..<count).map { i in
            SyncRequest.Change(collection: "c", id: String(format: "r%02d", i), op: .upsert, baseVersion: 0, hlc: Int64(i + 1),
                               scope: scope(i), body: WireBytes(#"{"n":\#(i)}"#))
        }
        let response = try server.handle(request: SyncRequest(clientID: "writer", batchSeq: 1, changes: changes), identity: .trusted())
        #expect(response.results.allSatisfy { $0.outcome == .applied })
    }

    func pull(_ server: SyncServer, _ client: String, from cursor: Int64, records: UInt32 = 4,
              as identity: Identity = .trusted()) throws -> SyncResponse {
        let request = SyncRequest(clientID: client, batchSeq: 0, pull: SyncRequest.PullRequest(cursor: cursor, maxRecords: records))
        let (response, frame) = try server.respond(to: request, identity: identity)
        // The frame says what the response says, whichever way it was made.
        guard case .syncResponse(let decoded) = try Frame.decode(frame) else {
            Issue.record("expected a sync_response frame")
            return response
        }
        #expect(decoded == response)
        return response
    }

    /// Waits (bounded) until the background threads have prepared `count` pages.
    func waitForPrepared(_ server: SyncServer, _ count: Int) throws {
        let deadline = Date().addingTimeInterval(20)
        while server.prefetchStatistics.prepared < count {
            guard Date() < deadline else { throw PierError(.internalError, "no page prepared within 20 s") }
            usleep(1_000)
        }
    }

    /// Pulls client "c1" from cursor 0 to the end, `records` per page. With `waiting`, each
    /// page's successor is prepared before it is asked for (so it must be a hit), and
    /// `pause` microseconds pass before the next request.
    func pullAll(_ server: SyncServer, records: UInt32 = 4, waiting: Bool = true, pause: UInt32 = 0) throws -> (ids: [String], pages: Int) {
        var cursor: Int64 = 0
        var pulled: [String] = []
        var pages = 0
        while true {
            let page = try pull(server, "c1", from: cursor, records: records)
            pages += 1
            pulled += ids(page)
            cursor = page.cursor
            guard page.hasMore else { return (pulled, pages) }
            if waiting { try waitForPrepared(server, pages) }
            if pause > 0 { usleep(pause) }
        }
    }

    func ids(_ response: SyncResponse) -> [String] { response.records.map(\.id) }
    func bodies(_ response: SyncResponse) -> [String] {
        response.records.map { String(decoding: Array($0.body ?? []), as: UTF8.self) }
    }

    @Test("a long pull is answered page after page from pages prepared while the previous one was applied")
    func pagesPreparedAhead() throws {
        try seed(server, 10)
        let (pulled, pages) = try pullAll(server)
        #expect(pulled == (0..<10).map { String(format: "r%02d", $0) })
        #expect(pages == 3)
        let stats = server.prefetchStatistics
        #expect(stats.prepared == 2)
        #expect(stats.hits == 2, "pages 2 and 3 came from the prefetch")
        #expect(stats.discarded == 0)
    }

    @Test("a write by another client between pages is pulled after the prepared page; the client ends equal to the server")
    func otherWriterBetweenPages() throws {
        try seed(server, 10)
        let first = try pull(server, "c1", from: 0)
        try waitForPrepared(server, 1)
        // Another device changes r05, which the prepared page holds at its old version.
        let edit = SyncRequest.Change(collection: "c", id: "r05", op: .upsert, baseVersion: 6, hlc: 100, scope: "s",
                                      body: WireBytes(#"{"n":"edited"}"#))
        _ = try server.handle(request: SyncRequest(clientID: "other", batchSeq: 1, changes: [edit]), identity: .trusted())

        var replica: [String: (version: Int64, body: String)] = [:]
        var cursor: Int64 = 0
        var page = first
        while true {
            for (record, body) in zip(page.records, bodies(page)) where (replica[record.id]?.version ?? 0) < record.version {
                replica[record.id] = (record.version, body)
            }
            cursor = page.cursor
            guard page.hasMore else { break }
            page = try pull(server, "c1", from: cursor)
        }
        #expect(server.prefetchStatistics.hits >= 1, "the page prepared before the edit was served")
        #expect(replica["r05"]?.body == #"{"n":"edited"}"#, "the edit arrives in a later page")
        #expect(replica.count == 10)
        #expect(cursor == 11)
    }

    @Test("a push from the client drops its prepared page: the next page is read after the push")
    func pushDropsThePage() throws {
        try seed(server, 10)
        let first = try pull(server, "c1", from: 0)
        #expect(ids(first) == ["r00", "r01", "r02", "r03"])
        try waitForPrepared(server, 1)
        // The same client edits r05, which the prepared page holds at version 6.
        let edit = SyncRequest.Change(collection: "c", id: "r05", op: .upsert, baseVersion: 6, hlc: 100, scope: "s",
                                      body: WireBytes(#"{"n":"mine"}"#))
        let pushed = try server.handle(request: SyncRequest(clientID: "c1", batchSeq: 1, changes: [edit]), identity: .trusted())
        #expect(pushed.results.first?.outcome == .applied)
        let second = try pull(server, "c1", from: first.cursor)
        #expect(ids(second) == ["r04", "r06", "r07", "r08"], "r05 moved to its new version, after this page")
        let stats = server.prefetchStatistics
        #expect(stats.hits == 0)
        #expect(stats.discarded == 1)
    }

    @Test("a page prepared for one identity, cursor or page size never answers another")
    func keyMustMatch() throws {
        try seed(server, 10, scope: { $0 % 2 == 0 ? "even" : "odd" })
        let everyone = try pull(server, "c1", from: 0)
        try waitForPrepared(server, 1)
        // Same client id, but a token that may read only "even": it must not see r05.
        let even = Identity(user: "local", readScopes: ["even"], writeScopes: ["even"])
        let scoped = try pull(server, "c1", from: everyone.cursor, as: even)
        #expect(scoped.records.allSatisfy { $0.scope == "even" })
        #expect(server.prefetchStatistics.hits == 0)

        // A different page size or cursor is answered directly too.
        let before = server.prefetchStatistics.discarded
        // (The scoped page above was the last for "even": nothing was prepared after it.)
        let first = try pull(server, "c2", from: 0)
        try waitForPrepared(server, 2)
        let other = try pull(server, "c2", from: first.cursor, records: 2)
        #expect(ids(other) == ["r04", "r05"])
        #expect(server.prefetchStatistics.hits == 0)
        #expect(server.prefetchStatistics.discarded > before)
    }

    @Test("a tombstone purge drops every prepared page")
    func purgeDropsPages() throws {
        // No client holds tombstones back, so the purge can take them all.
        let server = try Self.server(at: path + "-purge") { $0.activeClientWindowMilliseconds = -1_000_000 }
        try seed(server, 10)
        let delete = SyncRequest.Change(collection: "c", id: "r09", op: .delete, baseVersion: 10, hlc: 50, scope: "s")
        _ = try server.handle(request: SyncRequest(clientID: "writer", batchSeq: 2, changes: [delete]), identity: .trusted())
        let first = try pull(server, "c1", from: 0)
        try waitForPrepared(server, 1)
        #expect(try server.purgeTombstones(horizonMilliseconds: -1_000_000) == 1)
        _ = try pull(server, "c1", from: first.cursor)
        #expect(server.prefetchStatistics.hits == 0)
        #expect(server.prefetchStatistics.discarded == 1)
    }

    @Test("off, or with no memory budget or time to live, every pull is answered directly and the same")
    func limitsAndOff() throws {
        let configurations: [(String, (inout ServerConfig) -> Void)] = [
            ("off", { $0.pullPrefetchThreads = 0 }),
            ("no memory", { $0.pullPrefetchMaxBytes = 0 }),
            ("no time", { $0.pullPrefetchTimeToLiveMilliseconds = 0 }),
        ]
        for (name, configure) in configurations {
            let path = self.path + "-" + name.replacingOccurrences(of: " ", with: "-")
            let server = try Self.server(at: path, configure)
            try seed(server, 10)
            // 2 ms between pages: past a time to live of 0 ms.
            let (pulled, _) = try pullAll(server, waiting: name != "off", pause: 2_000)
            #expect(pulled.count == 10, "\(name)")
            #expect(server.prefetchStatistics.hits == 0, "\(name)")
            if name == "off" { #expect(server.prefetchStatistics == PrefetchStatistics()) }
        }
    }

    @Test("a server released while a page is being prepared stops its threads and is freed")
    func releaseWhilePreparing() throws {
        for round in 0..<20 {
            weak var released: SyncServer?
            try {
                let server = try Self.server(at: path + "-release-\(round)")
                released = server
                try seed(server, 40)
                _ = try pull(server, "c1", from: 0, records: 1)
                // Released here with a page queued or being prepared.
            }()
            #expect(released == nil, "the prefetch threads hold no reference to their server")
        }
    }

    @Test("the memory budget is given back as pages are taken: a budget of a few pages serves a long pull")
    func budgetIsReturned() throws {
        // About three small pages fit: if taking a page did not give its bytes back, the
        // budget would fill after a few pages and the rest would be dropped.
        let server = try Self.server(at: path + "-budget") { $0.pullPrefetchMaxBytes = 1_500 }
        try seed(server, 60)
        let (_, pages) = try pullAll(server, records: 2)
        #expect(pages == 30)
        #expect(server.prefetchStatistics.hits == 29)
        #expect(server.prefetchStatistics.discarded == 0)
    }

    @Test("a push through another server process on the same store makes the prepared page stale too")
    func pushThroughAnotherProcess() throws {
        try seed(server, 10)
        // A second server on the same file stands for a second `pier serve` process.
        let other = try Self.server(at: path)
        let first = try pull(server, "c1", from: 0)
        try waitForPrepared(server, 1)
        let edit = SyncRequest.Change(collection: "c", id: "r05", op: .upsert, baseVersion: 6, hlc: 100, scope: "s",
                                      body: WireBytes(#"{"n":"mine"}"#))
        let pushed = try other.handle(request: SyncRequest(clientID: "c1", batchSeq: 1, changes: [edit]), identity: .trusted())
        #expect(pushed.results.first?.outcome == .applied)
        let second = try pull(server, "c1", from: first.cursor)
        #expect(ids(second) == ["r04", "r06", "r07", "r08"], "read after the push, not before it")
        #expect(server.prefetchStatistics.hits == 0)
        #expect(server.prefetchStatistics.discarded == 1)
    }

    @Test("compression_level sets how response frames are compressed; the answer is the same at every level")
    func compressionLevel() throws {
        var sizes: [Int: Int] = [:]
        var answers: [Int: [String]] = [:]
        for level in [0, 1, 9] {
            let server = try Self.server(at: path + "-level-\(level)") { $0.compressionLevel = level; $0.pullPrefetchThreads = 0 }
            try seed(server, 40)
            let request = SyncRequest(clientID: "c1", batchSeq: 0, pull: SyncRequest.PullRequest(cursor: 0))
            let frame = server.handle(frame: try Frame.encode(.syncRequest(request)), identity: .trusted())
            guard case .syncResponse(let response) = try Frame.decode(frame) else {
                Issue.record("expected a response")
                continue
            }
            sizes[level] = frame.count
            answers[level] = bodies(response)
        }
        #expect(answers[0]?.count == 40)
        #expect(answers[0] == answers[1] && answers[1] == answers[9])
        #expect(sizes[1]! < sizes[0]!, "level 1 compresses")
        #expect(sizes[9]! < sizes[0]!, "level 9 compresses")
    }

    @Test("configuration keys: compression_level and pull_prefetch_*; out-of-range values are refused")
    func configuration() throws {
        let config = try ServerConfig.parse(json: """
            {"compression_level": 1, "pull_prefetch_threads": 2, "pull_prefetch_max_pages": 8,
             "pull_prefetch_max_bytes": 1048576, "pull_prefetch_ttl_ms": 5000}
            """)
        #expect(config.compressionLevel == 1)
        #expect(config.pullPrefetchThreads == 2)
        #expect(config.pullPrefetchMaxPages == 8)
        #expect(config.pullPrefetchMaxBytes == 1 << 20)
        #expect(config.pullPrefetchTimeToLiveMilliseconds == 5000)
        for bad in [#"{"compression_level": 10}"#, #"{"compression_level": -1}"#, #"{"pull_prefetch_threads": 65}"#,
                    #"{"pull_prefetch_threads": "1"}"#, #"{"pull_prefetch_ttl_ms": 86400001}"#] {
            #expect(throws: PierError.self, "\(bad)") { try ServerConfig.parse(json: bad) }
        }
    }
}
