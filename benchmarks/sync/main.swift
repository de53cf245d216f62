// pier-bench-sync: the sync benchmarks of issue 4, each against a baseline measured in
// the same run on the same rows. Not a test: it prints figures, it never fails on them.
//
//   pier-bench-sync [--quick] [--sizes 10000,100000,1000000] [--rounds 3] [--markdown FILE]
//   pier-bench-sync memory N DIR     (one initial sync of N records; prints peak RSS growth)
//   pier-bench-sync seed N PATH      (creates a SQLite master store at PATH holding N records,
//                                     for benchmarks/run to serve with `pier serve`)
import CSQLite
import Pier

#if canImport(Glibc)
import Glibc
#endif

// MARK: Helpers

func now() -> Double { Double(monotonicNanoseconds()) / 1e9 }

/// The peak resident set of this process (VmHWM). Not getrusage's ru_maxrss: Linux keeps
/// that across execve, so a child would report its parent's peak.
func peakRSSKiB() -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, file) != nil {
        let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if text.hasPrefix("VmHWM:") {
            return Int(text.dropFirst(6).filter { $0.isNumber }) ?? 0
        }
    }
    return 0
}

/// Current resident set (not the peak), from /proc/self/statm.
func currentRSSKiB() -> Int {
    guard let file = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(file) }
    var size = 0, resident = 0
    withUnsafeMutablePointer(to: &size) { s in withUnsafeMutablePointer(to: &resident) { r in _ = withVaList([s, r]) { vfscanf(file, "%ld %ld", $0) } } }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
}

func temporaryDirectory() -> String {
    var template = Array("/tmp/pier-bench-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

func remove(_ path: String) {
    for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) }
}

/// Deterministic ~200-byte bodies, the same for every side.
struct Rows {
    var state: UInt64 = 42
    static let cities = ["Oslo", "Bergen", "London", "Paris", "Rome", "Madrid", "Berlin", "Vienna", "Prague", "Lisbon",
                         "Dublin", "Warsaw", "Zurich", "Geneva", "Milan", "Turin", "Lyon", "Nice", "Porto", "Seville"]
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 17
    }
    mutating func body(_ i: Int) -> String {
        let city = Rows.cities[Int(next() % UInt64(Rows.cities.count))]
        return #"{"name":"Customer \#(i)","city":"\#(city)","phone":"+47 \#(10_000_000 + next() % 89_999_999)","street":"\#(next() % 400) Harbour Road","balance":\#(next() % 100_000),"tier":\#(next() % 5),"notes":"serviced on schedule \#(next() % 1000)"}"#
    }
}

func ids(_ count: Int) -> [String] { (0..<count).map { _ in UUIDv7.make() } }

/// Fills a master store with `count` records as if clients had pushed them.
func fillServer(_ store: SQLiteMasterStore, ids: [String]) throws {
    var rows = Rows()
    var index = 0
    while index < ids.count {
        let end = min(ids.count, index + 10_000)
        try store.write { (tx) throws(PierError) in
            for i in index..<end {
                try tx.writeRecord(ServerRecord(collection: "customers", id: ids[i], scope: "default", version: try tx.nextVersion(),
                                                hlc: HLC(milliseconds: 1_700_000_000_000, counter: 0), clientID: "seed", deleted: false,
                                                body: Array(rows.body(i).utf8), updatedAt: 1_700_000_000_000))
            }
        }
        index = end
    }
}

/// The baseline: the same rows inserted with the raw sqlite3 API, same pragmas.
func rawInsert(_ path: String, ids: [String]) -> Double {
    var db: OpaquePointer?
    sqlite3_open(path, &db)
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384; CREATE TABLE records(id TEXT PRIMARY KEY, body TEXT NOT NULL)", nil, nil, nil)
    var stmt: OpaquePointer?
    sqlite3_prepare_v2(db, "INSERT INTO records(id, body) VALUES (?1, ?2)", -1, &stmt, nil)
    var rows = Rows()
    let bodies = (0..<ids.count).map { rows.body($0) }
    let start = now()
    sqlite3_exec(db, "BEGIN", nil, nil, nil)
    for i in 0..<ids.count {
        sqlite3_bind_text(stmt, 1, ids[i], -1, pier_sqlite_transient())
        sqlite3_bind_text(stmt, 2, bodies[i], -1, pier_sqlite_transient())
        sqlite3_step(stmt)
        sqlite3_reset(stmt)
    }
    sqlite3_exec(db, "COMMIT", nil, nil, nil)
    let elapsed = now() - start
    sqlite3_finalize(stmt)
    sqlite3_close(db)
    return elapsed
}

