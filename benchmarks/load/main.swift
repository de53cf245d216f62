// pier-bench-load: concurrent clients syncing over loopback HTTP against a `pier serve`
// process, on each master store (issue 5). Not a test: it prints figures and exits non-zero
// only when the data is wrong (a lost update), never on a timing.
//
//   pier-bench-load [--quick] [--clients 8,32] [--stores sqlite,postgres] [--pg-url URL]
//                   [--syncs N] [--batch B] [--pier PATH] [--markdown FILE]
//
// For each store, client count and workload it starts a fresh server, lets every client
// write a batch and sync, `syncs` times, and reports the changes the server accepted per
// second against the raw insert rate of the same database measured in the same run: the
// same rows inserted with the same batch size into a plain keyed table (SQLite: one writer
// on the same pragmas; PostgreSQL: pgbench with as many connections as clients).
//
// Workloads:
//   disjoint  every client updates its own records in its own scope (no contention, and
//             no fan-out: like a technician who sees only their own jobs);
//   hot       every client edits the same records (a merge_fields collection, one field per
//             client), the worst case for row locks; every change is also pulled by every
//             other client, so the server sends clients-1 copies of each.
// No lost update: at the end a fresh client pulls everything and checks that every record
// holds the last value its writer was told was accepted (disjoint), and that every hot
// record holds every client's last field value (hot); the business log must hold one line
// per change.
import CSQLite
import Foundation
import Pier

// MARK: Options

struct Options {
    var clients = [8, 32]
    var stores = ["sqlite", "postgres"]
    var pgURL = ProcessInfo.processInfo.environment["PIER_TEST_POSTGRES_URL"]
    var syncs = 20
    var batch = 50
    var pier = ".build/release/pier"
    var markdown: String?
    var json: String?

    init(_ arguments: [String]) {
        var i = 1
        func value() -> String {
            i += 1
            guard i < arguments.count else { fatalError("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--quick": clients = [4]; syncs = 3; batch = 10
            case "--clients": clients = value().split(separator: ",").compactMap { Int($0) }
            case "--stores": stores = value().split(separator: ",").map(String.init)
            case "--pg-url": pgURL = value()
            case "--syncs": syncs = Int(value()) ?? syncs
            case "--batch": batch = Int(value()) ?? batch
            case "--pier": pier = value()
            case "--markdown": markdown = value()
            case "--json": json = value()
            default: fatalError("unknown argument \(arguments[i])")
            }
            i += 1
        }
    }
}

func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}

