import Foundation
import Pier
import Testing

@Suite("Swift API")
final class DatabaseTests {
    let path = NSTemporaryDirectory() + "pier-api-" + UUID().uuidString + ".pier"

    /// The store and its WAL files are removed after each test.
    deinit {
        for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    @Test("a transaction closure commits on return and rolls back when it throws")
    func transactionClosure() throws {
        let db = try Database(path: path)
        defer { db.close() }
        try db.transaction { db in
            try db.put("jobs", id: "1", body: #"{"s":"open"}"#)
            try db.put("jobs", id: "2", body: #"{"s":"open"}"#)
        }
        #expect(try db.count("jobs") == 2)
        struct Abort: Error {}
        #expect(throws: Abort.self) {
            try db.transaction { db in
                try db.delete("jobs", id: "1")
                throw Abort()
            }
        }
        #expect(try db.count("jobs") == 2)
        #expect(!db.store.inTransaction)
    }

    @Test("find returns nil for a missing record where get throws .notFound")
    func findAndGet() throws {
        let db = try Database(path: path)
        defer { db.close() }
        #expect(try db.find("c", id: "x") == nil)
        let error = #expect(throws: PierError.self) { try db.get("c", id: "x") }
        #expect(error?.code == .notFound)
        #expect(error?.code.name == "PIER_ENOTFOUND")
        try db.put("c", id: "x", body: #"{"a":1}"#)
        #expect(try db.find("c", id: "x") == #"{"a":1}"#)
    }

    @Test("newID makes time-ordered UUIDv7 ids usable as record ids")
    func ids() throws {
        let db = try Database(path: path)
        defer { db.close() }
        let ids = (0..<100).map { _ in Database.newID() }
        #expect(ids == ids.sorted())
        try db.putMany("c", ids.map { ($0, "{}") })
        #expect(try db.list("c", limit: 1000).map(\.id) == ids)
    }

    @Test("patch, query, state and metadata are reachable through the Swift API")
    func surface() throws {
        let db = try Database(path: path)
        defer { db.close() }
        try db.put("orders", id: "o1", body: #"{"status":"open","total":10}"#)
        try db.patch("orders", id: "o1", patch: #"{"status":"completed"}"#)
        #expect(try db.syncState("orders", id: "o1") == .pending)
        #expect(try db.metadata("orders", id: "o1").isModified)
        try db.createIndex("orders", field: "status")
        let json = try db.query("SELECT count(*) AS n FROM records WHERE json_extract(body, '$.status') = ?1", parameters: #"["completed"]"#)
        #expect(json == #"[{"n":1}]"#)
        db.close()
        #expect(!db.isOpen)
        #expect(#expect(throws: PierError.self) { try db.count("orders") }?.code == .closed)
    }
}
