import ArgumentParser
import Pier
import PierStore

#if canImport(Glibc)
import Glibc
#endif

/// `pier demo`: a guided walk through a local store. (The sync story — an embedded
/// server and two offline technicians with conflicting edits — joins it when the sync
/// engine lands.)
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Walk through a local Pier store, printed as a story.")

    @Option(help: "Where to put the demo store (default: a new temporary folder).") var directory: String?

    func run() throws {
        let folder: String
        if let directory { folder = directory } else {
            var template = Array("/tmp/pier-demo-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw ValidationError("cannot create a temporary folder") }
            folder = String(cString: made)
        }
        let path = folder + "/technician-a.pier"
        do { try story(path) } catch let error as PierError { throw failure(error) }
    }

    private func say(_ text: String) { print(text) }
    private func step(_ title: String) { print("\n== \(title)") }

    private func story(_ path: String) throws {
        say("Pier demo: a technician's device, offline. Store: \(path)")
        let db = try Database(path: path)
        defer { db.close() }
        say("The store made itself a client id: \(db.clientID)")

        step("1. Creating customers offline, with ids made on the device (UUIDv7)")
        let ada = Database.newID(), bob = Database.newID()
        try db.put("customers", id: ada, body: #"{"name":"Ada Lovelace","city":"London","phone":"555-0100"}"#)
        try db.put("customers", id: bob, body: #"{"name":"Bob Jones","city":"Oslo","phone":"555-0199"}"#)
        say("put \(ada)  -> \(try db.get("customers", id: ada))")
        say("put \(bob)  -> \(try db.get("customers", id: bob))")
        say("Both wait to be pushed: sync state of Ada is '\(try db.syncState("customers", id: ada))'.")

        step("2. A job report and its parts list, written together in one transaction")
        let job = Database.newID()
        try db.transaction { db in
            try db.put("jobs", id: job, body: #"{"customer":"\#(ada)","status":"open","hours":2}"#)
            try db.putMany("parts", [
                (Database.newID(), #"{"job":"\#(job)","part":"valve","qty":2}"#),
                (Database.newID(), #"{"job":"\#(job)","part":"gasket","qty":4}"#),
            ])
        }
        say("jobs: \(try db.count("jobs")), parts: \(try db.count("parts"))")

        step("3. Editing one field with a JSON merge patch")
        try db.patch("jobs", id: job, patch: #"{"status":"done","hours":3.5}"#)
        say("job is now \(try db.get("jobs", id: job))")

        step("4. Bad input is refused with a clear error, and nothing is written")
        do {
            try db.put("customers", id: Database.newID(), body: #"["not","an","object"]"#)
        } catch {
            say("put of a JSON array -> \(error.code.name): \(error.message)")
        }
        do { _ = try db.get("customers", id: "no-such-id") } catch {
            say("get of a missing id -> \(error.code.name): \(error.message)")
        }
        do { _ = try db.query("DELETE FROM pier_records") } catch {
            say("a query that writes -> \(error.code.name): \(error.message)")
        }

        step("5. Querying with SQL over the records view (read-only)")
        try db.createIndex("customers", field: "city")
        say(try db.query("SELECT id, json_extract(body, '$.name') AS name FROM records WHERE collection = 'customers' AND json_extract(body, '$.city') = ?1", parameters: #"["Oslo"]"#))

        step("6. Deleting: a record never synced is simply gone")
        try db.delete("customers", id: bob)
        say("customers left: \(try db.count("customers")); nothing about Bob will reach the server.")

        step("7. What `pier inspect` shows for this store")
        say(try db.store.summaryJSON().string)
        say("\nEvery change above is tracked (is_modified, hlc, local_seq) and waits in the outbox for the next sync.")
    }
}