/// The classic full refetch: the server renders everything as one JSON array; the
/// client parses it, deletes its rows and inserts everything again, in one transaction.
func fullRefetch(server: SQLiteMasterStore, clientPath: String) throws -> Double {
    var db: OpaquePointer?
    sqlite3_open(clientPath, &db)
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384; CREATE TABLE IF NOT EXISTS records(id TEXT PRIMARY KEY, body TEXT NOT NULL)", nil, nil, nil)
    defer { sqlite3_close(db) }
    let start = now()
    // Server: everything, as JSON.
    var json = JSONWriter(capacity: 1 << 20)
    json.raw("[")
    var cursor: Int64 = 0
    var first = true
    while true {
        let page = try server.read { (r) throws(PierError) in try r.changes(after: cursor, filter: PullFilter(readScopes: nil), limit: 10_000) }
        if page.isEmpty { break }
        for record in page where !record.deleted {
            if !first { json.raw(",") }
            first = false
            json.raw("{\"id\":")
            json.string(record.id)
            json.raw(",\"body\":")
            record.body!.withUnsafeBytes { json.rawJSON($0) }
            json.raw("}")
        }
        cursor = page.last!.version
    }
    json.raw("]")
    // Client: parse (SQLite's JSON parser), delete everything, insert everything.
    sqlite3_exec(db, "BEGIN; DELETE FROM records", nil, nil, nil)
    var stmt: OpaquePointer?
    sqlite3_prepare_v2(db, "INSERT INTO records(id, body) SELECT value->>'id', value->'body' FROM json_each(?1)", -1, &stmt, nil)
    _ = json.bytes.withUnsafeBytes { sqlite3_bind_text(stmt, 1, $0.baseAddress!.assumingMemoryBound(to: CChar.self), Int32($0.count), pier_sqlite_transient()) }
    sqlite3_step(stmt)
    sqlite3_finalize(stmt)
    sqlite3_exec(db, "COMMIT", nil, nil, nil)
    return now() - start
}

struct Table {
    var title: String
    var header: [String]
    var rows: [[String]] = []
    var note: String
    func render() -> String {
        var out = "### \(title)\n\n| " + header.joined(separator: " | ") + " |\n|" + header.map { _ in "---" }.joined(separator: "|") + "|\n"
        for row in rows { out += "| " + row.joined(separator: " | ") + " |\n" }
        return out + "\n" + note + "\n"
    }
}

/// An initial sync of an empty client at `path` from `server`, timed; checks every record arrived.
func initialSync(_ server: SyncServer, into path: String, expecting size: Int) throws -> (seconds: Double, report: SyncReport, client: Database) {
    let client = try Database(path: path)
    let start = now()
    let report = try client.sync(with: server)
    let seconds = now() - start
    let count = try client.count("customers")
    precondition(report.pulled == size && count == Int64(size), "initial sync pulled \(report.pulled) of \(size) (\(count) stored)")
    return (seconds, report, client)
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func fmt(_ value: Double, _ digits: Int = 2) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
    } else if digits > 0 {
        text += "." + String(repeating: "0", count: digits)
    }
    return text
}

// MARK: Memory mode (the client in a process of its own, so its peak is the sync's)

/// Writes all of `bytes` to `fd`; false if the other end went away.
func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        if n <= 0 { return false }
        done += n
    }
    return true
}

/// Reads exactly `count` bytes from `fd`; nil at end of file or on an error.
func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
    var bytes = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, count - done) }
        if n <= 0 { return nil }
        done += n
    }
    return bytes
}

func lengthPrefix(_ count: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: count >> (8 * $0)) } }
func lengthOf(_ bytes: [UInt8]) -> Int { bytes.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) } }

