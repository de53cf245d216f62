// pier-hostile: hostile frames at scale against the server handler and the client engine
// (issue 7, part 3; docs/RELIABILITY.md).
//
//   pier-hostile [--frames N] [--seed S] [--json PATH]      default 100,000 frames
//
// Half the frames go to a SyncServer's handler, half to a client's SyncEngine as the
// server's answer. They are made from real frames of real syncs (recorded first), in
// these kinds: corrupted (bit flips, CRC left stale), truncated, extended (trailing
// garbage), lying lengths (header lengths changed, CRC resealed so the length checks are
// what refuses them), oversized (declared beyond the limits), bomb-style (a deflate
// payload that inflates far beyond its declared size, or to beyond the limit), garbage,
// the wrong message type, replayed (a batch the server already applied, sent again; a
// stale response handed to a later request), reordered (an older batch sequence number
// with different changes; a response whose results are out of order) and, for the
// server only, payload mutations behind a resealed CRC from an identity without rights.
//
// It checks, and exits 1 when any fails: every frame is refused with a typed error (an
// error frame with a Pier status code from the server, a thrown PierError from the client
// engine; never PIER_ERROR, the code of a bug) except replays, which the server answers
// with the stored results; nothing crashes; the databases are unchanged (the server's
// records, business log and stored batches, byte for byte; the client's records, their
// sync state and its pull cursor); resident memory stays bounded; and afterwards a real
// sync still converges with nothing applied twice.
import CSQLite
import CZlib
import Foundation
import Pier
import PierWire

// MARK: Options

struct Options {
    var frames = 100_000
    var seed = UInt64.random(in: 1...UInt64(Int64.max))
    var json: String?

    init(_ arguments: [String]) {
        var i = 1
        func value() -> String {
            i += 1
            guard i < arguments.count else { fail("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--frames": frames = Int(value()) ?? frames
            case "--seed": seed = UInt64(value()) ?? seed
            case "--json": json = value()
            default: fail("unknown argument \(arguments[i]); usage: pier-hostile [--frames N] [--seed S] [--json PATH]")
            }
            i += 1
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("pier-hostile: " + message + "\n").utf8))
    exit(1)
}

/// SplitMix64: small, seedable, and the same on every platform.
struct Random: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: Frame surgery

/// Writes a correct CRC into a frame whose header or payload was changed on purpose, so
/// that the checks after the checksum are what must refuse it.
func resealed(_ frame: [UInt8]) -> [UInt8] {
    guard frame.count >= PierWire.headerSize else { return frame }
    var out = frame
    var crc = frame.withUnsafeBufferPointer { crc32(0, $0.baseAddress, 16) }
    crc = frame.withUnsafeBufferPointer { crc32(crc, $0.baseAddress! + PierWire.headerSize, uInt(frame.count - PierWire.headerSize)) }
    for i in 0..<4 { out[16 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt(i))) }
    return out
}