@discardableResult
func shell(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    process.environment = env
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.standardError
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw BenchError("\(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
    }
    return String(decoding: data, as: UTF8.self)
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: The server process

/// A `pier serve` child process on a free loopback port.
final class ServerProcess {
    let process = Process()
    let url: String
    static let apiKey = "bench-key-0123456789abcdef"
    /// Client k's own key: it reads and writes only scope "s<k>" and the shared "hot" scope.
    static func clientKey(_ k: Int) -> String { "bench-client-\(k)-0123456789abcdef" }

    init(pier: String, store: String, folder: String, clients: Int) throws {
        let clientKeys = (0..<clients).map { k in
            #", {"key": "\#(Self.clientKey(k))", "user": "tech\#(k)", "read_scopes": ["s\#(k)", "hot"], "write_scopes": ["s\#(k)", "hot"]}"#
        }.joined()
        let config = """
            {
              "collections": {
                "items": {"policy": "last_write_wins"},
                "hot": {"policy": "merge_fields"}
              },
              "http": {"listen": "127.0.0.1:0", "max_concurrent_syncs": 64},
              "auth": {"api_keys": [{"key": "\(Self.apiKey)", "user": "bench", "read_scopes": ["*"], "write_scopes": ["*"], "admin": true}\(clientKeys)]}
            }
            """
        let configPath = folder + "/serve.json"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: pier)
        process.arguments = ["serve", "--config", configPath, "--store", store, "--log-level", "warning"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.standardError
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // The first line names the bound address.
        var line = Data()
        let handle = out.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            if chunk.isEmpty { throw BenchError("pier serve exited before listening") }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "http://") else { throw BenchError("unexpected first line from pier serve: \(text)") }
        url = String(text[range.lowerBound...].prefix { !$0.isWhitespace })
    }

    /// CPU seconds (user + system) the server process has used so far.
    var cpuSeconds: Double {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

// MARK: One run

/// What the client threads report, behind a lock.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var _latencies: [Double] = []
    private var _failures: [String] = []
    func add(_ latencies: [Double]) { lock.withLock { _latencies += latencies } }
    func fail(_ message: String) { lock.withLock { _failures.append(message) } }
    var latencies: [Double] { lock.withLock { _latencies } }
    var failures: [String] { lock.withLock { _failures } }
}

struct RunResult {
    var store: String
    var workload: String
    var clients: Int
    var changes: Int
    var seconds: Double
    var latencies: [Double]
    var rawRowsPerSecond: Double
    var verified: String
    /// Server process CPU time per accepted change, microseconds.
    var serverCPUMicroseconds: Double
    var changesPerSecond: Double { Double(changes) / seconds }
    var ratio: Double { changesPerSecond / rawRowsPerSecond }
}

func body(client: Int, record: Int, sequence: Int) -> String {
    #"{"client":\#(client),"record":\#(record),"n":\#(sequence),"note":"load test write \#(sequence) of client \#(client)","tags":["a","b"]}"#
}

func run(store kind: String, workload: String, clients: Int, options: Options) throws -> RunResult {
    let folder = NSTemporaryDirectory() + "pier-load-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let storeSpec: String
    if kind == "postgres" {
        guard let url = options.pgURL else { throw BenchError("postgres needs --pg-url or PIER_TEST_POSTGRES_URL") }
        try shell(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", "DROP SCHEMA IF EXISTS pier CASCADE"])
        storeSpec = url
    } else {
        storeSpec = folder + "/master.pier"
    }
    let server = try ServerProcess(pier: options.pier, store: storeSpec, folder: folder, clients: clients)
    defer { server.stop() }
    let http = HTTPTransport.Configuration(connectTimeoutMilliseconds: 5_000, timeoutMilliseconds: 60_000)

    let databases = try (0..<clients).map { try Database(path: folder + "/client-\($0).pier") }
    defer { databases.forEach { $0.close() } }
    for (k, db) in databases.enumerated() { _ = try db.sync(url: server.url, token: ServerProcess.clientKey(k), http: http) }

    if workload == "hot" {
        // The shared records exist before the clients start editing them.
        try databases[0].putMany("hot", (0..<options.batch).map { ("hot-\($0)", "{}") }, scope: "hot")
        for (k, db) in databases.enumerated() { _ = try db.sync(url: server.url, token: ServerProcess.clientKey(k), http: http) }
    }

    let tally = Tally()
    nonisolated(unsafe) let clientDatabases = databases
    let url = server.url
    let finished = DispatchSemaphore(value: 0)
    let cpuBefore = server.cpuSeconds
    let start = seconds()
    for k in 0..<clients {
        Thread {
            defer { finished.signal() }
            let db = clientDatabases[k]
            var mine: [Double] = []
            do {
                for s in 0..<options.syncs {
                    try db.transaction { db in
                        for r in 0..<options.batch {
                            if workload == "hot" {
                                try db.patch("hot", id: "hot-\(r)", patch: #"{"c\#(k)":\#(s)}"#)
                            } else {
                                try db.put("items", id: "c\(k)-r\(r)", body: body(client: k, record: r, sequence: s), scope: "s\(k)")
                            }
                        }
                    }
                    let t0 = seconds()
                    _ = try db.sync(url: url, token: ServerProcess.clientKey(k), http: http)
                    mine.append(seconds() - t0)
                }
            } catch {
                tally.fail("client \(k): \(error)")
            }
            tally.add(mine)
        }.start()
    }
    for _ in 0..<clients { finished.wait() }
    let elapsed = seconds() - start
    let serverCPU = server.cpuSeconds - cpuBefore
    if let first = tally.failures.first { throw BenchError(first) }

    let verified = try verify(workload: workload, clients: clients, options: options, server: server, storeSpec: storeSpec, folder: folder, http: http)
    let changes = clients * options.syncs * options.batch
    let raw = try rawInsertRate(kind: kind, rows: changes, clients: clients, options: options, folder: folder)
    return RunResult(store: kind, workload: workload, clients: clients, changes: changes, seconds: elapsed,
                     latencies: tally.latencies.sorted(), rawRowsPerSecond: raw, verified: verified,
                     serverCPUMicroseconds: serverCPU / Double(changes) * 1e6)
}

/// A fresh client pulls everything; every accepted write must be there.
func verify(workload: String, clients: Int, options: Options, server: ServerProcess, storeSpec: String, folder: String,
            http: HTTPTransport.Configuration) throws -> String {
    let checker = try Database(path: folder + "/checker.pier")
    defer { checker.close() }
    _ = try checker.sync(url: server.url, token: ServerProcess.apiKey, http: http)
    let last = options.syncs - 1
    if workload == "hot" {
        for r in 0..<options.batch {
            let text = try checker.get("hot", id: "hot-\(r)")
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Int] ?? [:]
            for k in 0..<clients where object["c\(k)"] != last {
                throw BenchError("LOST UPDATE: hot-\(r) has c\(k) = \(object["c\(k)"].map(String.init) ?? "nothing"), expected \(last)")
            }
        }
    } else {
        for k in 0..<clients {
            for r in 0..<options.batch {
                let text = try checker.get("items", id: "c\(k)-r\(r)")
                guard text == body(client: k, record: r, sequence: last) else {
                    throw BenchError("LOST UPDATE: c\(k)-r\(r) is \(text)")
                }
            }
        }
    }
    let log = try shell([options.pier, "log", "--store", storeSpec,
                         "--json", "--limit", "10000000"])
    let lines = log.split(separator: "\n").count
    let expected = clients * options.syncs * options.batch + (workload == "hot" ? options.batch : 0)
    guard lines == expected else { throw BenchError("business log has \(lines) lines, expected \(expected)") }
    return "ok (\(expected) log lines)"
}

// MARK: Baselines

/// Rows per second for a plain keyed insert of the same rows in transactions of `batch`.
func rawInsertRate(kind: String, rows: Int, clients: Int, options: Options, folder: String) throws -> Double {
    if kind == "postgres" { return try pgbenchRate(rows: rows, clients: clients, options: options, folder: folder) }
    let path = folder + "/raw.sqlite"
    var db: OpaquePointer?
    guard sqlite3_open(path, &db) == SQLITE_OK else { throw BenchError("cannot open \(path)") }
    defer { sqlite3_close(db) }
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;", nil, nil, nil)
    sqlite3_exec(db, "CREATE TABLE records(collection TEXT NOT NULL, id TEXT NOT NULL, body TEXT, PRIMARY KEY(collection, id))", nil, nil, nil)
    var statement: OpaquePointer?
    sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO records VALUES ('items', ?1, ?2)", -1, &statement, nil)
    defer { sqlite3_finalize(statement) }
    let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    let start = seconds()
    var written = 0
    var batchNumber = 0
    while written < rows {
        sqlite3_exec(db, "BEGIN", nil, nil, nil)
        for r in 0..<options.batch where written < rows {
            let client = batchNumber % clients
            sqlite3_bind_text(statement, 1, "c\(client)-r\(r)-\(batchNumber)", -1, transient)
            sqlite3_bind_text(statement, 2, body(client: client, record: r, sequence: batchNumber), -1, transient)
            guard sqlite3_step(statement) == SQLITE_DONE else { throw BenchError("raw insert failed") }
            sqlite3_reset(statement)
            written += 1
        }
        sqlite3_exec(db, "COMMIT", nil, nil, nil)
        batchNumber += 1
    }
    return Double(rows) / (seconds() - start)
}

/// pgbench, `clients` connections, each transaction inserting `batch` rows one statement at a time.
func pgbenchRate(rows: Int, clients: Int, options: Options, folder: String) throws -> Double {
    guard let url = options.pgURL else { throw BenchError("postgres needs a URL") }
    try shell(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
               "DROP TABLE IF EXISTS pier_raw_records; CREATE TABLE pier_raw_records(collection text NOT NULL, id text NOT NULL, body text, PRIMARY KEY(collection, id))"])
    var script = "BEGIN;\n"
    for r in 0..<options.batch {
        let value = body(client: 0, record: r, sequence: 0).replacingOccurrences(of: "'", with: "''")
        script += "INSERT INTO pier_raw_records VALUES ('items', 'c' || :client_id || '-r\(r)-' || :tx, '\(value)') ON CONFLICT (collection, id) DO UPDATE SET body = excluded.body;\n"
    }
    script += "COMMIT;\n"
    let scriptPath = folder + "/raw.sql"
    try ("\\set tx random(1, 1000000000)\n" + script).write(toFile: scriptPath, atomically: true, encoding: .utf8)
    let transactions = max(1, rows / options.batch / clients)
    let pgbench = "/usr/lib/postgresql/15/bin/pgbench"
    let output = try shell([pgbench, "-n", "-c", String(clients), "-j", "2", "-t", String(transactions), "-f", scriptPath, url])
    guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
          let tps = Double(line.dropFirst(6).prefix { $0 != " " }) else {
        throw BenchError("cannot read pgbench's tps from: \(output)")
    }
    return tps * Double(options.batch)
}

// MARK: Main

let options = Options(CommandLine.arguments)
var results: [RunResult] = []
var failed = false
for store in options.stores {
    if store == "postgres" && options.pgURL == nil {
        print("postgres: skipped (no --pg-url or PIER_TEST_POSTGRES_URL)")
        continue
    }
    for clients in options.clients {
        for workload in ["disjoint", "hot"] {
            do {
                let result = try run(store: store, workload: workload, clients: clients, options: options)
                results.append(result)
                print(String(format: "%-8@ %-8@ %3d clients: %7.0f changes/s vs raw insert %8.0f rows/s = %.2f; sync p50 %.1f ms, p99 %.1f ms; server CPU %.0f µs/change; %@",
                             store as NSString, workload as NSString, clients, result.changesPerSecond, result.rawRowsPerSecond, result.ratio,
                             percentile(result.latencies, 0.5) * 1000, percentile(result.latencies, 0.99) * 1000, result.serverCPUMicroseconds,
                             result.verified as NSString))
            } catch {
                print("\(store) \(workload) \(clients) clients: FAILED: \(error)")
                failed = true
            }
        }
    }
}
if let path = options.markdown {
    var text = """
        ## Load: concurrent clients over loopback HTTP (issue 5)

        `pier-bench-load --clients \(options.clients.map(String.init).joined(separator: ",")) --syncs \(options.syncs) --batch \(options.batch)`:
        each client writes \(options.batch) changes and syncs, \(options.syncs) times, against one `pier serve` process.
        Throughput is changes accepted by the server per second; the baseline is the raw insert rate of the same
        database in the same run (SQLite: one writer, same pragmas; PostgreSQL: pgbench with as many connections as clients),
        \(options.batch) rows per transaction. Target: ratio at least 0.5.

        | store | workload | clients | changes/s | raw insert rows/s | ratio | sync p50 ms | sync p99 ms | server CPU µs/change | no lost update |
        |---|---|---:|---:|---:|---:|---:|---:|---:|---|

        """
    for r in results {
        text += String(format: "| %@ | %@ | %d | %.0f | %.0f | %.2f | %.1f | %.1f | %.0f | %@ |\n", r.store as NSString, r.workload as NSString,
                       r.clients, r.changesPerSecond, r.rawRowsPerSecond, r.ratio, percentile(r.latencies, 0.5) * 1000,
                       percentile(r.latencies, 0.99) * 1000, r.serverCPUMicroseconds, r.verified as NSString)
    }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}
if let path = options.json {
    // One object per run, for benchmarks/run's report.
    var lines = ""
    for r in results {
        lines += String(format: "{\"store\":\"%@\",\"workload\":\"%@\",\"clients\":%d,\"changes_per_second\":%.1f,\"raw_rows_per_second\":%.1f,\"ratio\":%.4f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"server_cpu_us_per_change\":%.1f,\"verified\":\"%@\"}\n",
                        r.store as NSString, r.workload as NSString, r.clients, r.changesPerSecond, r.rawRowsPerSecond, r.ratio,
                        percentile(r.latencies, 0.5) * 1000, percentile(r.latencies, 0.99) * 1000, r.serverCPUMicroseconds, r.verified as NSString)
    }
    try lines.write(toFile: path, atomically: true, encoding: .utf8)
}
exit(failed ? 1 : 0)
