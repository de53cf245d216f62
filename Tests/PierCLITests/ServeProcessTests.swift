import Foundation
import Pier
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `pier serve` as a real process: two of them on one PostgreSQL database with clients
/// syncing through both over HTTP, and `pier sync` against a live server. The PostgreSQL
/// test needs PIER_TEST_POSTGRES_URL (scripts/pg-cluster start); with
/// PIER_REQUIRE_POSTGRES=1 a missing URL is a failure instead of a skip.
@Suite("pier serve processes", .serialized)
struct ServeProcessTests {
    static var postgresURL: String? {
        guard let url = ProcessInfo.processInfo.environment["PIER_TEST_POSTGRES_URL"], !url.isEmpty else { return nil }
        return url
    }

    static let apiKey = "pk_serve_process_test_0123456789"

    @Test("the PostgreSQL serve test is configured when PIER_REQUIRE_POSTGRES=1")
    func required() {
        if ProcessInfo.processInfo.environment["PIER_REQUIRE_POSTGRES"] == "1" {
            #expect(Self.postgresURL != nil, "PIER_REQUIRE_POSTGRES=1 but PIER_TEST_POSTGRES_URL is not set: run scripts/pg-cluster start")
        }
    }

    @Test("Two `pier serve` processes on one PostgreSQL: clients converge, no lost update, one log line per change, unique versions",
          .enabled(if: postgresURL != nil, "PIER_TEST_POSTGRES_URL is not set"))
    func twoServersOnPostgres() async throws {
        let baseURL = try #require(Self.postgresURL)
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }

