import Foundation
import Pier
@testable import PierHTTP
import PierWire
import Testing

@Suite("POST /v1/sync over loopback HTTP")
struct SyncOverHTTPTests {
    @Test("two devices sync through the HTTP server with the client engine; metrics count it")
    func fullSync() async throws {
        var config = ServerConfig()
        config.collections["jobs"] = CollectionPolicy(.manual)
        let server = try await TestServer.start(config: config)
        let anaToken = try await token("ana", read: ["north"], write: ["north"])
        let benToken = try await token("ben", read: ["north"], write: ["north"])
        let port = server.port
        let folder = server.folder

        let (anaReport, benReport, benBody) = try await onThread { () throws -> (SyncReport, SyncReport, String?) in
            let ana = try Database(path: folder + "/ana.pier")
            let ben = try Database(path: folder + "/ben.pier")
            defer { ana.close(); ben.close() }
            try ana.put("customers", id: "acme", body: #"{"name":"Acme"}"#, scope: "north")
            try ana.put("jobs", id: "j1", body: #"{"status":"open"}"#, scope: "north")
            let anaReport = try ana.sync(over: httpTransport(port: port, credential: anaToken))
            let benReport = try ben.sync(over: httpTransport(port: port, credential: benToken))
            return (anaReport, benReport, try ben.find("customers", id: "acme"))
        }
        #expect(anaReport.pushed == 2)
        #expect(benReport.pulled == 2)
        #expect(benBody == #"{"name":"Acme"}"#)
        #expect(try server.sync.record("customers", "acme")?.scope == "north")

        let metrics = try await onThread { try get(port: port, "/metrics") }
        #expect(metrics.status == 200)
        #expect(metrics.text.contains(#"pier_changes_total{outcome="applied"} 2"#))
        #expect(metrics.text.contains(#"pier_syncs_total{result="ok"} 2"#))
        #expect(metrics.text.contains("pier_sync_duration_seconds_bucket"))
        #expect(metrics.text.contains("pier_frame_bytes_received_total"))
        // Ana's pull, in the same round trip as her push, brings her own two records back.
        #expect(metrics.text.contains("pier_records_pulled_total 4"))
        try await server.stop()
    }

    @Test("a conflict is counted in the metrics and the response carries it")
    func conflictMetrics() async throws {
        var config = ServerConfig()
        config.collections["jobs"] = CollectionPolicy(.manual)
        let server = try await TestServer.start(config: config)
        let credential = try await token("ana")
        let port = server.port
        let first = try requestFrame(client: "a", changes: [upsert("jobs", "j", #"{"v":1}"#)])
        let second = try requestFrame(client: "b", changes: [upsert("jobs", "j", #"{"v":2}"#)])
        let (one, two, metrics) = try await onThread {
            (try postFrame(port: port, first, credential: credential), try postFrame(port: port, second, credential: credential),
             try get(port: port, "/metrics"))
        }
        #expect(one.status == 200 && two.status == 200)
        guard case .syncResponse(let response) = try Frame.decode(two.body) else { Issue.record("not a response"); return }
        #expect(response.results.first?.outcome == .conflict)
        #expect(metrics.text.contains("pier_conflicts_total 1"))
        #expect(metrics.text.contains(#"pier_changes_total{outcome="conflict"} 1"#))
        try await server.stop()
    }

    @Test("scopes: a write outside the token's scopes is rejected(forbidden); pulls are filtered")
    func scopes() async throws {
        var config = ServerConfig()
        config.collections["prices"] = CollectionPolicy(.firstWriteWins, readableByAll: true)
        let server = try await TestServer.start(config: config)
        let admin = try await token("office")
        let north = try await token("nina", read: ["north"], write: ["north"])
        let noScopes = try await token("nobody", read: nil, write: nil)
        let port = server.port
        let seed = try requestFrame(client: "office", changes: [upsert("c", "n1", "{}", scope: "north"), upsert("c", "s1", "{}", scope: "south"),
                                                               upsert("prices", "p1", "{}", scope: "office")])
        let push = try requestFrame(client: "nina", changes: [upsert("c", "s2", "{}", scope: "south"), upsert("c", "n2", "{}", scope: "north")],
                                    pull: .init(cursor: 0))
        let pullAll = try requestFrame(client: "nobody", pull: .init(cursor: 0))
        let (seeded, pushed, none) = try await onThread {
            (try postFrame(port: port, seed, credential: admin), try postFrame(port: port, push, credential: north),
             try postFrame(port: port, pullAll, credential: noScopes))
        }
        #expect(seeded.status == 200)
        guard case .syncResponse(let response) = try Frame.decode(pushed.body) else { Issue.record("not a response"); return }
        #expect(response.results.map(\.outcome) == [.rejected, .applied])
        #expect(response.results[0].reason == "forbidden")
        #expect(Set(response.records.map(\.id)) == ["n1", "n2", "p1"], "only north records and reference data are pulled")
        #expect(try server.sync.record("c", "s2") == nil)
        guard case .syncResponse(let empty) = try Frame.decode(none.body) else { Issue.record("not a response"); return }
        #expect(empty.records.map(\.id) == ["p1"], "a token without read_scopes reads only collections readable by all")
        try await server.stop()
    }

    @Test("a client id used by another user is 403 with an error frame")
    func foreignClientID() async throws {
        let server = try await TestServer.start()
        let ana = try await token("ana")
        let eve = try await token("eve")
        let port = server.port
        let frame = try requestFrame(client: "device-1", pull: .init(cursor: 0))
        let (first, second) = try await onThread {
            (try postFrame(port: port, frame, credential: ana), try postFrame(port: port, frame, credential: eve))
        }
        #expect(first.status == 200)
        #expect(second.status == 403)
        #expect(second.errorFrame?.code == PierError.Code.forbidden.rawValue)
        try await server.stop()
    }

    @Test("health answers ok while the store answers")
    func health() async throws {
        let server = try await TestServer.start()
        let port = server.port
        let answer = try await onThread { try get(port: port, "/v1/health") }
        #expect(answer.status == 200)
        #expect(answer.text == #"{"status":"ok"}"#)
        try await server.stop()
    }
}