/// The host-callback transport of a client whose server is the parent process: request
/// frames go out on stdout, responses come back on stdin, each behind a 4-byte length.
/// Uncompressed, like the in-process transport the other figures use, so the client does
/// the same work.
struct PipeTransport: SyncTransport {
    var prefersCompression: Bool { false }
    func roundTrip(_ request: [UInt8]) throws(PierError) -> [UInt8] {
        guard writeAll(1, lengthPrefix(request.count) + request), let head = readExactly(0, 4),
              let response = readExactly(0, lengthOf(head)) else { throw PierError(.network, "the server process went away") }
        return response
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "memory-client" {
    // The client: an idle store, then one initial sync through the parent's server.
    let count = Int(arguments[1])!
    let client = try Database(path: arguments[2] + "/memory-client-\(count).pier")
    _ = try client.count("customers")
    let idle = currentRSSKiB()
    let report = try client.sync(over: PipeTransport())
    let peak = peakRSSKiB()
    let line = "memory \(count) \(idle) \(peak) \(report.pulled) sqlite-now-KiB \(sqlite3_memory_used() / 1024) sqlite-peak-KiB \(sqlite3_memory_highwater(0) / 1024) rss-now-KiB \(currentRSSKiB())"
    _ = writeAll(1, lengthPrefix(0) + Array(line.utf8))
    exit(0)
}
if arguments.first == "memory" {
    // The server: answers the client's frames until it reports, then prints its line.
    let count = Int(arguments[1])!
    let dir = arguments[2]
    let server = SyncServer(store: try SQLiteMasterStore(path: dir + "/server-\(count).pier"))
    var requests: [Int32] = [0, 0], responses: [Int32] = [0, 0]
    guard pipe(&requests) == 0, pipe(&responses) == 0 else { print("memory: pipe failed"); exit(1) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, responses[0], 0)
    posix_spawn_file_actions_adddup2(&actions, requests[1], 1)
    for fd in [requests[0], requests[1], responses[0], responses[1]] { posix_spawn_file_actions_addclose(&actions, fd) }
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(CommandLine.arguments[0]), strdup("memory-client"), strdup(String(count)), strdup(dir), nil]
    var pid: pid_t = 0
    guard posix_spawn(&pid, CommandLine.arguments[0], &actions, nil, argv, environ) == 0 else { print("memory: spawn failed"); exit(1) }
    close(requests[1])
    close(responses[0])
    var result = "memory: the client process ended without a report\n"
    while let head = readExactly(requests[0], 4) {
        let length = lengthOf(head)
        if length == 0 {
            var text = [UInt8]()
            while let byte = readExactly(requests[0], 1) { text.append(byte[0]) }
            result = String(decoding: text, as: UTF8.self) + " server-peak-KiB \(peakRSSKiB())\n"
            break
        }
        guard let frame = readExactly(requests[0], length) else { break }
        let response = server.handle(frame: frame, identity: .trusted(), encoding: .uncompressed)
        guard writeAll(responses[1], lengthPrefix(response.count) + response) else { break }
    }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    print(result, terminator: "")
    exit(status == 0 ? 0 : 1)
}

// MARK: Seed mode (a master store for the HTTP benchmarks of benchmarks/run)

if arguments.first == "seed", arguments.count == 3, let count = Int(arguments[1]) {
    let master = try SQLiteMasterStore(path: arguments[2])
    try fillServer(master, ids: ids(count))
    print("seeded \(count) records into \(arguments[2])")
    exit(0)
}

// MARK: Main

var sizes = [10_000, 100_000, 1_000_000]
var quick = false
var rounds = 3
var markdownPath: String?
var index = 0
while index < arguments.count {
    switch arguments[index] {
    case "--quick": quick = true; sizes = [2_000, 10_000]; rounds = 1
    case "--sizes": index += 1; sizes = arguments[index].split(separator: ",").map { Int($0)! }
    case "--markdown": index += 1; markdownPath = arguments[index]
    case "--rounds": index += 1; rounds = max(1, Int(arguments[index]) ?? 3)
    default: print("unknown argument \(arguments[index])"); exit(2)
    }
    index += 1
}

let dir = temporaryDirectory()
print("pier-bench-sync: sizes \(sizes), folder \(dir)\n")
var initial = Table(title: "Initial sync into an empty client (in-process)",
                    header: ["records", "raw insert (rows/s)", "Pier, prefetch off (rows/s)", "ratio", "Pier (rows/s)", "ratio", "target ≥ 0.5"],
                    note: "Each column is the median of the rounds (`--rounds`, default 3), the three sides measured one after the other in every round. An empty device downloads the whole dataset at this fraction of the speed at which SQLite alone can insert the same rows; the sync includes the server's read, framing, decoding and all change-tracking metadata. \"Pier\" is the default server, whose pull prefetch prepares the next page on a second thread while the client applies the current one; \"prefetch off\" is the same server with `pull_prefetch_threads` 0, where the two take turns. The target applies to the default.")
var delta = Table(title: "Delta sync: 10 changed records against a growing dataset", header: ["records", "Pier delta sync (ms)", "full refetch (ms)", "refetch / Pier"],
                  note: "A device that is already in sync pays only for what changed: Pier's delta sync should stay flat (target under 20 ms) while a delete-and-re-download-everything sync grows with the dataset.")
var push = Table(title: "Pushing local changes with conflict checks", header: ["changes", "push time (ms)", "changes/s", "raw update (rows/s)", "ratio"],
                 note: "Each pushed change is checked against the server copy's version, written with a new version and logged; the baseline updates the same rows in raw SQLite.")
var memory = Table(title: "Peak memory of an initial sync", header: ["records", "idle client RSS (MiB)", "peak during sync (MiB)", "growth (MiB)", "target ≤ 64"],
                   note: "The client runs in a process of its own (`pier-bench-sync memory-client`) and syncs through the host-callback transport with the benchmark's server process, request and response frames on a pipe, uncompressed like the in-process transport: the resident set measured is the client's alone, from an opened idle store (idle) to the peak during the initial sync (VmHWM). Besides one page of records (1,000 records or 1 MiB) in flight, growth is the client's SQLite page cache (16 MiB) filling up, which stops once it is full. The server process's own peak is in the benchmark's log (`server-peak-KiB`).")

for size in sizes {
    let serverPath = dir + "/server-\(size).pier"
    let master = try SQLiteMasterStore(path: serverPath)
    let recordIDs = ids(size)
    try fillServer(master, ids: recordIDs)
    let server = SyncServer(store: master)

    // Initial sync against raw insert: `rounds` rounds, each the raw insert, the default
    // server and the same store behind a server without the pull prefetch (where the two
    // sides take turns), one after the other so that all three see the same machine; the
    // table has each side's median. The last default-server client stays for what follows.
    let turnsServer: SyncServer = {
        var turnsConfig = ServerConfig()
        turnsConfig.pullPrefetchThreads = 0
        return SyncServer(store: master, config: turnsConfig)
    }()
    let clientPath = dir + "/client-\(size).pier"
    var rawTimes: [Double] = [], syncTimes: [Double] = [], turnsTimes: [Double] = []
    var last: (report: SyncReport, client: Database)? = nil
    for round in 1...rounds {
        let rawPath = dir + "/raw-\(size).db"
        rawTimes.append(rawInsert(rawPath, ids: recordIDs))
        remove(rawPath)
        last?.client.close()
        remove(clientPath)
        let synced = try initialSync(server, into: clientPath, expecting: size)
        last = (synced.report, synced.client)
        syncTimes.append(synced.seconds)
        let turnsPath = dir + "/client-turns-\(size).pier"
        let turns = try initialSync(turnsServer, into: turnsPath, expecting: size)
        turns.client.close()
        remove(turnsPath)
        turnsTimes.append(turns.seconds)
        print("  initial \(size), round \(round): Pier / raw \(fmt(rawTimes[round - 1] / syncTimes[round - 1])), prefetch off \(fmt(rawTimes[round - 1] / turnsTimes[round - 1]))")
    }
    let (report, client) = last!
    let rawTime = median(rawTimes), syncTime = median(syncTimes), turnsTime = median(turnsTimes)

    let rawRate = Double(size) / rawTime, pierRate = Double(size) / syncTime, turnsRate = Double(size) / turnsTime
    initial.rows.append([String(size), fmt(rawRate, 0), fmt(turnsRate, 0), fmt(turnsRate / rawRate), fmt(pierRate, 0), fmt(pierRate / rawRate),
                         pierRate / rawRate >= 0.5 ? "met" : "missed"])
    let hits = server.prefetchStatistics.hits
    print("initial \(size), medians of \(rounds) rounds: raw \(fmt(rawRate, 0)) rows/s, pier \(fmt(pierRate, 0)) rows/s, ratio \(fmt(pierRate / rawRate)) (\(report.roundTrips) round trips per sync, \(hits) pages prepared ahead); prefetch off \(fmt(turnsRate, 0)) rows/s, ratio \(fmt(turnsRate / rawRate))")

    // Delta sync of 10 changes (best of 5), and the full refetch of the same data.
    let writer = try Database(path: dir + "/writer-\(size).pier")
    var deltas: [Double] = []
    for round in 0..<5 {
        for k in 0..<10 {
            let id = recordIDs[(round * 10 + k) * 997 % size]
            try writer.put("customers", id: id, body: #"{"name":"changed \#(round)","city":"Oslo"}"#)
        }
        _ = try writer.sync(with: server)
        let t0 = now()
        let r = try client.sync(with: server)
        deltas.append(now() - t0)
        precondition(r.pulled == 10, "delta sync pulled \(r.pulled)")
    }
    let deltaMs = deltas.min()! * 1000
    let refetchPath = dir + "/refetch-\(size).db"
    _ = try fullRefetch(server: master, clientPath: refetchPath)  // first download
    let refetchMs = try fullRefetch(server: master, clientPath: refetchPath) * 1000
    remove(refetchPath)
    delta.rows.append([String(size), fmt(deltaMs), fmt(refetchMs, 1), fmt(refetchMs / deltaMs, 0) + "×"])
    print("delta \(size): pier \(fmt(deltaMs)) ms, full refetch \(fmt(refetchMs, 1)) ms")

    // Push 10k changes (on the 100k dataset, or the largest below it).
    if size == (sizes.contains(100_000) ? 100_000 : sizes.last!) {
        let changes = min(10_000, size)
        try client.transaction { db in
            for k in 0..<changes { try db.patch("customers", id: recordIDs[k], patch: #"{"tier":9}"#) }
        }
        let t0 = now()
        let r = try client.sync(with: server)
        let pushTime = now() - t0
        precondition(r.pushed == changes && r.applied == changes, "pushed \(r.pushed), applied \(r.applied)")
        // Baseline: the same number of row updates in raw SQLite.
        let updatePath = dir + "/update.db"
        _ = rawInsert(updatePath, ids: recordIDs)
        var db: OpaquePointer?
        sqlite3_open(updatePath, &db)
        sqlite3_exec(db, "PRAGMA synchronous=NORMAL", nil, nil, nil)
        var stmt: OpaquePointer?
        sqlite3_prepare_v2(db, "UPDATE records SET body = json_set(body, '$.tier', 9) WHERE id = ?1", -1, &stmt, nil)
        let u0 = now()
        sqlite3_exec(db, "BEGIN", nil, nil, nil)
        for k in 0..<changes {
            sqlite3_bind_text(stmt, 1, recordIDs[k], -1, pier_sqlite_transient())
            sqlite3_step(stmt)
            sqlite3_reset(stmt)
        }
        sqlite3_exec(db, "COMMIT", nil, nil, nil)
        let updateTime = now() - u0
        sqlite3_finalize(stmt)
        sqlite3_close(db)
        remove(updatePath)
        let rate = Double(changes) / pushTime, rawRateUpdate = Double(changes) / updateTime
        push.rows.append([String(changes), fmt(pushTime * 1000, 1), fmt(rate, 0), fmt(rawRateUpdate, 0), fmt(rate / rawRateUpdate)])
        print("push \(changes): \(fmt(pushTime * 1000, 1)) ms, \(fmt(rate, 0)) changes/s (raw update \(fmt(rawRateUpdate, 0)) rows/s)")
    }
    client.close()
    writer.close()
    remove(clientPath)

    // Peak memory of an initial sync, in a fresh process.
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(CommandLine.arguments[0]), strdup("memory"), strdup(String(size)), strdup(dir), nil]
    let pipeFDs = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
    pipe(pipeFDs)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
    posix_spawn(&pid, CommandLine.arguments[0], &actions, nil, argv, environ)
    close(pipeFDs[1])
    var output = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(pipeFDs[0], &buffer, 4096)
        if n <= 0 { break }
        output += buffer[0..<n]
    }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let line = String(decoding: output, as: UTF8.self)
    print("  memory probe: \(line)", terminator: "")
    let fields = line.split(separator: " ").map(String.init)
    if fields.count >= 5, let idle = Double(fields[2]), let peak = Double(fields[3]) {
        let growth = (peak - idle) / 1024
        memory.rows.append([String(size), fmt(idle / 1024, 1), fmt(peak / 1024, 1), fmt(growth, 1), growth <= 64 ? "met" : "missed"])
        print("memory \(size): idle \(fmt(idle / 1024, 1)) MiB, peak \(fmt(peak / 1024, 1)) MiB")
    }
    remove(dir + "/memory-client-\(size).pier")
    if getenv("PIER_BENCH_KEEP") == nil { remove(serverPath) }
}

let markdown = "## Sync (issue 4)\n\nMeasured by `benchmarks/run-sync` (`pier-bench-sync`, release build), one process per run; every ratio's baseline ran in the same process on the same rows.\n\n"
    + [initial, delta, push, memory].map { $0.render() }.joined(separator: "\n")
print("\n" + markdown)
if let markdownPath, let file = fopen(markdownPath, "w") {
    fputs(markdown, file)
    fclose(file)
}