func setUInt32(_ frame: inout [UInt8], at offset: Int, _ value: UInt32) {
    for i in 0..<4 { frame[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
}

/// Raw deflate of `count` zero bytes: a few kilobytes that inflate to `count`.
func deflatedZeros(_ count: Int) -> [UInt8] {
    var stream = z_stream()
    guard deflateInit2_(&stream, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        fail("deflateInit2 failed")
    }
    defer { deflateEnd(&stream) }
    let chunk = [UInt8](repeating: 0, count: 1 << 20)
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var left = count
    repeat {
        let n = min(left, chunk.count)
        left -= n
        let flush = left == 0 ? Z_FINISH : Z_NO_FLUSH
        chunk.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = uInt(n)
            repeat {
                buffer.withUnsafeMutableBufferPointer { output in
                    stream.next_out = output.baseAddress
                    stream.avail_out = uInt(output.count)
                    _ = deflate(&stream, flush)
                    out.append(contentsOf: output[0..<(output.count - Int(stream.avail_out))])
                }
            } while stream.avail_out == 0
        }
    } while left > 0
    return out
}

/// A deflate frame of `type` whose payload inflates to `actual` zero bytes while the header
/// declares `declared`.
func bomb(_ type: MessageType, actual: Int, declared: UInt32) -> [UInt8] {
    let payload = deflatedZeros(actual)
    let header = FrameHeader(messageType: type, compression: .deflate, uncompressedLength: declared, payloadLength: UInt32(payload.count))
    var frame = [UInt8](repeating: 0, count: PierWire.headerSize) + payload
    // A real frame's first 16 header bytes, then the lengths set as wanted.
    let template = try! Frame.encode(payload: [UInt8](repeating: 1, count: 200), type: type, options: EncodeOptions(compressionLevel: 6, minimumCompressibleBytes: 1))
    for i in 0..<8 { frame[i] = template[i] }
    setUInt32(&frame, at: 8, header.uncompressedLength)
    setUInt32(&frame, at: 12, header.payloadLength)
    return resealed(frame)
}

// MARK: Shared hostile kinds

enum Kind: String, CaseIterable {
    case corrupted, truncated, extended, lyingLengths = "lying_lengths", oversized, bomb, garbage, wrongType = "wrong_type"
    case replayed, reordered, resealedMutation = "resealed_mutation"
}

/// The mutations that need no knowledge of the message: applied to a real frame.
func mutate(_ kind: Kind, _ frame: [UInt8], _ rng: inout Random, bombs: [[UInt8]], otherType: [UInt8]) -> [UInt8] {
    var out = frame
    switch kind {
    case .corrupted:
        for _ in 0..<Int.random(in: 1...8, using: &rng) {
            let bit = Int.random(in: 0..<(out.count * 8), using: &rng)
            out[bit / 8] ^= UInt8(1 << (bit % 8))
        }
        if out == frame { out[Int.random(in: 0..<out.count, using: &rng)] ^= 0x40 }
    case .truncated:
        out = Array(frame.prefix(Int.random(in: 0..<frame.count, using: &rng)))
    case .extended:
        out += (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    case .lyingLengths:
        let field = Bool.random(using: &rng) ? 8 : 12
        var value = UInt32.random(in: 0...UInt32.max, using: &rng)
        if Bool.random(using: &rng) { value = UInt32(max(0, Int(frame[field]) + Int.random(in: -3...3, using: &rng))) }
        setUInt32(&out, at: field, value)
        if out == frame { setUInt32(&out, at: field, value &+ 1) }
        out = resealed(out)
    case .oversized:
        setUInt32(&out, at: Bool.random(using: &rng) ? 8 : 12, UInt32.random(in: (1 << 27)...UInt32.max, using: &rng))
        out = resealed(out)
    case .bomb:
        out = bombs[Int.random(in: 0..<bombs.count, using: &rng)]
    case .garbage:
        out = (0..<Int.random(in: 0...512, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        if Bool.random(using: &rng) && out.count >= 4 { out.replaceSubrange(0..<4, with: Array("PIER".utf8)) }
    case .wrongType:
        out = otherType
    case .replayed, .reordered, .resealedMutation:
        break
    }
    return out
}

// MARK: Fingerprints

/// A digest of the rows of `sql` in a database file (read through a separate connection).
func fingerprint(_ path: String, _ sql: String) -> String {
    var db: OpaquePointer?
    guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else { fail("cannot open \(path)") }
    defer { sqlite3_close(db) }
    var stmt: OpaquePointer?
    guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else { fail("bad fingerprint query: \(sql)") }
    defer { sqlite3_finalize(stmt) }
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    var rows = 0
    while sqlite3_step(stmt) == SQLITE_ROW {
        rows += 1
        for column in 0..<sqlite3_column_count(stmt) {
            let n = Int(sqlite3_column_bytes(stmt, column))
            if let p = sqlite3_column_blob(stmt, column) {
                let bytes = UnsafeRawBufferPointer(start: p, count: n)
                for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01B3 }
            }
            hash = (hash ^ 0xFF) &* 0x100_0000_01B3
        }
    }
    return "\(rows) rows, digest \(String(hash, radix: 16))"
}

func residentMegabytes() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
          let pages = text.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

// MARK: The run

let options = Options(CommandLine.arguments)
var rng = Random(state: options.seed)
let started = Date()
let dir = NSTemporaryDirectory() + "pier-hostile-\(getpid())"
try? FileManager.default.removeItem(atPath: dir)
try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }

let masterPath = dir + "/master.pier"
let server: SyncServer
do { server = SyncServer(store: try SQLiteMasterStore(path: masterPath)) } catch { fail("cannot open the master store: \(error)") }
let writer = Identity(user: "tech", readScopes: nil, writeScopes: nil)
let mallory = Identity(user: "mallory", readScopes: [], writeScopes: [])

/// Records every request and response of real syncs.
final class Recorder {
    var exchanges: [(request: [UInt8], response: [UInt8])] = []
}
nonisolated(unsafe) let recorder = Recorder()
func recordingTransport(_ identity: Identity) -> CallbackTransport {
    CallbackTransport { request in
        let response = server.handle(frame: request, identity: identity)
        recorder.exchanges.append((request, response))
        return response
    }
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fail(message()) }
}

// Real traffic: three devices write in scopes and sync, compressed and not, several times.
var devices: [Database] = []
do {
    for n in 0..<3 {
        let db = try Database(path: dir + "/device\(n).pier")
        devices.append(db)
    }
    for round in 0..<6 {
        for (n, db) in devices.enumerated() {
            let count = [1, 3, 20, 7, 2, 40][round]
            for k in 0..<count {
                let pad = String(repeating: "abc", count: Int.random(in: 0...200, using: &rng))
                try db.put("jobs", id: "d\(n)-r\(round)-\(k)", body: #"{"round":\#(round),"k":\#(k),"note":"\#(pad)"}"#, scope: ["north", "south"][k % 2])
            }
            if round == 3 { try db.delete("jobs", id: "d\(n)-r0-0") }
            var small = SyncOptions()
            small.maxBatchChanges = 16
            _ = try db.sync(over: recordingTransport(writer), options: small)
        }
    }
} catch { fail("recording real syncs failed: \(error)") }
let requests = recorder.exchanges.map(\.request)
let pushes = recorder.exchanges.filter { exchange in
    if case .syncRequest(let r)? = try? Frame.decode(exchange.request) { return !r.changes.isEmpty }
    return false
}
let responses = recorder.exchanges.map(\.response)
check(pushes.count >= 10, "expected at least 10 recorded push batches, got \(pushes.count)")

let serverBombs: [[UInt8]] = [
    bomb(.syncRequest, actual: 200 << 20, declared: 200 << 20),  // declared beyond the limit
    bomb(.syncRequest, actual: 200 << 20, declared: 1_000),      // inflates far past what it declares
    bomb(.syncRequest, actual: 50 << 20, declared: 4_096),
]
let clientBombs: [[UInt8]] = [
    bomb(.syncResponse, actual: 200 << 20, declared: 200 << 20),
    bomb(.syncResponse, actual: 200 << 20, declared: 1_000),
    bomb(.syncResponse, actual: 50 << 20, declared: 4_096),
]

var counts: [String: [String: Int]] = ["server": [:], "client": [:]]
var memory: [String: [String: Double]] = [:]

// MARK: Server handler

let serverRows = "SELECT version, collection, id, scope, hlc, client_id, deleted, body, field_meta FROM records ORDER BY version"
// Mallory's refused pushes are logged and stored like anyone's: only the rest must not move.
let serverLog = "SELECT * FROM business_log WHERE user != 'mallory' ORDER BY seq"
let serverBatches = """
    SELECT client_id, batch_seq, results FROM batches
    WHERE client_id NOT IN (SELECT client_id FROM clients WHERE user = 'mallory') ORDER BY client_id, batch_seq
    """
let recordsBefore = fingerprint(masterPath, serverRows)
let logBefore = fingerprint(masterPath, serverLog)
let batchesBefore = fingerprint(masterPath, serverBatches)
let serverFrames = options.frames / 2
let serverKinds = Kind.allCases
var warmMemory = 0.0, peakMemory = 0.0

func refusedCode(_ frame: [UInt8]) -> Int32? {
    if case .error(let e)? = try? Frame.decode(frame) { return e.code }
    return nil
}

for i in 0..<serverFrames {
    let kind = serverKinds[i % serverKinds.count]
    counts["server"]![kind.rawValue, default: 0] += 1
    let base = requests[Int.random(in: 0..<requests.count, using: &rng)]
    switch kind {
    case .replayed:
        // An applied batch again: answered from the stored results, nothing applied.
        let (request, response) = pushes[Int.random(in: 0..<pushes.count, using: &rng)]
        let answer = server.handle(frame: request, identity: writer)
        guard case .syncResponse(let now)? = try? Frame.decode(answer), case .syncResponse(let then)? = try? Frame.decode(response) else {
            fail("server: a replayed batch was not answered with a sync response")
        }
        check(now.results == then.results && now.conflicts == then.conflicts, "server: a replayed batch got different results")
    case .reordered:
        // An older batch number with other changes: the stored results answer it.
        let (request, response) = pushes[Int.random(in: 0..<pushes.count, using: &rng)]
        guard case .syncRequest(var forged)? = try? Frame.decode(request), case .syncResponse(let then)? = try? Frame.decode(response) else {
            fail("server: a recorded push does not decode")
        }
        forged.changes = forged.changes.map { change in
            var c = change
            c.body = WireBytes(Array(#"{"forged":true}"#.utf8))
            return c
        }
        let answer = server.handle(frame: try! Frame.encode(.syncRequest(forged)), identity: writer)
        guard case .syncResponse(let now)? = try? Frame.decode(answer) else { fail("server: a reordered batch was not answered from the stored results") }
        check(now.results == then.results, "server: a reordered batch with other changes was applied")
    case .resealedMutation:
        // Changed payload bytes behind a correct CRC, from an identity without rights.
        guard let (header, payload) = try? Frame.payload(of: base), !payload.isEmpty else { fail("server: a recorded request has no payload") }
        var mutated = payload
        for _ in 0..<Int.random(in: 1...4, using: &rng) { mutated[Int.random(in: 0..<mutated.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
        let frame = (try? Frame.encode(payload: mutated, type: header.messageType, options: .uncompressed)) ?? base
        let answer = server.handle(frame: frame, identity: mallory)
        if let code = refusedCode(answer) {
            check(code != PierError.Code.internalError.rawValue, "server: a mutated frame caused an internal error")
        } else if case .syncResponse(let r)? = try? Frame.decode(answer) {
            check(r.results.allSatisfy { $0.outcome == .rejected }, "server: a mutated frame from an identity without rights was applied")
            counts["server"]!["resealed_mutation_decoded", default: 0] += 1
        } else {
            fail("server: the answer to a mutated frame is neither an error nor a response")
        }
    default:
        let frame = mutate(kind, base, &rng, bombs: serverBombs, otherType: responses[Int.random(in: 0..<responses.count, using: &rng)])
        let answer = server.handle(frame: frame, identity: writer)
        guard let code = refusedCode(answer) else { fail("server: a \(kind.rawValue) frame was not refused (seed \(options.seed), frame \(i))") }
        check((-20 ... -2).contains(code), "server: a \(kind.rawValue) frame got status \(code), not a Pier error code")
        check(code != PierError.Code.internalError.rawValue, "server: a \(kind.rawValue) frame caused an internal error")
    }
    if i == 1_000 { warmMemory = residentMegabytes() }
    if i % 1_000 == 0 { peakMemory = max(peakMemory, residentMegabytes()) }
}
memory["server"] = ["after_warmup_mb": warmMemory, "peak_mb": peakMemory, "end_mb": residentMegabytes()]
check(fingerprint(masterPath, serverRows) == recordsBefore, "server: records changed under hostile frames")
check(fingerprint(masterPath, serverBatches) == batchesBefore, "server: stored batches changed under hostile frames")
check(fingerprint(masterPath, serverLog) == logBefore, "server: the business log changed under hostile frames")

// MARK: Client engine

// The device has pending changes and a pull cursor past every recorded response, so a
// stale response can be told from a fresh one.
let client = devices[0]
let clientPath = dir + "/device0.pier"
do {
    try devices[1].put("jobs", id: "late", body: #"{"late":true}"#, scope: "north")
    _ = try devices[1].sync(with: server, as: writer)
    _ = try client.sync(with: server, as: writer)
    for k in 0..<12 { try client.put("jobs", id: "pending-\(k)", body: #"{"k":\#(k)}"#, scope: "north") }
} catch { fail("preparing the client failed: \(error)") }
let clientRows = "SELECT collection, id, body, is_active, is_modified, sync_state, base_version, server_version, local_seq FROM pier_records ORDER BY collection, id"
let clientCursor = "SELECT value FROM pier_meta WHERE key = 'pull_cursor'"
let clientBefore = fingerprint(clientPath, clientRows)
let cursorBefore = fingerprint(clientPath, clientCursor)

/// The response the real server gives the client's pending batch, with its results reordered.
var honest: [UInt8] = []
do {
    let probe = dir + "/probe-master.pier"
    try FileManager.default.copyItem(atPath: masterPath, toPath: probe)
    let copy = SyncServer(store: try SQLiteMasterStore(path: probe))
    let engine = SyncEngine(store: try Store(path: clientPath))
    guard let request = try engine.nextRequest() else { fail("the client has nothing to send") }
    honest = copy.handle(frame: request, identity: writer)
} catch { fail("probing the honest answer failed: \(error)") }
guard case .syncResponse(let honestResponse)? = try? Frame.decode(honest), honestResponse.results.count > 1 else {
    fail("the honest answer is not a response with several results")
}

let clientFrames = options.frames - serverFrames
let clientKinds = Kind.allCases.filter { $0 != .resealedMutation }
var clientErrors: [String: Int] = [:]
warmMemory = 0; peakMemory = 0
for i in 0..<clientFrames {
    let kind = clientKinds[i % clientKinds.count]
    counts["client"]![kind.rawValue, default: 0] += 1
    let frame: [UInt8]
    switch kind {
    case .replayed:
        frame = responses[Int.random(in: 0..<responses.count, using: &rng)]
    case .reordered:
        var shuffled = honestResponse
        repeat { shuffled.results.shuffle(using: &rng) } while shuffled.results.map(\.index) == honestResponse.results.map(\.index)
        frame = try! Frame.encode(.syncResponse(shuffled))
    default:
        frame = mutate(kind, honest, &rng, bombs: clientBombs, otherType: requests[Int.random(in: 0..<requests.count, using: &rng)])
    }
    do {
        _ = try client.sync(over: CallbackTransport { _ in frame })
        fail("client: a \(kind.rawValue) response was accepted (seed \(options.seed), frame \(i))")
    } catch {
        check(error.code != .internalError, "client: a \(kind.rawValue) response caused an internal error: \(error)")
        clientErrors[error.code.description, default: 0] += 1
    }
    if i == 1_000 { warmMemory = residentMegabytes() }
    if i % 1_000 == 0 { peakMemory = max(peakMemory, residentMegabytes()) }
}
memory["client"] = ["after_warmup_mb": warmMemory, "peak_mb": peakMemory, "end_mb": residentMegabytes()]
check(fingerprint(clientPath, clientRows) == clientBefore, "client: records or their sync state changed under hostile responses")
check(fingerprint(clientPath, clientCursor) == cursorBefore, "client: the pull cursor moved under hostile responses")
for (side, figures) in memory {
    let growth = (figures["end_mb"] ?? 0) - (figures["after_warmup_mb"] ?? 0)
    check(growth < 64, "\(side): resident memory grew \(Int(growth)) MB after warm-up")
}

// MARK: Recovery

do {
    let report = try client.sync(with: server, as: writer)
    check(report.pushed == 12 && report.applied == 12, "client: the real sync after the campaign pushed \(report.pushed), applied \(report.applied)")
    for k in 0..<12 { check(try client.syncState("jobs", id: "pending-\(k)") == .synced, "client: pending-\(k) is not synced") }
} catch { fail("client: the real sync after the campaign failed: \(error)") }
let duplicates = fingerprint(masterPath, """
    SELECT client_id, collection, record_id, client_hlc FROM business_log WHERE outcome IN ('applied', 'merged')
    GROUP BY 1, 2, 3, 4 HAVING count(*) > 1
    """)
check(duplicates.hasPrefix("0 rows"), "server: changes applied twice: \(duplicates)")

let seconds = Date().timeIntervalSince(started)
#if DEBUG
let (buildCommand, buildFolder) = ("swift build --product pier-hostile", "debug")
#else
let (buildCommand, buildFolder) = ("swift build -c release --product pier-hostile", "release")
#endif
let result: [String: Any] = [
    "part": "hostile",
    "seed": options.seed,
    "frames": options.frames,
    "server_frames": serverFrames,
    "client_frames": clientFrames,
    "kinds": counts,
    "client_error_codes": clientErrors,
    "memory_mb": memory,
    "databases_unchanged": true,
    "seconds": (seconds * 10).rounded() / 10,
    "command": "\(buildCommand) && .build/\(buildFolder)/pier-hostile --frames \(options.frames) --seed \(options.seed)",
]
let text = String(decoding: try! JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
print(text)
if let path = options.json { try! text.write(toFile: path, atomically: true, encoding: .utf8) }
