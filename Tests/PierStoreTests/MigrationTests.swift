import Foundation
import Testing
@testable import PierStore

@Suite("Schema migrations")
struct MigrationTests {
    /// A store written by the first released schema (version 1), committed as a fixture.
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../fixtures/stores/v1.pier").standardizedFileURL.path

    @Test("a store written by schema version 1 opens, migrates forward and keeps every record and counter")
    func migratesVersionOne() throws {
        let dir = TempDir()
        let copy = dir.file("v1.pier")
        try FileManager.default.copyItem(atPath: Self.fixture, toPath: copy)
        try rawSQL(copy, "SELECT 1")  // the fixture is a plain SQLite file
        let store = try Store(path: copy)
        #expect(try store.schemaVersion() == Schema.currentVersion)
        #expect(store.clientID == "01a203d5-feed-72a1-b357-9e8f22be29de")
        #expect(try store.get("customers", id: "c-1") == #"{"name":"Ada","city":"London"}"#)
        #expect(throws: PierError.self) { try store.get("customers", id: "c-2") }
        #expect(try store.pendingCount() == 2)
        let before = try store.metadata("jobs", id: "j-1").localSeq
        try store.put("jobs", id: "j-2", body: "{}")
        #expect(try store.metadata("jobs", id: "j-2").localSeq > before, "counters continue after the migration")
        // The CHECK constraint is gone from the schema text and the file is intact.
        let schema = try #require(try rawScalar(copy, "SELECT sql FROM sqlite_master WHERE name = 'pier_records'"))
        #expect(!schema.contains("CHECK"))
        #expect(try rawScalar(copy, "PRAGMA integrity_check") == "ok")
        // Version 2's sync tables exist and work.
        try store.setCollectionMode("jobs", .pushOnly)
        #expect(store.collectionMode("jobs") == .pushOnly)
        store.close()
        // The migration was committed: reopening does not migrate again.
        let again = try Store(path: copy)
        #expect(try again.schemaVersion() == Schema.currentVersion)
    }
}
