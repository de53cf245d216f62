import Foundation
import PierServer
import PierStore
import PierWire
import Synchronization
import Testing

@Suite("Sync handler")
final class HandlerTests {
    /// Every store of a test lives in this folder, removed after the test.
    let folder = NSTemporaryDirectory() + "pier-h-" + UUID().uuidString
    let server: SyncServer

    init() throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var config = ServerConfig()
        config.collections["m"] = CollectionPolicy(.mergeFields)
        server = SyncServer(store: try SQLiteMasterStore(path: folder + "/master"), config: config)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func push(_ client: String, _ seq: UInt64, _ changes: [SyncRequest.Change]) throws -> SyncResponse {
        try server.handle(request: SyncRequest(clientID: client, batchSeq: seq, changes: changes), identity: .trusted())
    }

    func change(_ id: String, _ body: String, base: Int64, hlc: Int64, fields: [String] = []) -> SyncRequest.Change {
        SyncRequest.Change(collection: "m", id: id, op: .upsert, baseVersion: base, hlc: hlc, scope: "s",
                           body: WireBytes(body), changedFields: fields)
    }

    @Test("merge_fields: a field new on the client is kept even when its clock is older than the server's write")
    func newFieldNeverLosesToNothing() throws {
        _ = try push("a", 1, [change("r", "{}", base: 0, hlc: 100)])
        _ = try push("b", 1, [change("r", #"{"b":1}"#, base: 1, hlc: 900, fields: ["b"])])
        let response = try push("c", 1, [change("r", #"{"c":1}"#, base: 1, hlc: 200, fields: ["c"])])
        #expect(response.results[0].outcome == .merged)
        let body = String(decoding: try #require(try server.record("m", "r")?.body), as: UTF8.self)
        #expect(body == #"{"b":1,"c":1}"#)
    }

    @Test("the server answers in the request's format version: a version-1 client gets layout-1 pages it can read")
    func answersInTheRequestsVersion() throws {
        _ = try push("w", 1, [change("0190f3a2-8000-7000-8000-000000000001", #"{"a":1}"#, base: 0, hlc: 1 << 16),
                              change("text-id", #"{"b":2}"#, base: 0, hlc: 2 << 16)])
        let pull = SyncRequest(clientID: "r", batchSeq: 1, pull: .init(cursor: 0))
        var pages: [UInt8: SyncResponse] = [:]
        for version in [1, 2] as [UInt8] {
            let request = try Frame.encode(.syncRequest(pull), options: EncodeOptions(formatVersion: version))
            #expect(try FrameHeader.parse(request).minimumReaderVersion == 1, "requests stay readable by version 1")
            let reply = server.handle(frame: request, identity: .trusted())
            let (header, message) = try Frame.decodeWithHeader(reply)
            #expect(header.version == version)
            #expect(header.minimumReaderVersion == version, "pages with records in layout 2 need a version-2 reader")
            guard case .syncResponse(let page) = message else {
                Issue.record("expected a sync_response, got \(message)")
                continue
            }
            pages[version] = page
        }
        #expect(pages[1]?.records.map(\.id) == ["0190f3a2-8000-7000-8000-000000000001", "text-id"])
        #expect(pages[1]?.records == pages[2]?.records)
        // A request written by a newer format than this server knows (readable by version 1)
        // is answered in the newest version the server writes.
        var future = try Frame.encode(.syncRequest(pull), options: EncodeOptions(compressionLevel: 0))
        future[4] = 9
        let crc = Frame.checksum(of: future)
        for i in 0..<4 { future[16 + i] = UInt8(truncatingIfNeeded: crc >> UInt32(8 * i)) }
        #expect(try FrameHeader.parse(server.handle(frame: future, identity: .trusted())).version == PierWire.formatVersion)
    }

    @Test("malformed, truncated and wrong-type frames get an error frame, never a crash")
    func hostileFrames() throws {
        let good = try Frame.encode(.syncRequest(SyncRequest(clientID: "x", batchSeq: 1, changes: [change("r", "{}", base: 0, hlc: 1)])))
        var cases: [[UInt8]] = [[], Array("PIER".utf8), Array(good.prefix(good.count - 1)), good + [0], Array(repeating: 0xff, count: 64)]
        var flipped = good
        flipped[flipped.count / 2] ^= 0x40
        cases.append(flipped)
        cases.append(try Frame.encode(.error(ErrorMessage(code: -1, message: "not a request"))))
        for frame in cases {
            let reply = server.handle(frame: frame, identity: .trusted())
            guard case .error(let error) = try Frame.decode(reply) else {
                Issue.record("expected an error frame")
                continue
            }
            #expect(error.code == PierError.Code.protocol.rawValue)
        }
        #expect(try server.record("m", "r") == nil, "nothing from a rejected frame was applied")
    }

    @Test("a change with a body that is not a JSON object is rejected as invalid and logged")
    func invalidBody() throws {
        for (i, body) in ["[1]", "{\"a\":", "{\"a\":1} x", "{\"a\":\"\\ud800\"}"].enumerated() {
            let response = try push("v", UInt64(i + 1), [change("bad\(i)", body, base: 0, hlc: 1)])
            #expect(response.results[0].outcome == .rejected)
            #expect(response.results[0].reason == "invalid")
        }
        #expect(try server.log(LogFilter(outcome: "rejected")).count == 4)
    }

    @Test("a batch over the configured size is refused whole with .limit")
    func batchLimit() throws {
        var config = ServerConfig()
        config.maxBatchChanges = 3
        let small = SyncServer(store: try SQLiteMasterStore(path: folder + "/small"), config: config)
        let changes = (0..<4).map { change("r\($0)", "{}", base: 0, hlc: 1) }
        let error = #expect(throws: PierError.self) { try small.handle(request: SyncRequest(clientID: "x", batchSeq: 1, changes: changes), identity: .trusted()) }
        #expect(error?.code == .limit)
    }

    @Test("the configuration file is parsed strictly")
    func configuration() throws {
        let config = try ServerConfig.parse(json: """
            {"default_policy":"manual","drift_bound_ms":1000,
             "collections":{"jobs":{"policy":"merge_fields","fields":{"status":"manual"},"update_delete":"delete_wins"},
                            "prices":{"policy":"first_write_wins","readable_by_all":true}}}
            """)
        #expect(config.defaultPolicy.policy == .manual)
        #expect(config.driftBoundMilliseconds == 1000)
        #expect(config.policy(for: "jobs").fieldPolicies["status"] == .manual)
        #expect(config.policy(for: "jobs").updateDelete == .deleteWins)
        #expect(config.policy(for: "prices").readableByAll)
        for bad in ["[]", #"{"default_policy":"newest"}"#, #"{"colections":{}}"#, #"{"drift_bound_ms":-1}"#,
                    #"{"collections":{"x":{"policy":"merge_fields","fields":{"a":"merge_fields"}}}}"#] {
            #expect(throws: PierError.self, "\(bad)") { try ServerConfig.parse(json: bad) }
        }
    }

    @Test("a resolver that calls back into its own server gets .state instead of a deadlock")
    func resolverReentry() throws {
        var config = ServerConfig()
        config.collections["o"] = CollectionPolicy(.custom)
        let store = try SQLiteMasterStore(path: folder + "/reentry")
        let server = SyncServer(store: store, config: config)
        let seen = Mutex<PierError.Code?>(nil)
        server.setResolver("o") { _ in
            do throws(PierError) { _ = try server.log() } catch { seen.withLock { $0 = error.code } }
            return .keepServer
        }
        func change(_ base: Int64) -> SyncRequest.Change {
            SyncRequest.Change(collection: "o", id: "r", op: .upsert, baseVersion: base, hlc: 1, scope: "s", body: WireBytes("{}"))
        }
        _ = try server.handle(request: SyncRequest(clientID: "a", batchSeq: 1, changes: [change(0)]), identity: .trusted())
        _ = try server.handle(request: SyncRequest(clientID: "a", batchSeq: 2, changes: [change(0)]), identity: .trusted())
        #expect(seen.withLock { $0 } == .state)
        #expect(try server.log().count == 2, "the store is usable again afterwards")
    }
}
