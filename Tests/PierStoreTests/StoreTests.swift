import Foundation
import Testing
@testable import PierStore

@Suite("Local store")
struct StoreTests {
    let dir = TempDir()

    func open(_ name: String = "a.pier", _ configure: (inout StoreOptions) -> Void = { _ in }) throws -> Store {
        var options = StoreOptions()
        configure(&options)
        return try Store(path: dir.file(name), options: options)
    }

    @Test("a new store gets a client id that survives reopening, and WAL mode")
    func clientIDPersists() throws {
        let store = try open()
        let id = store.clientID
        #expect(id.count == 36)
        #expect(try store.schemaVersion() == Schema.currentVersion)
        store.close()
        let again = try open()
        #expect(again.clientID == id)
        #expect(FileManager.default.fileExists(atPath: dir.file("a.pier-wal")))
        let other = try open("b.pier")
        #expect(other.clientID != id)
    }

    @Test("put, get, count and list round-trip bodies exactly, including unicode")
    func roundTrip() throws {
        let store = try open()
        let body = #"{"name":"Zoë Ångström","emoji":"🚀","n":1.5,"nested":{"a":[1,2,3]}}"#
        try store.put("customers", id: "c-1", body: body)
        try store.put("customers", id: "ключ-2", body: #"{"name":"Иван"}"#)
        #expect(try store.get("customers", id: "c-1") == body)
        #expect(try store.get("customers", id: "ключ-2") == #"{"name":"Иван"}"#)
        #expect(try store.count("customers") == 2)
        #expect(try store.count("other") == 0)
        let page = try store.list("customers")
        #expect(page.map(\.id) == ["c-1", "ключ-2"])
    }

    @Test("list pages by id with an after-id cursor")
    func paging() throws {
        let store = try open()
        let ids = (0..<25).map { String(format: "id-%03d", $0) }
        try store.putMany("items", ids.map { ($0, #"{"v":1}"#) })
        var seen: [String] = []
        var after: String? = nil
        while true {
            let page = try store.list("items", after: after, limit: 10)
            if page.isEmpty { break }
            seen += page.map(\.id)
            after = page.last!.id
        }
        #expect(seen == ids)
        let json = rows(try store.listJSON("items", limit: 2).string)
        #expect(json.count == 2)
        #expect((json[0]["body"] as! [String: Any])["v"] as? Int == 1)
    }

    @Test("every local write is tracked: is_modified, pending state, growing local_seq and HLC")
    func writesAreTracked() throws {
        let wall = FakeClock(1_000_000)
        let store = try open { $0.clock = wall }
        try store.put("jobs", id: "j1", body: #"{"status":"open"}"#)
        let first = try store.metadata("jobs", id: "j1")
        #expect(first.isModified && first.isActive && !first.isFromServer)
        #expect(first.syncState == .pending)
        #expect(first.baseVersion == 0 && first.serverBody == nil && first.changedFields == nil)
        #expect(first.scope == "default")
        wall.set(500)  // the wall clock goes back
        try store.patch("jobs", id: "j1", patch: #"{"status":"done"}"#)
        let second = try store.metadata("jobs", id: "j1")
        #expect(second.localSeq > first.localSeq)
        #expect(second.hlc > first.hlc)
        #expect(try store.pendingCount() == 1)
    }

    @Test("a record created and deleted before any sync is removed outright")
    func deleteNeverSynced() throws {
        let store = try open()
        try store.put("jobs", id: "j1", body: "{}")
        try store.delete("jobs", id: "j1")
        #expect(throws: PierError.self) { try store.metadata("jobs", id: "j1") }
        #expect(try store.pendingCount() == 0)
        let error = #expect(throws: PierError.self) { try store.delete("jobs", id: "j1") }
        #expect(error?.code == .notFound)
    }

    @Test("deleting a record the server has leaves a pending tombstone; a later put revives it")
    func deleteSyncedLeavesTombstone() throws {
        let store = try open()
        try store.put("jobs", id: "j1", body: #"{"status":"open"}"#)
        try markSynced(store.path, "jobs", "j1", version: 7)
        #expect(try store.syncState("jobs", id: "j1") == .synced)
        try store.delete("jobs", id: "j1")
        let tombstone = try store.metadata("jobs", id: "j1")
        #expect(!tombstone.isActive && tombstone.isModified && tombstone.syncState == .pending)
        #expect(tombstone.baseVersion == 7)
        #expect(try store.count("jobs") == 0)
        #expect(#expect(throws: PierError.self) { try store.get("jobs", id: "j1") }?.code == .notFound)
        try store.put("jobs", id: "j1", body: #"{"status":"reopened"}"#)
        let revived = try store.metadata("jobs", id: "j1")
        #expect(revived.isActive && revived.baseVersion == 7)
        #expect(try store.get("jobs", id: "j1") == #"{"status":"reopened"}"#)
    }

    @Test("changed_fields lists exactly the top-level fields that differ from the server copy")
    func changedFields() throws {
        let store = try open()
        try store.put("customers", id: "c", body: #"{"name":"Ada","city":"London","tags":["a"],"vip":true}"#)
        try markSynced(store.path, "customers", "c", version: 3)
        try store.patch("customers", id: "c", patch: #"{"city":"Paris"}"#)
        #expect(try store.metadata("customers", id: "c").changedFields == #"["city"]"#)
        try store.patch("customers", id: "c", patch: #"{"vip":null,"tags":["a","b"]}"#)
        #expect(try store.metadata("customers", id: "c").changedFields == #"["city","tags","vip"]"#)
        // Changing a field back to the server's value means it is no longer changed.
        try store.put("customers", id: "c", body: #"{"name":"Ada","city":"London","tags":["a"],"vip":true,"phone":"1"}"#)
        #expect(try store.metadata("customers", id: "c").changedFields == #"["phone"]"#)
    }

    @Test("patch follows RFC 7396: replace members, null removes, objects merge recursively")
    func mergePatch() throws {
        let store = try open()
        try store.put("c", id: "1", body: #"{"a":"b","c":{"d":"e","f":"g"},"keep":1}"#)
        try store.patch("c", id: "1", patch: #"{"a":"z","c":{"f":null,"h":[1]}}"#)
        let body = object(try store.get("c", id: "1"))
        #expect(body["a"] as? String == "z")
        #expect(body["keep"] as? Int == 1)
        let c = body["c"] as! [String: Any]
        #expect(c["d"] as? String == "e" && c["f"] == nil && (c["h"] as? [Int]) == [1])
        let missing = #expect(throws: PierError.self) { try store.patch("c", id: "nope", patch: "{}") }
        #expect(missing?.code == .notFound)
    }

    @Test("a patch that would push the body over the limit is refused and writes nothing")
    func patchOverLimit() throws {
        let store = try open { $0.maxBodyBytes = 64 }
        try store.put("c", id: "1", body: #"{"a":"short"}"#)
        let big = #"{"b":""# + String(repeating: "x", count: 50) + #""}"#
        let error = #expect(throws: PierError.self) { try store.patch("c", id: "1", patch: big) }
        #expect(error?.code == .limit)
        #expect(try store.get("c", id: "1") == #"{"a":"short"}"#)
    }

    @Test("bad names, ids and bodies are refused with messages that name the problem")
    func badInput() throws {
        let store = try open { $0.maxBodyBytes = 4000 }
        let cases: [(String, String, String, String)] = [
            ("", "1", "{}", "collection name must be 1-128 bytes"),
            (String(repeating: "c", count: 129), "1", "{}", "got 129"),
            ("c", "", "{}", "record id must be 1-256 bytes"),
            ("c", String(repeating: "i", count: 257), "{}", "got 257"),
            ("c", "a\nb", "{}", "control characters"),
            ("c", "1", "[1,2]", "must be a JSON object, got an array"),
            ("c", "1", "\"text\"", "got a string"),
            ("c", "1", "42", "got a number"),
            ("c", "1", "", "got an empty body"),
            ("c", "1", "{\"a\":", "not valid JSON"),
            ("c", "1", "{\"a\":1} trailing", "not valid JSON"),
            ("c", "1", #"{"a":"\ud800"}"#, "lone surrogate"),
            ("c", "1", #"{"a":"\x"}"#, "invalid escape"),
            ("c", "1", "{\"a\":\"\u{1}\"}", "control character"),
            ("c", "1", String(repeating: "{\"a\":", count: 300) + "1" + String(repeating: "}", count: 300), "nested deeper"),
            ("c", "1", "{\"a\":\"" + String(repeating: "x", count: 5000) + "\"}", "over the store's limit of 4000"),
        ]
        for (collection, id, body, expected) in cases {
            let error = #expect(throws: PierError.self) { try store.put(collection, id: id, body: body) }
            #expect(error?.code == .invalid)
            #expect(error?.message.contains(expected) == true, "\(error?.message ?? "") should contain \(expected)")
        }
        #expect(try store.count("c") == 0)
        #expect(try store.pendingCount() == 0)
    }

    @Test("putMany is all or nothing and names the failing record")
    func putManyAtomic() throws {
        let store = try open()
        let error = #expect(throws: PierError.self) {
            try store.putMany("c", [("1", "{}"), ("2", "{}"), ("3", "[]"), ("4", "{}")])
        }
        #expect(error?.message.hasPrefix("record 2") == true)
        #expect(try store.count("c") == 0)
    }

    @Test("host transactions commit together, roll back together, and survive a failed write")
    func transactions() throws {
        let store = try open()
        try store.begin()
        #expect(#expect(throws: PierError.self) { try store.begin() }?.code == .state)
        try store.put("c", id: "1", body: "{}")
        #expect(throws: PierError.self) { try store.put("c", id: "2", body: "not json") }
        try store.put("c", id: "3", body: "{}")
        try store.commit()
        #expect(try store.count("c") == 2)

        try store.begin()
        try store.put("c", id: "4", body: "{}")
        try store.delete("c", id: "1")
        try store.rollback()
        #expect(try store.count("c") == 2)
        #expect(throws: PierError.self) { try store.get("c", id: "4") }
        #expect(#expect(throws: PierError.self) { try store.commit() }?.code == .state)
        #expect(#expect(throws: PierError.self) { try store.rollback() }?.code == .state)
    }

    @Test("a closed store refuses every call with .closed")
    func closed() throws {
        let store = try open()
        store.close()
        store.close()
        let calls: [() throws -> Void] = [
            { try store.put("c", id: "1", body: "{}") },
            { _ = try store.get("c", id: "1") },
            { try store.delete("c", id: "1") },
            { try store.patch("c", id: "1", patch: "{}") },
            { _ = try store.count("c") },
            { _ = try store.list("c") },
            { _ = try store.query("SELECT 1") },
            { try store.begin() },
            { try store.createIndex("c", field: "a") },
        ]
        for call in calls {
            #expect(#expect(throws: PierError.self) { try call() }?.code == .closed)
        }
    }

    @Test("queries run read-only SQL over the records view with bound parameters")
    func queries() throws {
        let store = try open()
        try store.put("customers", id: "1", body: #"{"name":"Ada","city":"Oslo","age":36}"#)
        try store.put("customers", id: "2", body: #"{"name":"Bob","city":"Rome","age":41}"#)
        try store.put("jobs", id: "3", body: #"{"city":"Oslo"}"#)
        let result = rows(try store.query(
            "SELECT id, body, json_extract(body, '$.age') AS age, sync_state FROM records WHERE collection = ?1 AND json_extract(body, '$.city') = ?2",
            parametersJSON: #"["customers", "Oslo"]"#).string)
        #expect(result.count == 1)
        #expect(result[0]["id"] as? String == "1")
        #expect((result[0]["body"] as? [String: Any])?["name"] as? String == "Ada")
        #expect(result[0]["age"] as? Int == 36)
        #expect(result[0]["sync_state"] as? String == "pending")
        let types = rows(try store.query("SELECT ?1 AS a, ?2 AS b, ?3 AS c, ?4 AS d, ?5 AS e, ?6 AS f, x'00ff' AS g",
                                         parametersJSON: #"[null, true, 3, 2.5, "s", {"k":[1]}]"#).string)[0]
        #expect(types["a"] is NSNull)
        #expect(types["b"] as? Int == 1)
        #expect(types["c"] as? Int == 3)
        #expect(types["d"] as? Double == 2.5)
        #expect(types["e"] as? String == "s")
        #expect(types["f"] as? String == #"{"k":[1]}"#)
        #expect(types["g"] as? String == "AP8=")
    }

    @Test("queries that write, change settings or hold two statements are refused")
    func queryRefusals() throws {
        let store = try open()
        try store.put("c", id: "1", body: "{}")
        let refused: [(String, PierError.Code)] = [
            ("DELETE FROM pier_records", .readOnly),
            ("UPDATE pier_records SET body = '{}'", .readOnly),
            ("INSERT INTO pier_meta VALUES ('x', 1)", .readOnly),
            ("DROP TABLE pier_records", .readOnly),
            ("PRAGMA journal_mode = DELETE", .readOnly),
            ("ATTACH DATABASE ':memory:' AS x", .readOnly),
            ("BEGIN", .readOnly),
            ("SELECT 1; DELETE FROM pier_records", .invalid),
            ("SELEC 1", .invalid),
            ("", .invalid),
        ]
        for (sql, code) in refused {
            let error = #expect(throws: PierError.self, "\(sql)") { _ = try store.query(sql) }
            #expect(error?.code == code, "\(sql): \(error?.description ?? "")")
        }
        #expect(try store.count("c") == 1)
        let params: [(String?, String)] = [
            (nil, "none were given"), ("[1,2]", "got more"), (#"{"a":1}"#, "must be a JSON array"), ("[1", "malformed"), ("[]", "got 0"),
        ]
        for (json, expected) in params {
            let error = #expect(throws: PierError.self) { _ = try store.query("SELECT ?1", parametersJSON: json) }
            #expect(error?.code == .invalid)
            #expect(error?.message.contains(expected) == true, "\(error?.message ?? "") should contain \(expected)")
        }
    }

    @Test("an expression index on a JSON field is used by queries on that field")
    func expressionIndex() throws {
        let store = try open()
        try store.putMany("customers", (0..<50).map { ("id\($0)", #"{"city":"c\#($0 % 5)"}"#) })
        let sql = "EXPLAIN QUERY PLAN SELECT id FROM records WHERE collection = 'customers' AND json_extract(body, '$.city') = 'c1'"
        #expect(!(try store.query(sql).string.contains("pier_idx_")))
        try store.createIndex("customers", field: "city")
        try store.createIndex("customers", field: "city")  // idempotent
        #expect(try store.query(sql).string.contains("pier_idx_"))
        let found = rows(try store.query("SELECT id FROM records WHERE collection = 'customers' AND json_extract(body, '$.city') = 'c1'").string)
        #expect(found.count == 10)
        #expect(#expect(throws: PierError.self) { try store.createIndex("customers", field: "a'); DROP TABLE x; --") }?.code == .invalid)
    }

    @Test("a garbage file is refused as not a Pier store and left byte-for-byte untouched")
    func garbageFile() throws {
        let path = dir.file("garbage.pier")
        let bytes = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        _ = FileManager.default.createFile(atPath: path, contents: bytes)
        let error = #expect(throws: PierError.self) { _ = try Store(path: path) }
        #expect(error?.code == .notADatabase)
        #expect(fileBytes(path) == bytes)
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
    }

    @Test("another application's SQLite database is refused and left untouched")
    func foreignSQLite() throws {
        let path = dir.file("other.db")
        try rawSQL(path, "CREATE TABLE accounts(id INTEGER PRIMARY KEY, owner TEXT); INSERT INTO accounts VALUES (1, 'x');")
        let before = fileBytes(path)
        let error = #expect(throws: PierError.self) { _ = try Store(path: path) }
        #expect(error?.code == .notADatabase)
        #expect(error?.message.contains("another application") == true)
        #expect(fileBytes(path) == before)
    }

    @Test("a store from a newer Pier is refused with .version; missing files honour mustExist")
    func versionAndMissing() throws {
        let store = try open()
        store.close()
        try rawSQL(dir.file("a.pier"), "UPDATE pier_meta SET value = 999 WHERE key = 'schema_version'")
        let error = #expect(throws: PierError.self) { _ = try open() }
        #expect(error?.code == .version)
        #expect(error?.message.contains("999") == true)
        let missing = #expect(throws: PierError.self) { _ = try open("none.pier") { $0.mustExist = true } }
        #expect(missing?.code == .notFound)
        #expect(!FileManager.default.fileExists(atPath: dir.file("none.pier")))
    }

    @Test("a read-only store reads and refuses writes")
    func readOnly() throws {
        let writer = try open()
        try writer.put("c", id: "1", body: #"{"v":1}"#)
        writer.close()
        let reader = try open { $0.readOnly = true }
        #expect(try reader.get("c", id: "1") == #"{"v":1}"#)
        #expect(#expect(throws: PierError.self) { try reader.put("c", id: "2", body: "{}") }?.code == .readOnly)
    }

    @Test("counters recover after reopening, so HLC and local_seq never go backwards")
    func countersRecover() throws {
        let wall = FakeClock(5_000_000)
        var store: Store? = try open { $0.clock = wall }
        try store!.put("c", id: "1", body: "{}")
        let before = try store!.metadata("c", id: "1")
        store = nil  // closed without an explicit close (deinit)
        wall.set(1_000)  // and the wall clock went far back
        let reopened = try open { $0.clock = wall }
        try reopened.put("c", id: "2", body: "{}")
        let after = try reopened.metadata("c", id: "2")
        #expect(after.localSeq > before.localSeq)
        #expect(after.hlc > before.hlc)
    }

    @Test("two connections to one file never hand out the same local_seq")
    func twoWriters() throws {
        let a = try open()
        let b = try open()
        try a.put("c", id: "a1", body: "{}")
        try b.put("c", id: "b1", body: "{}")
        try b.put("c", id: "b2", body: "{}")
        try a.put("c", id: "a2", body: "{}")
        let seqs = try ["a1", "b1", "b2", "a2"].map { try a.metadata("c", id: $0).localSeq }
        #expect(seqs == seqs.sorted())
        #expect(Set(seqs).count == 4)
    }

    @Test("an explicit scope moves the record; the store default applies otherwise")
    func scopes() throws {
        let store = try open { $0.defaultScope = "tech-a" }
        try store.put("c", id: "1", body: "{}")
        #expect(try store.metadata("c", id: "1").scope == "tech-a")
        try store.put("c", id: "1", body: "{}", scope: "team-north")
        #expect(try store.metadata("c", id: "1").scope == "team-north")
        try store.put("c", id: "1", body: #"{"x":1}"#)
        #expect(try store.metadata("c", id: "1").scope == "team-north")
        #expect(throws: PierError.self) { try store.put("c", id: "1", body: "{}", scope: "") }
    }

    @Test("the summary counts records, pending changes and tombstones per collection")
    func summary() throws {
        let store = try open()
        try store.put("a", id: "1", body: "{}")
        try store.put("a", id: "2", body: "{}")
        try markSynced(store.path, "a", "2", version: 1)
        try store.delete("a", id: "2")
        try store.put("b", id: "1", body: "{}")
        let summary = object(try store.summaryJSON().string)
        #expect(summary["pending"] as? Int == 3)
        let collections = summary["collections"] as! [[String: Any]]
        #expect(collections.map { $0["name"] as? String } == ["a", "b"])
        #expect(collections[0]["records"] as? Int == 1)
        #expect(collections[0]["tombstones"] as? Int == 1)
    }
}
