import Foundation
import Pier
@testable import PierHTTP
import PierWire
import Testing

@Suite("Admin endpoints")
struct AdminTests {
    func json(_ answer: HTTPAnswer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])
    }

    @Test("admin endpoints need a credential (401) with admin rights (403), and answer JSON errors")
    func access() async throws {
        let server = try await TestServer.start()
        let user = try await token("ana")
        let admin = try await token("root", admin: true)
        let port = server.port
        let (none, notAdmin, ok, conflicts) = try await onThread {
            (try get(port: port, "/v1/admin/log"), try get(port: port, "/v1/admin/log", credential: user),
             try get(port: port, "/v1/admin/log", credential: admin), try get(port: port, "/v1/admin/conflicts", credential: user))
        }
        #expect(none.status == 401)
        #expect(none.headers["www-authenticate"] == "Bearer")
        let error = try #require(try json(none)["error"] as? [String: Any])
        #expect(error["code"] as? Int == Int(PierError.Code.auth.rawValue))
        #expect(error["message"] as? String == "invalid credentials")
        #expect(notAdmin.status == 403)
        #expect((try json(notAdmin)["error"] as? [String: Any])?["code"] as? Int == Int(PierError.Code.forbidden.rawValue))
        #expect(conflicts.status == 403)
        #expect(ok.status == 200)
        #expect(ok.headers["content-type"] == "application/json")
        #expect(ok.text == #"{"entries":[],"next_after_seq":null}"#)
        try await server.stop()
    }

    @Test("the business log pages with after_seq and filters by collection, client and outcome")
    func logPaging() async throws {
        let server = try await TestServer.start()
        let writer = try await token("ana", write: ["north"])
        let admin = try await token("root", admin: true)
        let port = server.port
        let frame = try requestFrame(client: "a", changes: (0..<5).map { upsert($0 < 3 ? "jobs" : "notes", "r\($0)", "{}") }
                                     + [upsert("jobs", "s", "{}", scope: "south")])
        let pushed = try await onThread { try postFrame(port: port, frame, credential: writer) }
        #expect(pushed.status == 200)

        var seen: [String] = []
        var after: Int?
        var pages = 0
        repeat {
            let path = "/v1/admin/log?limit=2" + (after.map { "&after_seq=\($0)" } ?? "")
            let answer = try await onThread { try get(port: port, path, credential: admin) }
            #expect(answer.status == 200)
            let page = try json(answer)
            let entries = try #require(page["entries"] as? [[String: Any]])
            seen += entries.compactMap { $0["record_id"] as? String }
            after = page["next_after_seq"] as? Int
            pages += 1
        } while after != nil && pages < 10
        #expect(seen == ["r0", "r1", "r2", "r3", "r4", "s"])
        #expect(pages == 3)

        let (notes, rejected, unknown, badLimit) = try await onThread {
            (try get(port: port, "/v1/admin/log?collection=notes", credential: admin),
             try get(port: port, "/v1/admin/log?outcome=rejected&client_id=a", credential: admin),
             try get(port: port, "/v1/admin/log?colection=notes", credential: admin),
             try get(port: port, "/v1/admin/log?limit=0", credential: admin))
        }
        #expect((try json(notes)["entries"] as? [[String: Any]])?.compactMap { $0["record_id"] as? String } == ["r3", "r4"])
        let rejectedEntries = try #require(try json(rejected)["entries"] as? [[String: Any]])
        #expect(rejectedEntries.compactMap { $0["record_id"] as? String } == ["s"])
        #expect(rejectedEntries.first?["user"] as? String == "ana")
        #expect(unknown.status == 400)
        let message = (try json(unknown)["error"] as? [String: Any])?["message"] as? String
        #expect(message?.contains("colection") == true)
        #expect(badLimit.status == 400)
        try await server.stop()
    }

    @Test("conflicts page newest first with before_id and filter by collection and open_only")
    func conflictPaging() async throws {
        var config = ServerConfig()
        config.collections["jobs"] = CollectionPolicy(.manual)
        config.collections["notes"] = CollectionPolicy(.manual)
        let server = try await TestServer.start(config: config)
        let writer = try await token("ana")
        let admin = try await token("root", admin: true)
        let port = server.port
        // Client a creates three records; client b, which never saw them, writes each: three conflicts.
        let seed = try requestFrame(client: "a", changes: [upsert("jobs", "j1", "{}"), upsert("jobs", "j2", "{}"), upsert("notes", "n1", "{}")])
        let clash = try requestFrame(client: "b", changes: [upsert("jobs", "j1", #"{"b":1}"#), upsert("jobs", "j2", #"{"b":1}"#),
                                                            upsert("notes", "n1", #"{"b":1}"#)])
        // Then a settles j1 by writing on top of the current version: that conflict is resolved.
        let settle = try requestFrame(client: "a", seq: 2, changes: [upsert("jobs", "j1", #"{"done":1}"#, base: 1)])
        let answers = try await onThread {
            [try postFrame(port: port, seed, credential: writer), try postFrame(port: port, clash, credential: writer),
             try postFrame(port: port, settle, credential: writer)]
        }
        #expect(answers.map(\.status) == [200, 200, 200])

        var ids: [String] = []
        var records: [String] = []
        var before: String?
        var pages = 0
        repeat {
            let path = "/v1/admin/conflicts?limit=2" + (before.map { "&before_id=\($0)" } ?? "")
            let page = try json(try await onThread { try get(port: port, path, credential: admin) })
            let conflicts = try #require(page["conflicts"] as? [[String: Any]])
            ids += conflicts.compactMap { $0["conflict_id"] as? String }
            records += conflicts.compactMap { $0["record_id"] as? String }
            before = page["next_before_id"] as? String
            pages += 1
        } while before != nil && pages < 10
        #expect(records == ["n1", "j2", "j1"], "newest first")
        #expect(Set(ids).count == 3)
        #expect(pages == 2)

        let (jobs, open) = try await onThread {
            (try get(port: port, "/v1/admin/conflicts?collection=jobs", credential: admin),
             try get(port: port, "/v1/admin/conflicts?open_only=true", credential: admin))
        }
        #expect((try json(jobs)["conflicts"] as? [[String: Any]])?.compactMap { $0["record_id"] as? String } == ["j2", "j1"])
        let openConflicts = try #require(try json(open)["conflicts"] as? [[String: Any]])
        #expect(openConflicts.compactMap { $0["record_id"] as? String } == ["n1", "j2"])
        #expect(try json(open)["next_before_id"] is NSNull)
        try await server.stop()
    }
}
