import ArgumentParser
import Foundation
import Logging
import Pier
import PierHTTP

#if canImport(Glibc)
import Glibc
#endif

/// `pier demo`: a sync server on loopback HTTP and two field technicians working offline,
/// told as a story. The server runs in this process (SQLite master in a temporary folder);
/// the technicians reach it over HTTP with the built-in transport and their own JWTs.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Two offline technicians, one sync server, conflicting edits: a story.")

    @Option(help: "Where to put the demo's databases (default: a new temporary folder).") var directory: String?

    func run() async throws {
        let folder: String
        if let directory { folder = directory } else {
            var template = Array("/tmp/pier-demo-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw ValidationError("cannot create a temporary folder") }
            folder = String(cString: made)
        }
        do throws(PierError) {
            var config = ServerConfig()
            config.collections = [
                "customers": CollectionPolicy(.lastWriteWins),
                "jobs": CollectionPolicy(.manual),
                "reports": CollectionPolicy(.mergeFields),
                "prices": CollectionPolicy(.firstWriteWins, readableByAll: true),
            ]
            let server = SyncServer(store: try SQLiteMasterStore(path: folder + "/server.pier"), config: config)
            var secret = [UInt8](repeating: 0, count: 32)
            for i in secret.indices { secret[i] = UInt8.random(in: 0...255) }
            var http = HTTPConfiguration(host: "127.0.0.1", port: 0)
            http.auth = AuthConfiguration(jwt: JWTConfiguration(hs256Secret: secret))
            var logger = Logger(label: "pier.demo")
            logger.logLevel = .warning
            let running: RunningServer
            do { running = try await PierHTTPServer.start(server: server, configuration: http, logger: logger) } catch {
                throw PierError(.io, "cannot start the demo server: \(error)")
            }
            func token(_ user: String, scopes: [String], admin: Bool = false) async throws(PierError) -> String {
                try await TokenMinter.mint(key: .hs256(secret: secret), subject: user, readScopes: scopes, writeScopes: scopes,
                                           admin: admin, ttlSeconds: 3600, audience: nil, issuer: nil)
            }
            let story = Story(folder: folder, server: server, url: running.url,
                              officeToken: try await token("office", scopes: ["*"], admin: true),
                              anaToken: try await token("ana", scopes: ["north"]),
                              benToken: try await token("ben", scopes: ["north"]))
            // The story syncs with blocking calls: tell it on a thread of its own, off the
            // concurrency pool that the HTTP server's tasks share.
            let failure: PierError? = await withCheckedContinuation { continuation in
                Thread {
                    do throws(PierError) { try story.tell(); continuation.resume(returning: nil) } catch {
                        continuation.resume(returning: error)
                    }
                }.start()
            }
            try? await running.shutdown()
            if let failure { throw failure }
        } catch { throw pier.failure(error) }
    }
}

private struct Story: Sendable {
    let folder: String
    let server: SyncServer
    let url: String
    let officeToken: String
    let anaToken: String
    let benToken: String

    func sync(_ db: Database, _ token: String) throws(PierError) -> SyncReport { try db.sync(url: url, token: token) }

    func say(_ text: String) { print(text) }
    func chapter(_ title: String) { print("\n── \(title) " + String(repeating: "─", count: max(0, 70 - title.count))) }
    func field(_ db: Database, _ collection: String, _ id: String, _ name: String) throws(PierError) -> String {
        guard let body = try db.find(collection, id: id) else { return "(deleted)" }
        return SideBySide.fields(body).flatMap { SideBySide.lookup($0, name) } ?? "-"
    }

    func report(_ who: String, _ r: SyncReport) {
        var parts = ["pushed \(r.pushed)", "pulled \(r.pulled)"]
        if r.merged > 0 { parts.append("merged \(r.merged)") }
        if r.superseded > 0 { parts.append("superseded \(r.superseded)") }
        if r.rejected > 0 { parts.append("rejected \(r.rejected)") }
        if r.conflicts > 0 { parts.append("CONFLICTS \(r.conflicts)") }
        say("   \(who) syncs: " + parts.joined(separator: ", ") + " (\(r.roundTrips) round trip\(r.roundTrips == 1 ? "" : "s"), \(r.bytesSent + r.bytesReceived) bytes)")
    }