        // `pier serve` always uses the schema "pier", so each run gets a database of its own.
        let database = try FreshDatabase(baseURL: baseURL)
        defer { database.drop() }
        try writeConfig(folder + "/serve.json", extra: #"""
            "default_policy": "last_write_wins",
            "collections": { "notes": { "policy": "last_write_wins" }, "shared": { "policy": "merge_fields" } }
            """#)

        let servers = ServeProcesses()
        defer { servers.killAll() }
        var started: [String] = []
        for index in 0..<2 {
            started.append(try await servers.start(["--listen", "127.0.0.1:0", "--store", database.url, "--config", folder + "/serve.json"],
                                                   logFolder: folder, name: "serve\(index)"))
        }
        let urls = started
        #expect(urls[0] != urls[1])

        let clients = 6, rounds = 4, sharedRecords = 3, ownRecords = 3
        let key = Self.apiKey
        let totals = try await onThread { () throws -> Totals in
            let totals = Totals()
            // Seed the shared records through the first server, so every client edits the same ones.
            let seed = try Database(path: folder + "/seed.pier")
            for s in 0..<sharedRecords { try seed.put("shared", id: "s\(s)", body: "{}") }
            totals.add(try seed.sync(url: urls[0], token: key))
            seed.close()

            let errors = runOnThreads(clients) { index in
                let db = try Database(path: folder + "/client\(index).pier")
                defer { db.close() }
                totals.add(try db.sync(url: urls[index % 2], token: key))
                for round in 1...rounds {
                    // Odd clients walk the shared records backwards: batches lock them in opposite orders.
                    for s in index % 2 == 0 ? Array(0..<sharedRecords) : (0..<sharedRecords).reversed() {
                        try db.patch("shared", id: "s\(s)", patch: #"{"c\#(index)":\#(round)}"#)
                    }
                    for k in 0..<ownRecords {
                        try db.put("notes", id: "c\(index)-\(k)", body: #"{"by":\#(index),"round":\#(round)}"#)
                    }
                    // Alternate servers, as a load balancer would.
                    totals.add(try db.sync(url: urls[(index + round) % 2], token: key))
                }
            }
            if !errors.isEmpty { throw TestFailure(errors.joined(separator: "\n")) }
            return totals
        }
        #expect(totals.conflicts.load(ordering: .relaxed) == 0)

        // Final syncs, each client through the server it did not use last, then everyone's data.
        let finals = try await onThread { () throws -> [(pushed: Int, data: [String: [String: Int]])] in
            try (0..<clients).map { index in
                let db = try Database(path: folder + "/client\(index).pier")
                defer { db.close() }
                let report = try db.sync(url: urls[(index + rounds + 1) % 2], token: key)
                totals.add(report)
                return (report.pushed, try contents(of: db, collections: ["shared", "notes"]))
            }
        }
        #expect(finals.allSatisfy { $0.pushed == 0 }, "nothing was left pending: \(finals.map(\.pushed))")

        // Convergence: every client holds the same data, whichever server it synced through last.
        for index in 1..<clients {
            #expect(finals[index].data == finals[0].data, "client \(index) differs from client 0")
        }
        // No lost update: each shared record has every client's last value of its field; each
        // client's own records hold its last write.
        let data = finals[0].data
        let everyField = Dictionary(uniqueKeysWithValues: (0..<clients).map { ("c\($0)", rounds) })
        for s in 0..<sharedRecords {
            #expect(data["shared/s\(s)"] == everyField, "s\(s): \(String(describing: data["shared/s\(s)"]))")
        }
        for index in 0..<clients {
            for k in 0..<ownRecords {
                #expect(data["notes/c\(index)-\(k)"] == ["by": index, "round": rounds], "notes/c\(index)-\(k)")
            }
        }
        #expect(data.count == sharedRecords + clients * ownRecords)

        // The business log: one line per change pushed, each with a version of its own.
        let log = try await onThread { try CLI.run(["log", "--store", database.url, "--json", "--limit", "100000"]) }
        #expect(log.status == 0, "\(log.stderr)")
        let entries = try log.stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
        let pushed = totals.pushed.load(ordering: .relaxed)
        #expect(pushed == sharedRecords + clients * rounds * (sharedRecords + ownRecords), "every edit was pushed once")
        #expect(entries.count == pushed, "one log line per change pushed")
        let outcomes = Set(entries.compactMap { $0["outcome"] as? String })
        #expect(outcomes.isSubset(of: ["applied", "merged"]), "nothing was superseded, rejected or conflicted: \(outcomes)")
        let versions = entries.compactMap { ($0["new_version"] as? NSNumber)?.int64Value }
        #expect(versions.count == entries.count)
        #expect(Set(versions).count == versions.count, "every change got a version of its own")
        let seqs = entries.compactMap { ($0["seq"] as? NSNumber)?.int64Value }
        #expect(Set(seqs).count == entries.count)

        // SIGTERM: both exit 0.
        let statuses = try await servers.terminateAll()
        #expect(statuses.count == 2)
        for (name, reason, status) in statuses {
            #expect(reason == .exit && status == 0, "\(name) ended with \(reason) \(status): \(servers.stderrTail(name))")
        }
    }

    @Test("`pier sync` against a live `pier serve` (SQLite master): a report, PIER_EAUTH for a wrong token, PIER_ENETWORK for no server")
    func syncCommandAgainstServe() async throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try writeConfig(folder + "/serve.json", extra: #""collections": { "notes": { "policy": "last_write_wins" } }"#)

        let servers = ServeProcesses()
        defer { servers.killAll() }
        let url = try await servers.start(["--listen", "127.0.0.1:0", "--store", folder + "/master.pier", "--config", folder + "/serve.json"],
                                          logFolder: folder, name: "serve")

        let store = folder + "/device.pier"
        do {
            let db = try Database(path: store)
            defer { db.close() }
            for k in 0..<3 { try db.put("notes", id: "n\(k)", body: #"{"text":"note \#(k)"}"#) }
        }
        let key = Self.apiKey
        let first = try await onThread { try CLI.run(["sync", store, "--url", url, "--token", key, "--json"]) }
        #expect(first.status == 0, "\(first.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any], "\(first.stdout)")
        #expect(report["pushed"] as? Int == 3)
        #expect(report["applied"] as? Int == 3)
        #expect(report["conflicts"] as? Int == 0)

        do {
            let db = try Database(path: store)
            defer { db.close() }
            try db.put("notes", id: "n3", body: #"{"text":"after"}"#)
        }
        let (wrongToken, unreachable) = try await onThread {
            (try CLI.run(["sync", store, "--url", url, "--token", "pk_not_a_key_of_this_server", "--json"]),
             try CLI.run(["sync", store, "--url", "http://127.0.0.1:9", "--token", key, "--retries", "0", "--json"]))
        }
        #expect(wrongToken.status == 1)
        #expect(wrongToken.stderr.contains("PIER_EAUTH"), "\(wrongToken.stderr)")
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("PIER_ENETWORK"), "\(unreachable.stderr)")

        // The refused change stayed pending and goes through with the right token.
        let again = try await onThread { try CLI.run(["sync", store, "--url", url, "--token", key, "--json"]) }
        #expect(again.status == 0, "\(again.stderr)")
        let second = try #require(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any], "\(again.stdout)")
        #expect(second["pushed"] as? Int == 1)

        let statuses = try await servers.terminateAll()
        for (name, reason, status) in statuses {
            #expect(reason == .exit && status == 0, "\(name) ended with \(reason) \(status): \(servers.stderrTail(name))")
        }
        let log = try await onThread { try CLI.run(["log", "--store", folder + "/master.pier", "--json"]) }
        #expect(log.stdout.split(separator: "\n").count == 4, "one log line per change: \(log.stdout)")
    }
}

// MARK: - Helpers

private struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

private func makeFolder() throws -> String {
    let path = NSTemporaryDirectory() + "pier-serve-proc-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A `pier serve` configuration with the test's API key (admin, every scope) plus `extra` keys.
private func writeConfig(_ path: String, extra: String) throws {
    let text = """
        {
          "auth": { "api_keys": [ { "key": "\(ServeProcessTests.apiKey)", "user": "tester",
                                    "read_scopes": ["*"], "write_scopes": ["*"], "admin": true } ] },
          \(extra)
        }
        """
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// Sync report sums, shared by the client threads.
private final class Totals: Sendable {
    let pushed = Atomic(0)
    let conflicts = Atomic(0)

    func add(_ report: SyncReport) {
        pushed.add(report.pushed, ordering: .relaxed)
        conflicts.add(report.conflicts, ordering: .relaxed)
    }
}

/// Every record of `collections` as "collection/id" -> its body's integer fields.
private func contents(of db: Database, collections: [String]) throws -> [String: [String: Int]] {
    var result: [String: [String: Int]] = [:]
    for collection in collections {
        for (id, body) in try db.list(collection, limit: 100_000) {
            let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
            result["\(collection)/\(id)"] = object.compactMapValues { ($0 as? NSNumber)?.intValue }
        }
    }
    return result
}

/// A database of its own on the test cluster, dropped at the end (`psql` creates and drops it).
private struct FreshDatabase {
    let baseURL: String
    let name: String
    let url: String

    init(baseURL: String) throws {
        self.baseURL = baseURL
        name = "pier_serve_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        guard var components = URLComponents(string: baseURL) else { throw TestFailure("cannot parse \(baseURL)") }
        components.path = "/" + name
        guard let url = components.string else { throw TestFailure("cannot rebuild \(baseURL)") }
        self.url = url
        let created = try psql(baseURL, "CREATE DATABASE \(name)")
        if created.status != 0 { throw TestFailure("psql CREATE DATABASE failed: \(created.errors)") }
    }

    func drop() {
        _ = try? psql(baseURL, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }
}

private struct Finished {
    var status: Int32
    var errors: String
}

private func psql(_ url: String, _ sql: String) throws -> Finished {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
    process.arguments = [url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]
    let errors = Pipe()
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle.nullDevice
    process.standardError = errors
    try process.run()
    let text = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Finished(status: process.terminationStatus, errors: String(decoding: text, as: UTF8.self))
}

/// `pier serve` children of this test. Standard output and error go to files (a pipe nobody
/// drains could block the server); `killAll` (for a `defer`) SIGKILLs whatever still runs.
private final class ServeProcesses: @unchecked Sendable {
    private let lock = NSLock()
    private var running: [(name: String, process: Process, stderrPath: String)] = []

    /// Starts `pier serve` and returns the URL of its first line, waiting at most 60 s for it.
    func start(_ arguments: [String], logFolder: String, name: String) async throws -> String {
        let outPath = logFolder + "/\(name).out", errPath = logFolder + "/\(name).err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.path)
        process.arguments = ["serve"] + arguments
        var environment = ProcessInfo.processInfo.environment
        for name in ["PIER_CONFIG", "PIER_LISTEN", "PIER_STORE", "PIER_API_KEY_FILE", "PIER_JWT_SECRET", "PIER_JWT_SECRET_FILE",
                     "PIER_MAX_CONCURRENT_SYNCS", "PIER_LOG_LEVEL"] {
            environment[name] = nil
        }
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
        lock.withLock { running.append((name, process, errPath)) }

        let deadline = Date().addingTimeInterval(60)
        while true {
            let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
            if let newline = text.firstIndex(of: "\n") {
                let line = String(text[..<newline])
                let prefix = "pier serve: listening on "
                guard line.hasPrefix(prefix + "http://127.0.0.1:") else { throw TestFailure("\(name): unexpected first line \(line.debugDescription)") }
                return String(line.dropFirst(prefix.count))
            }
            if !process.isRunning { throw TestFailure("\(name) exited \(process.terminationStatus) before listening: \(stderrTail(name))") }
            if Date() > deadline { throw TestFailure("\(name) did not announce its URL within 60 s: \(stderrTail(name))") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// SIGTERM to every child, then waits (at most 60 s each) for them to exit.
    func terminateAll() async throws -> [(name: String, reason: Process.TerminationReason, status: Int32)] {
        let children = lock.withLock { running }
        for child in children where child.process.isRunning { kill(child.process.processIdentifier, SIGTERM) }
        var ended: [(name: String, reason: Process.TerminationReason, status: Int32)] = []
        for child in children {
            let deadline = Date().addingTimeInterval(60)
            while child.process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
            if child.process.isRunning {
                throw TestFailure("\(child.name) still runs 60 s after SIGTERM")
            }
            ended.append((child.name, child.process.terminationReason, child.process.terminationStatus))
        }
        return ended
    }

    func killAll() {
        let children = lock.withLock { running }
        for child in children where child.process.isRunning {
            kill(child.process.processIdentifier, SIGKILL)
            child.process.waitUntilExit()
        }
    }

    /// The end of a child's standard error, for failure messages.
    func stderrTail(_ name: String) -> String {
        guard let path = lock.withLock({ running.first { $0.name == name }?.stderrPath }),
              let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "" }
        return String(text.suffix(2000))
    }
}

/// Runs blocking work on a thread of its own (never on Swift's cooperative pool).
private func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.stackSize = 4 << 20
        thread.start()
    }
}

/// Runs `body(0..<count)` on `count` threads and waits (at most three minutes) for all of
/// them; returns the errors they threw.
private func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) -> [String] {
    let errors = Mutex<[String]>([])
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            defer { group.leave() }
            do { try body(index) } catch { errors.withLock { $0.append("client \(index): \(error)") } }
        }
        thread.stackSize = 4 << 20
        thread.start()
    }
    if group.wait(timeout: .now() + 180) == .timedOut {
        errors.withLock { $0.append("client threads still running after 180 s") }
    }
    return errors.withLock { $0 }
}
