import Foundation
import Pier
import PierWire
import Testing

/// The sync scenarios of issue 4, each named after what it proves, run through the public
/// Swift API against an in-process server with an SQLite master store.
@Suite("Sync scenarios")
struct ScenarioTests {
    /// Both technicians start from the same synced customer, then edit it offline.
    func twoTechnicians(_ policy: CollectionPolicy, clock: TestClock = TestClock()) throws -> (World, Database, Database) {
        let world = try World({ $0.collections["customers"] = policy }, clock: clock)
        let a = try world.client("a"), b = try world.client("b")
        try a.put("customers", id: "c1", body: #"{"name":"Ada","phone":"100","city":"Oslo"}"#)
        try world.sync(a)
        try world.sync(b)
        #expect(try body(b, "customers", "c1")?["name"] as? String == "Ada")
        return (world, a, b)
    }

    @Test("last_write_wins: the later edit by HLC wins on both devices and the loser is logged superseded")
    func lastWriteWins() throws {
        let (world, a, b) = try twoTechnicians(CollectionPolicy(.lastWriteWins))
        try a.patch("customers", id: "c1", patch: #"{"phone":"A"}"#)
        world.clock.advance(1000)
        try b.patch("customers", id: "c1", patch: #"{"phone":"B"}"#)  // later
        try world.sync(b)
        let report = try world.sync(a)
        #expect(report.superseded == 1)
        try world.sync(b)
        #expect(try body(a, "customers", "c1")?["phone"] as? String == "B")
        #expect(try body(b, "customers", "c1")?["phone"] as? String == "B")
        #expect(try world.server.log(LogFilter(outcome: "superseded")).count == 1)
        #expect(try a.syncState("customers", id: "c1") == .synced)
    }

    @Test("arrival_wins: the later arrival at the server wins even with an older timestamp")
    func arrivalWins() throws {
        let (world, a, b) = try twoTechnicians(CollectionPolicy(.arrivalWins))
        try a.patch("customers", id: "c1", patch: #"{"phone":"A"}"#)
        world.clock.advance(1000)
        try b.patch("customers", id: "c1", patch: #"{"phone":"B"}"#)
        try world.sync(b)
        try world.sync(a)  // arrives last, with the older edit
        try world.sync(b)
        #expect(try world.serverBody("customers", "c1")?["phone"] as? String == "A")
        #expect(try body(b, "customers", "c1")?["phone"] as? String == "A")
    }

    @Test("first_write_wins: a stale write is ignored, the server copy stands, and the rejection is logged")
    func staleWriteIgnoredAndLogged() throws {
        let (world, a, b) = try twoTechnicians(CollectionPolicy(.firstWriteWins))
        try a.patch("customers", id: "c1", patch: #"{"phone":"A"}"#)
        try b.patch("customers", id: "c1", patch: #"{"phone":"B"}"#)
        try world.sync(a)
        let report = try world.sync(b)
        #expect(report.rejected == 1)
        #expect(try body(b, "customers", "c1")?["phone"] as? String == "A")
        #expect(try b.syncState("customers", id: "c1") == .rejected)
        let log = try world.server.log(LogFilter(recordID: "c1", outcome: "rejected"))
        #expect(log.count == 1)
        #expect(log.first?.detail.contains("first_write_wins") == true)
        #expect(log.first?.clientID == b.clientID)
    }

    @Test("client_wins: every change is applied in arrival order")
    func clientWins() throws {
        let (world, a, b) = try twoTechnicians(CollectionPolicy(.clientWins))
        try a.patch("customers", id: "c1", patch: #"{"phone":"A"}"#)
        try b.patch("customers", id: "c1", patch: #"{"city":"Rome"}"#)
        try world.sync(a)
        let report = try world.sync(b)
        #expect(report.applied == 1)
        try world.sync(a)
        // b pushed its whole body, based on the old version: its phone (100) replaces A's.
        #expect(try snapshot(a) == snapshot(b))
        #expect(try world.serverBody("customers", "c1")?["city"] as? String == "Rome")
    }

    @Test("merge_fields: edits to different fields are both kept on every replica")
    func fieldMergeKeepsBothEdits() throws {
        let (world, a, b) = try twoTechnicians(CollectionPolicy(.mergeFields))
        try a.patch("customers", id: "c1", patch: #"{"phone":"A-phone"}"#)
        try b.patch("customers", id: "c1", patch: #"{"city":"Bergen"}"#)
        try world.sync(a)
        let report = try world.sync(b)
        #expect(report.merged == 1)
        try world.sync(a)
        for db in [a, b] {
            let customer = try body(db, "customers", "c1")
            #expect(customer?["phone"] as? String == "A-phone")
            #expect(customer?["city"] as? String == "Bergen")
            #expect(customer?["name"] as? String == "Ada")
        }
        #expect(try snapshot(world.server) == snapshot(a))
    }

    @Test("merge_fields: a field changed on both sides goes to the newer HLC; a removed field stays removed")
    func fieldMergeSameField() throws {
        let (world, a, b) = try twoTechnicians(CollectionPolicy(.mergeFields))
        try a.patch("customers", id: "c1", patch: #"{"phone":"A","city":null}"#)
        world.clock.advance(10)
        try b.patch("customers", id: "c1", patch: #"{"phone":"B","name":"Ada L."}"#)
        try world.sync(a)
        try world.sync(b)
        try world.sync(a)
        let merged = try body(a, "customers", "c1")
        #expect(merged?["phone"] as? String == "B")
        #expect(merged?["name"] as? String == "Ada L.")
        #expect(merged?["city"] == nil)
        #expect(try snapshot(a) == snapshot(b))
    }

    @Test("manual: a conflict blocks the next sync until resolved; every resolution converges")
    func manualConflictBlocksThenConverges() throws {
        for resolution in ["local", "server", "merged"] {
            let (world, a, b) = try twoTechnicians(CollectionPolicy(.manual))
            try a.patch("customers", id: "c1", patch: #"{"phone":"A"}"#)
            try b.patch("customers", id: "c1", patch: #"{"phone":"B"}"#)
            try world.sync(a)
            let report = try world.sync(b)
            #expect(report.conflicts == 1)
            #expect(try b.syncState("customers", id: "c1") == .conflicted)
            let conflicts = try b.conflicts()
            #expect(conflicts.count == 1)
            let conflict = conflicts[0]
            #expect(object(conflict.localBody ?? "")["phone"] as? String == "B")
            #expect(object(conflict.serverBody ?? "")["phone"] as? String == "A")
            #expect(object(conflict.baseBody ?? "")["phone"] as? String == "100")
            #expect(try world.server.conflicts(ConflictFilter(openOnly: true)).count == 1)

            // The next sync is blocked with .conflict, and nothing is sent.
            try b.put("customers", id: "c2", body: #"{"name":"Other"}"#)
            let blocked = #expect(throws: PierError.self) { try world.sync(b) }
            #expect(blocked?.code == .conflict)
            #expect(try world.server.record("customers", "c2") == nil)

            switch resolution {
            case "local": try b.resolve(conflict.conflictID, .keepLocal)
            case "server": try b.resolve(conflict.conflictID, .keepServer)
            default: try b.resolve(conflict.conflictID, .merged(#"{"name":"Ada","phone":"A+B","city":"Oslo"}"#))
            }
            #expect(try b.conflicts().isEmpty)
            try world.sync(b)
            try world.sync(a)
            let expected = ["local": "B", "server": "A", "merged": "A+B"][resolution]!
            #expect(try body(a, "customers", "c1")?["phone"] as? String == expected, "\(resolution)")
            #expect(try body(b, "customers", "c1")?["phone"] as? String == expected, "\(resolution)")
            #expect(try world.serverBody("customers", "c1")?["phone"] as? String == expected)
            #expect(try world.server.record("customers", "c2") != nil)
            #expect(try world.server.conflicts(ConflictFilter(openOnly: true)).isEmpty, "the server closes the conflict when the resolution arrives")
            #expect(try b.syncState("customers", id: "c1") == .synced)
        }
    }

    @Test("deleting a conflicted record keeps it as a tombstone, so resolving and syncing still converge")
    func deleteWhileConflicted() throws {
        let world = try World { $0.collections["notes"] = CollectionPolicy(.manual, updateDelete: .manual) }
        let a = try world.client("a"), b = try world.client("b")
        try a.put("notes", id: "n", body: #"{"by":"a"}"#)
        try b.put("notes", id: "n", body: #"{"by":"b"}"#)  // the same id, created offline on both
        try world.sync(a)
        #expect(try world.sync(b).conflicts == 1)
        try b.delete("notes", id: "n")
        #expect(try b.metadata("notes", id: "n").isActive == false, "a tombstone, not an outright removal")
        let conflict = try #require(try b.conflicts().first)
        try b.resolve(conflict.conflictID, .keepServer)
        try world.sync(b)
        #expect(try body(b, "notes", "n")?["by"] as? String == "a")
        #expect(try snapshot(b) == snapshot(world.server))
    }

    @Test("blockOnlyConflicted pushes everything except the conflicted record")
    func blockOnlyConflicted() throws {
        let (world, a, b) = try twoTechnicians(CollectionPolicy(.manual))
        try a.patch("customers", id: "c1", patch: #"{"phone":"A"}"#)
        try b.patch("customers", id: "c1", patch: #"{"phone":"B"}"#)
        try world.sync(a)
        try world.sync(b)
        try b.put("customers", id: "c2", body: #"{"name":"Other"}"#)
        // A merged body must be a JSON object; a bad one leaves the conflict as it was.
        let conflict = try #require(try b.conflicts().first)
        for bad in [#"{"phone":"#, "[1]", "{\"a\":\"\u{1}\"}"] {
            #expect(#expect(throws: PierError.self) { try b.resolve(conflict.conflictID, .merged(bad)) }?.code == .invalid)
        }
        #expect(try b.conflicts().count == 1)
        var options = SyncOptions()
        options.blockOnlyConflicted = true
        try world.sync(b, options: options)
        #expect(try world.server.record("customers", "c2") != nil)
        #expect(try b.conflicts().count == 1)
    }

    @Test("custom resolver: cancelled beats completed, whatever the order")
    func cancelledBeatsCompleted() throws {
        let world = try World { config in
            config.collections["orders"] = CollectionPolicy(.custom)
            config.resolvers["orders"] = { input in
                let client = object(String(decoding: input.clientBody ?? [], as: UTF8.self))
                let server = object(String(decoding: input.serverBody ?? [], as: UTF8.self))
                if server["status"] as? String == "cancelled" { return .keepServer }
                if client["status"] as? String == "cancelled" { return .keep(input.clientBody!) }
                return .manual
            }
        }
        let device = try world.client("device"), office = try world.client("office")
        try device.put("orders", id: "o1", body: #"{"status":"open","total":10}"#)
        try world.sync(device)
        try world.sync(office)
        // The office cancels first; the device completes later (by clock) and syncs last.
        try office.patch("orders", id: "o1", patch: #"{"status":"cancelled"}"#)
        world.clock.advance(5000)
        try device.patch("orders", id: "o1", patch: #"{"status":"completed"}"#)
        try world.sync(office)
        let report = try world.sync(device)
        #expect(report.superseded == 1)
        #expect(try body(device, "orders", "o1")?["status"] as? String == "cancelled")
        // And the other way round: completed first, cancelled second.
        try device.put("orders", id: "o2", body: #"{"status":"open"}"#)
        try world.sync(device)
        try world.sync(office)
        try device.patch("orders", id: "o2", patch: #"{"status":"completed"}"#)
        try office.patch("orders", id: "o2", patch: #"{"status":"cancelled"}"#)
        try world.sync(device)
        try world.sync(office)
        try world.sync(device)
        #expect(try body(device, "orders", "o2")?["status"] as? String == "cancelled")
        #expect(try world.serverBody("orders", "o2")?["status"] as? String == "cancelled")
    }

    @Test("update versus delete follows update_wins, delete_wins and manual")
    func updateVersusDelete() throws {
        for rule in [UpdateDeletePolicy.updateWins, .deleteWins, .manual] {
            let (world, a, b) = try twoTechnicians(CollectionPolicy(.lastWriteWins, updateDelete: rule))
            try a.delete("customers", id: "c1")
            try b.patch("customers", id: "c1", patch: #"{"phone":"B"}"#)
            try world.sync(a)
            let report = try world.sync(b)
            switch rule {
            case .updateWins:
                try world.sync(a)
                #expect(try body(a, "customers", "c1")?["phone"] as? String == "B")
                #expect(try body(b, "customers", "c1")?["phone"] as? String == "B")
            case .deleteWins:
                #expect(report.superseded == 1)
                #expect(try b.find("customers", id: "c1") == nil)
                #expect(try world.serverBody("customers", "c1") == nil)
            case .manual:
                #expect(report.conflicts == 1)
                let conflict = try b.conflicts()[0]
                #expect(conflict.serverDeleted && !conflict.localDeleted)
                try b.resolve(conflict.conflictID, .keepLocal)
                try world.sync(b)
                try world.sync(a)
                #expect(try body(a, "customers", "c1")?["phone"] as? String == "B")
            }
        }
    }

    @Test("a parent and its children created offline sync in one batch with their references intact")
    func parentAndChildrenInOneBatch() throws {
        let world = try World()
        let a = try world.client("a"), b = try world.client("b")
        let job = Database.newID()
        let parts = (0..<5).map { _ in Database.newID() }
        try a.transaction { db in
            try db.put("jobs", id: job, body: #"{"title":"Boiler"}"#)
            for part in parts { try db.put("parts", id: part, body: #"{"job":"\#(job)","qty":1}"#) }
        }
        let report = try world.sync(a)
        #expect(report.pushed == 6)
        #expect(report.roundTrips == 1)
        try world.sync(b)
        let children = try JSONSerialization.jsonObject(with: Data(try b.query(
            "SELECT id FROM records WHERE collection = 'parts' AND json_extract(body, '$.job') = ?1", parameters: "[\"\(job)\"]").utf8)) as! [[String: Any]]
        #expect(Set(children.map { $0["id"] as! String }) == Set(parts))
        #expect(try b.find("jobs", id: job) != nil)
    }

    @Test("pull-only reference data arrives and refuses local writes; push-only telemetry goes up and is purged locally")
    func referenceAndTelemetry() throws {
        let world = try World { $0.collections["prices"] = CollectionPolicy(.firstWriteWins, readableByAll: true) }
        let office = try world.client("office"), terminal = try world.client("terminal")
        try office.put("prices", id: "p1", body: #"{"sku":"valve","price":12.5}"#)
        try office.put("counts", id: "seed", body: #"{"n":0}"#)
        try world.sync(office)
        try terminal.setCollectionMode("prices", .pullOnly)
        try terminal.setCollectionMode("counts", .pushOnly, purgeAfterPush: true)
        try world.sync(terminal, as: Identity(user: "terminal", readScopes: ["line-1"], writeScopes: ["line-1"]))
        #expect(try body(terminal, "prices", "p1")?["price"] as? Double == 12.5)
        #expect(#expect(throws: PierError.self) { try terminal.put("prices", id: "p2", body: "{}") }?.code == .readOnly)
        #expect(try terminal.find("counts", id: "seed") == nil, "push-only collections are never pulled")
        for i in 0..<10 { try terminal.put("counts", id: "t\(i)", body: #"{"machine":"m1","count":\#(i)}"#, scope: "line-1") }
        try world.sync(terminal, as: Identity(user: "terminal", readScopes: ["line-1"], writeScopes: ["line-1"]))
        #expect(try terminal.count("counts") == 0, "acknowledged telemetry is purged locally")
        for i in 0..<10 { #expect(try world.serverBody("counts", "t\(i)")?["count"] as? Int == i) }
    }

    @Test("a lost reply followed by a retry applies the batch once")
    func lostReplyAppliesOnce() throws {
        let world = try World()
        let a = try world.client("a")
        try a.put("counters", id: "k", body: #"{"n":1}"#)
        let transport = FlakyTransport(server: world.server)
        transport.faults[1] = .dropReply
        let error = #expect(throws: PierError.self) { try a.sync(over: transport) }
        #expect(error?.code == .network)
        #expect(try world.server.record("counters", "k")?.version == 1, "the server applied it before the reply was lost")
        #expect(try a.syncState("counters", id: "k") == .pending)
        let report = try a.sync(over: transport)
        #expect(report.replayedBatch)
        #expect(report.applied == 1)
        #expect(try world.server.record("counters", "k")?.version == 1, "the replay applied nothing twice")
        #expect(try world.server.log(LogFilter(recordID: "k")).count == 1)
        #expect(try a.syncState("counters", id: "k") == .synced)
    }

    @Test("an interrupted pull resumes from the last page applied")
    func interruptedPullResumes() throws {
        let world = try World()
        let a = try world.client("a"), b = try world.client("b")
        try a.putMany("items", (0..<250).map { (String(format: "i%03d", $0), #"{"v":\#($0)}"#) })
        try world.sync(a)
        var options = SyncOptions()
        options.pullMaxRecords = 100
        let transport = FlakyTransport(server: world.server)
        transport.faults[2] = .dropRequest
        #expect(throws: PierError.self) { try b.sync(over: transport, options: options) }
        #expect(try b.count("items") == 100, "the first page was applied with its cursor")
        let report = try b.sync(over: transport, options: options)
        #expect(report.pulled == 150)
        #expect(try b.count("items") == 250)
    }

    @Test("an edit made while its push is in flight survives the reply")
    func editDuringInflightPushSurvives() throws {
        let world = try World()
        let a = try world.client("a")
        try a.put("notes", id: "n", body: #"{"text":"first"}"#)
        let engine = SyncEngine(store: a.store)
        let request = try #require(try engine.nextRequest())
        let response = world.server.handle(frame: request, identity: .trusted())
        try a.put("notes", id: "n", body: #"{"text":"second"}"#)  // while the push is in flight
        try engine.receive(response)
        #expect(try body(a, "notes", "n")?["text"] as? String == "second")
        #expect(try a.syncState("notes", id: "n") == .pending)
        #expect(try a.metadata("notes", id: "n").baseVersion == 1)
        try world.sync(a)
        #expect(try world.serverBody("notes", "n")?["text"] as? String == "second")
        #expect(try world.server.log(LogFilter(recordID: "n", outcome: "applied")).count == 2)
    }

    @Test("a device clock a day ahead cannot win beyond the drift bound")
    func clockAheadIsClamped() throws {
        let clock = TestClock()
        let world = try World({ $0.collections["customers"] = CollectionPolicy(.lastWriteWins); $0.driftBoundMilliseconds = 60_000 }, clock: clock)
        let liar = try world.client("liar", clock: SkewedClock(base: clock, skew: 86_400_000))
        let early = try world.client("early"), honest = try world.client("honest")
        try honest.put("customers", id: "c", body: #"{"v":"start"}"#)
        try world.sync(honest)
        try world.sync(early)
        try world.sync(liar)
        // Three concurrent offline edits; the liar's device thinks it is tomorrow.
        try liar.patch("customers", id: "c", patch: #"{"v":"liar"}"#)
        try world.sync(liar)
        clock.advance(30_000)
        try early.patch("customers", id: "c", patch: #"{"v":"early"}"#)
        clock.advance(90_000)
        try honest.patch("customers", id: "c", patch: #"{"v":"honest"}"#)
        // 30 s after the liar's edit is within the 60 s bound: the liar still wins that one...
        #expect(try world.sync(early).superseded == 1)
        #expect(try world.serverBody("customers", "c")?["v"] as? String == "liar")
        // ...but 120 s after it is beyond the bound, where a day-ahead clock would have won.
        #expect(try world.sync(honest).applied == 1)
        #expect(try world.serverBody("customers", "c")?["v"] as? String == "honest")
        let clamped = try world.server.log(LogFilter(clientID: liar.clientID)).filter { $0.detail.contains("clamped") }
        #expect(clamped.count == 1)
    }

    @Test("a user cannot read or write another scope")
    func scopesIsolateUsers() throws {
        let world = try World()
        let alice = try world.client("alice"), bob = try world.client("bob")
        let aliceID = Identity(user: "alice", readScopes: ["team-a"], writeScopes: ["team-a"])
        let bobID = Identity(user: "bob", readScopes: ["team-b"], writeScopes: ["team-b"])
        try alice.put("jobs", id: "secret", body: #"{"x":1}"#, scope: "team-a")
        try world.sync(alice, as: aliceID)
        try world.sync(bob, as: bobID)
        #expect(try bob.count("jobs") == 0)
        // Bob tries to write into team-a, and to take over Alice's record.
        try bob.put("jobs", id: "intrusion", body: #"{"x":2}"#, scope: "team-a")
        try bob.put("jobs", id: "secret", body: #"{"x":3}"#, scope: "team-b")
        let report = try world.sync(bob, as: bobID)
        #expect(report.rejected == 2)
        #expect(try world.server.record("jobs", "intrusion") == nil)
        #expect(try world.serverBody("jobs", "secret")?["x"] as? Int == 1)
        #expect(try bob.syncState("jobs", id: "intrusion") == .rejected)
        #expect(try world.server.log(LogFilter(outcome: "rejected")).allSatisfy { $0.detail.hasPrefix("forbidden") })
        // And a client id stays bound to its first user.
        let stolen = #expect(throws: PierError.self) { try world.sync(alice, as: bobID) }
        #expect(stolen?.code == .forbidden)
    }

    @Test("tombstone purge followed by a resync loses no pending local change")
    func purgeThenResyncKeepsPendingChanges() throws {
        let world = try World { $0.tombstoneHorizonMilliseconds = 1000; $0.activeClientWindowMilliseconds = 5000 }
        let a = try world.client("a"), b = try world.client("b")
        try a.putMany("items", (0..<6).map { ("i\($0)", #"{"v":\#($0)}"#) })
        try world.sync(a)
        try world.sync(b)
        // b goes offline for a long time and edits; a deletes two records.
        try b.patch("items", id: "i1", patch: #"{"v":"b-edit"}"#)
        try b.put("items", id: "new-on-b", body: #"{"v":"new"}"#)
        try a.delete("items", id: "i0")
        try a.delete("items", id: "i1")
        try world.sync(a)
        world.clock.advance(10_000)  // b is no longer an active client; the tombstones age
        try world.sync(a)
        #expect(try world.server.purgeTombstones() == 2)
        let report = try world.sync(b)
        #expect(report.resynced)
        #expect(try b.find("items", id: "i0") == nil, "a record deleted on the server is gone after the resync")
        #expect(try body(b, "items", "i1")?["v"] as? String == "b-edit", "the pending edit survived")
        #expect(try world.serverBody("items", "i1")?["v"] as? String == "b-edit", "and was pushed (update wins over the purged delete)")
        #expect(try world.serverBody("items", "new-on-b") != nil)
        try world.sync(a)
        #expect(try snapshot(a) == snapshot(b))
    }

    @Test("many concurrent clients on the same records lose no update")
    func concurrentClientsLoseNoUpdate() throws {
        let world = try World { $0.collections["tallies"] = CollectionPolicy(.mergeFields) }
        let clients = try (0..<8).map { try world.client("c\($0)") }
        let seed = clients[0]
        try seed.put("tallies", id: "shared", body: "{}")
        try world.sync(seed)
        for client in clients { try world.sync(client) }
        // Each client owns one field of the shared record and increments it 10 times,
        // syncing after each increment, all at once on separate threads.
        let rounds = 10
        let shared = Unchecked((clients, world))
        DispatchQueue.concurrentPerform(iterations: clients.count) { index in
            let (clients, world) = shared.value
            let db = clients[index]
            for round in 1...rounds {
                try! db.patch("tallies", id: "shared", patch: #"{"c\#(index)":\#(round)}"#)
                try! db.put("log", id: "c\(index)-\(round)", body: #"{"client":\#(index)}"#)
                _ = try! world.sync(db)
            }
        }
        for client in clients { try world.sync(client) }
        let tallies = try #require(try world.serverBody("tallies", "shared"))
        for index in 0..<clients.count { #expect(tallies["c\(index)"] as? Int == rounds) }
        #expect(try world.server.log(LogFilter(collection: "log", limit: 10_000)).count == clients.count * rounds)
        let server = try snapshot(world.server)
        #expect(server.count == 1 + clients.count * rounds)
        for client in clients { #expect(try snapshot(client) == server) }
    }

    @Test("a stale or reordered response is refused and applies nothing; the batch is sent again and applied once")
    func replayedAndReorderedResponses() throws {
        let world = try World()
        let a = try world.client("a"), b = try world.client("b")
        try a.put("jobs", id: "old1", body: #"{"n":0}"#)
        try a.put("jobs", id: "old2", body: #"{"n":0}"#)
        var stale: [UInt8] = []
        _ = try a.sync(over: CallbackTransport { request in
            stale = world.server.handle(frame: request, identity: .trusted())
            return stale
        })
        try b.put("jobs", id: "b1", body: #"{"n":1}"#)
        try world.sync(b)
        try world.sync(a)  // a's cursor is now past the stale response's

        // Two pending changes, like the stale response's batch: only the cursor tells them apart.
        try a.put("jobs", id: "new", body: #"{"n":2}"#)
        try a.put("jobs", id: "newer", body: #"{"n":3}"#)
        let refused = #expect(throws: PierError.self) { try a.sync(over: CallbackTransport { _ in stale }) }
        #expect(refused?.code == .protocol)
        #expect(try a.syncState("jobs", id: "new") == .pending)

        // The right answer with its results out of order.
        var honest: SyncResponse?
        let error = #expect(throws: PierError.self) {
            try a.sync(over: CallbackTransport { (request: [UInt8]) throws(PierError) -> [UInt8] in
                let copy = world.dir + "/probe.pier"
                try? FileManager.default.removeItem(atPath: copy)
                try? FileManager.default.copyItem(atPath: world.dir + "/server.pier", toPath: copy)
                let probe = SyncServer(store: try SQLiteMasterStore(path: copy))
                guard case .syncResponse(var response)? = try? Frame.decode(probe.handle(frame: request, identity: .trusted())) else {
                    throw PierError(.internalError, "no response")
                }
                honest = response
                response.results.reverse()
                guard let frame = try? Frame.encode(.syncResponse(response)) else { throw PierError(.internalError, "encode") }
                return frame
            })
        }
        #expect(error?.code == .protocol)
        #expect(honest?.results.count == 2)
        #expect(try a.syncState("jobs", id: "newer") == .pending)

        // The batch in flight goes again and is applied once.
        let report = try world.sync(a)
        #expect(report.applied == 2)
        #expect(try a.syncState("jobs", id: "new") == .synced && a.syncState("jobs", id: "newer") == .synced)
        #expect(try world.serverBody("jobs", "newer")?["n"] as? Int == 3)
    }

    @Test("a record whose create lost its reply and is then deleted is deleted on the server too")
    func deleteAfterLostReply() throws {
        let world = try World()
        let a = try world.client("a"), b = try world.client("b")
        try a.put("jobs", id: "x", body: #"{"v":1}"#)
        // The server applies the batch; the reply is lost on the way back.
        #expect(throws: PierError.self) {
            try a.sync(over: CallbackTransport { (request: [UInt8]) throws(PierError) -> [UInt8] in
                _ = world.server.handle(frame: request, identity: .trusted())
                throw PierError(.network, "connection reset")
            })
        }
        #expect(try world.serverBody("jobs", "x")?["v"] as? Int == 1)
        try a.delete("jobs", id: "x")
        let report = try world.sync(a)
        #expect(report.replayedBatch)
        #expect(try a.find("jobs", id: "x") == nil)
        #expect(try world.server.record("jobs", "x")?.deleted == true)
        try world.sync(b)
        #expect(try b.find("jobs", id: "x") == nil)
    }

    @Test("a batch delivered again after the server forgot it (64 batches later) is refused, not applied twice")
    func lateDuplicateBatch() throws {
        let world = try World()
        let a = try world.client("a")
        try a.put("counters", id: "c", body: #"{"n":0}"#)
        var first: [UInt8] = []
        _ = try a.sync(over: CallbackTransport { request in
            if first.isEmpty { first = request }
            return world.server.handle(frame: request, identity: .trusted())
        })
        for n in 1...70 {
            try a.put("counters", id: "c", body: #"{"n":\#(n)}"#)
            try world.sync(a)
        }
        let before = try world.server.log(LogFilter(limit: 1_000)).count
        guard case .error(let refusal)? = try? Frame.decode(world.server.handle(frame: first, identity: .trusted())) else {
            Issue.record("a late duplicate was not refused")
            return
        }
        #expect(refusal.code == PierError.Code.protocol.rawValue)
        #expect(try world.server.log(LogFilter(limit: 1_000)).count == before)
        #expect(try world.serverBody("counters", "c")?["n"] as? Int == 70)
    }

    @Test("a create that lost to the server's copy and was deleted since leaves the server's record alone")
    func deletedCreateThatLost() throws {
        let world = try World({ $0.collections["jobs"] = CollectionPolicy(.firstWriteWins) })
        let a = try world.client("a"), b = try world.client("b")
        try b.put("jobs", id: "shared", body: #"{"by":"b"}"#)
        try world.sync(b)
        try a.put("jobs", id: "shared", body: #"{"by":"a"}"#)
        // a's create reaches the server (and loses), its reply is lost; a deletes its record.
        #expect(throws: PierError.self) {
            try a.sync(over: CallbackTransport { (request: [UInt8]) throws(PierError) -> [UInt8] in
                _ = world.server.handle(frame: request, identity: .trusted())
                throw PierError(.network, "connection reset")
            })
        }
        try a.delete("jobs", id: "shared")
        _ = try world.sync(a)
        #expect(try world.serverBody("jobs", "shared")?["by"] as? String == "b")
        #expect(try a.find("jobs", id: "shared") == #"{"by":"b"}"#)
    }
}