    func tell() throws(PierError) {
        say("Pier demo — a sync server and two field technicians, Ana and Ben.")
        say("Everything lives in \(folder).")
        say("The server listens on \(url); each of them syncs over HTTP with a token of their own.")

        let office = try Database(path: folder + "/office.pier")
        let ana = try Database(path: folder + "/ana.pier")
        let ben = try Database(path: folder + "/ben.pier")
        defer { office.close(); ana.close(); ben.close() }
        say("Server policies: customers last-write-wins, jobs manual, reports merge-fields, prices reference data.")

        chapter("1. Reference data")
        try office.putMany("prices", [("valve", #"{"item":"valve","price":12.50}"#), ("gasket", #"{"item":"gasket","price":1.20}"#)])
        _ = try sync(office, officeToken)
        for db in [ana, ben] {
            try db.setCollectionMode("prices", .pullOnly)
            try db.setCollectionMode("counters", .pushOnly, purgeAfterPush: true)
        }
        report("Ana", try sync(ana, anaToken))
        report("Ben", try sync(ben, benToken))
        say("   Both vans now carry the price list: valve costs \(try field(ben, "prices", "valve", "price")).")
        do { try ana.put("prices", id: "valve", body: #"{"item":"valve","price":0}"#) } catch {
            say("   Ana cannot edit it locally: \(error.message)")
        }

        chapter("2. A customer, a job and a report, created in the morning")
        try ana.put("customers", id: "acme", body: #"{"name":"Acme Bakery","phone":"555-0100","city":"Tromsø"}"#, scope: "north")
        try ana.put("jobs", id: "job-17", body: #"{"customer":"acme","status":"open"}"#, scope: "north")
        try ana.put("reports", id: "rep-17", body: #"{"job":"job-17","hours":1,"notes":"oven inspected"}"#, scope: "north")
        report("Ana", try sync(ana, anaToken))
        report("Ben", try sync(ben, benToken))

        chapter("3. Both go offline and edit the same records")
        try ana.patch("customers", id: "acme", patch: #"{"phone":"555-0111"}"#)
        try ana.patch("jobs", id: "job-17", patch: #"{"status":"done"}"#)
        try ana.patch("reports", id: "rep-17", patch: #"{"hours":3}"#)
        say("   Ana, in the basement: phone 555-0111, job done, 3 hours.")
        usleep(5_000)
        try ben.patch("customers", id: "acme", patch: #"{"phone":"555-0222"}"#)
        try ben.patch("jobs", id: "job-17", patch: #"{"status":"waiting for parts"}"#)
        try ben.patch("reports", id: "rep-17", patch: #"{"notes":"oven inspected, fan replaced"}"#)
        say("   Ben, a little later on the road: phone 555-0222, job waiting for parts, a note.")
        for i in 1...3 { try ana.put("counters", id: "van-a-\(i)", body: #"{"km":\#(40 * i)}"#, scope: "north") }

        chapter("4. Back online")
        report("Ana", try sync(ana, anaToken))
        report("Ben", try sync(ben, benToken))
        say("   customers/acme (last write wins): Ben's later edit stands — phone \(try field(ben, "customers", "acme", "phone")).")
        say("   reports/rep-17 (merge fields): both edits kept — hours \(try field(ben, "reports", "rep-17", "hours")), notes \"\(try field(ben, "reports", "rep-17", "notes"))\".")
        say("   counters (push-only telemetry): \(try server.log(LogFilter(collection: "counters")).count) readings reached the server; Ana's van keeps \(try ana.count("counters")).")

        chapter("5. The job needs a human")
        let conflicts = try ben.conflicts()
        say("   The jobs collection is manual: the server kept Ana's copy and sent Ben both, side by side")
        say("   (what `pier conflicts list ben.pier` shows him):")
        for c in conflicts {
            say(SideBySide(c).render(width: 22).split(separator: "\n").map { "     " + $0 }.joined(separator: "\n"))
        }
        try ben.put("jobs", id: "job-18", body: #"{"customer":"acme","status":"open"}"#, scope: "north")
        do { _ = try sync(ben, benToken) } catch {
            say("   Ben's next sync is blocked until he decides: \(error.code.name)")
        }
        if let c = conflicts.first {
            try ben.resolve(c.conflictID, .merged(#"{"customer":"acme","status":"done","followup":"fan ordered"}"#))
            say("   Ben resolves it: done, with a follow-up for the fan.")
        }
        report("Ben", try sync(ben, benToken))
        report("Ana", try sync(ana, anaToken))
        say("   Ana now sees job-17 as \"\(try field(ana, "jobs", "job-17", "status"))\" with follow-up \"\(try field(ana, "jobs", "job-17", "followup"))\".")

        chapter("6. Everyone agrees")
        let collections = ["customers", "jobs", "reports"]
        var same = true
        for c in collections where try ana.list(c).map(\.body) != ben.list(c).map(\.body) { same = false }
        say("   Ana's and Ben's customers, jobs and reports are \(same ? "identical" : "DIFFERENT").")

        chapter("7. The business log on the server")
        for entry in try server.log(LogFilter(limit: 1000)) where entry.collection != "counters" {
            let who = entry.user.padding(6)
            let what = "\(entry.collection)/\(entry.recordID)".padding(18)
            say("   #\(String(entry.seq).padding(3)) \(who) \(entry.op.padding(7)) \(what) \(entry.outcome.padding(10)) v\(entry.newVersion) \(entry.detail.isEmpty ? "" : "— " + entry.detail)")
        }
        say("\nLook around: `pier inspect \(folder)/ben.pier` (Ben's store), `pier log --store \(folder)/server.pier`")
        say("(the whole business log), `pier serve --store \(folder)/server.pier` (serve this master yourself).")
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
