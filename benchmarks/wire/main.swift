// pier-bench-wire: PierWire's encode/decode speed and size against baselines measured in
// the same run on the same bytes (STYLE.md: a benchmark reports ratios, never pass/fail).
//
//   swift build -c release --product pier-bench-wire && .build/release/pier-bench-wire [--quick]
//   pier-bench-wire --dump PREFIX   writes the pages for benchmarks/wire/codecs instead of measuring
//
// Rows:
//   encode     Frame.encode of a whole message (build payload, deflate, CRC) vs zlib
//              compress2() of the same payload bytes at the same level
//   decode     Frame.decode (CRC, inflate, decode every value into Swift types) vs zlib
//              uncompress() of compress2's output (same level), and vs raw inflate
//   framing    Frame.encode/decode of the same payload without compression vs memcpy
//   bytes      frame bytes per record vs gzip -6 of the same records as a JSON array
// Throughput is uncompressed payload bytes per second throughout.

import PierWire
import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - deterministic data

struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
    mutating func chance(_ p: Double) -> Bool { Double(next() % 1_000_000) < p * 1_000_000 }
}

let firstNames = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Karla", "Lukas", "Mia", "Noah", "Olga", "Paul"]
let lastNames = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Koch", "Richter"]
let streets = ["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee", "Bergstraße", "Schulweg", "Kirchplatz"]
let cities = ["Berlin", "Hamburg", "München", "Köln", "Frankfurt", "Stuttgart", "Leipzig", "Dresden", "Hannover", "Bremen"]
let words = ["pump", "valve", "replaced", "checked", "leak", "pressure", "filter", "customer", "asked", "callback", "invoice", "warranty", "motor", "noise", "inspection", "ok"]

func uuid7(_ rng: inout SplitMix64, ms: Int64) -> String {
    var bytes = [UInt8](repeating: 0, count: 16)
    for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: ms >> (40 - 8 * i)) }
    let r1 = rng.next(), r2 = rng.next()
    bytes[6] = 0x70 | UInt8(r1 & 0x0F)
    bytes[7] = UInt8(truncatingIfNeeded: r1 >> 8)
    for i in 8..<16 { bytes[i] = UInt8(truncatingIfNeeded: r2 >> (8 * (i - 8))) }
    bytes[8] = (bytes[8] & 0x3F) | 0x80
    let hex = Array("0123456789abcdef")
    var s = ""
    for (i, b) in bytes.enumerated() {
        if i == 4 || i == 6 || i == 8 || i == 10 { s.append("-") }
        s.append(hex[Int(b >> 4)])
        s.append(hex[Int(b & 15)])
    }
    return s
}

func jsonString(_ s: String) -> String { "\"" + s + "\"" } // generated text needs no escaping

func sentence(_ rng: inout SplitMix64, _ range: ClosedRange<Int>) -> String {
    (0..<rng.int(range)).map { _ in rng.pick(words) }.joined(separator: " ")
}

let now: Int64 = 1_750_000_000_000

/// Field-service data: customers, jobs and parts with bodies of roughly 100-400 bytes.
func fieldServiceRecords(_ count: Int, seed: UInt64) -> [SyncResponse.PulledRecord] {
    var rng = SplitMix64(state: seed)
    return (0..<count).map { i in
        let collection = rng.pick(["customers", "jobs", "jobs", "parts"])
        var body: String
        switch collection {
        case "customers":
            body = "{\"name\":\(jsonString(rng.pick(firstNames) + " " + rng.pick(lastNames))),"
                + "\"street\":\(jsonString(rng.pick(streets) + " \(rng.int(1...200))")),\"city\":\(jsonString(rng.pick(cities))),"
                + "\"zip\":\"\(10000 + rng.int(0...89999))\",\"phone\":\"+49 \(rng.int(30...999)) \(rng.int(100_000...9_999_999))\","
                + "\"email\":\"\(rng.pick(firstNames).lowercased()).\(rng.int(1...999))@example.com\","
                + "\"notes\":\(jsonString(sentence(&rng, 0...12))),\"active\":\(rng.chance(0.9))}"
        case "jobs":
            let parts = (0..<rng.int(0...3)).map { _ in "{\"sku\":\"P-\(10000 + rng.int(0...5000))\",\"qty\":\(rng.int(1...5))}" }
            body = "{\"customerId\":\"\(uuid7(&rng, ms: now - Int64(rng.int(0...1_000_000_000))))\","
                + "\"status\":\(jsonString(rng.pick(["scheduled", "in_progress", "completed", "cancelled"]))),"
                + "\"technician\":\(jsonString(rng.pick(firstNames))),\"scheduledAt\":\(now + Int64(rng.int(0...1_000_000_000))),"
                + "\"durationMinutes\":\(rng.int(15...480)),\"report\":\(jsonString(sentence(&rng, 3...25))),"
                + "\"parts\":[\(parts.joined(separator: ","))]}"
        default:
            body = "{\"sku\":\"P-\(10000 + rng.int(0...5000))\",\"name\":\(jsonString(sentence(&rng, 2...2))),"
                + "\"stock\":\(rng.int(0...500)),\"price\":\(rng.int(100...90000) / 100).\(rng.int(10...99)),"
                + "\"bin\":\"\(rng.pick(["A", "B", "C", "D", "E", "F"]))-\(rng.int(1...40))\"}"
        }
        let deleted = rng.chance(0.03)
        let ms = now - Int64(rng.int(0...10_000_000))
        return SyncResponse.PulledRecord(
            collection: collection, id: uuid7(&rng, ms: now - Int64(rng.int(0...100_000_000))),
            version: 100_000 + Int64(i), scope: "team-\(rng.int(1...3))", hlc: ms << 16 | Int64(rng.int(0...3)),
            deleted: deleted, body: deleted ? nil : WireBytes(body)
        )
    }
}

/// Production-terminal data: machine counters with small bodies (~90 bytes).
func counterRecords(_ count: Int, seed: UInt64) -> [SyncResponse.PulledRecord] {
    var rng = SplitMix64(state: seed)
    return (0..<count).map { i in
        let body = "{\"machine\":\"M-\(10 + rng.int(0...30))\",\"count\":\(rng.int(0...100_000)),"
            + "\"state\":\(jsonString(rng.pick(["running", "idle", "fault", "setup"]))),\"shift\":\(jsonString(rng.pick(["A", "B", "C"]))),"
            + "\"operator\":\(jsonString(rng.pick(firstNames)))}"
        let ms = now - Int64(rng.int(0...1_000_000))
        return SyncResponse.PulledRecord(
            collection: "counts", id: uuid7(&rng, ms: ms), version: 500_000 + Int64(i), scope: "plant-1",
            hlc: ms << 16, deleted: false, body: WireBytes(body)
        )
    }
}

/// The same records as a JSON array (bodies embedded as JSON values).
func jsonArray(_ records: [SyncResponse.PulledRecord]) -> [UInt8] {
    var out: [UInt8] = Array("[".utf8)
    for (i, r) in records.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        out += Array("{\"collection\":\"\(r.collection)\",\"id\":\"\(r.id)\",\"version\":\(r.version),\"scope\":\"\(r.scope)\",\"hlc\":\(r.hlc),\"deleted\":\(r.deleted),\"body\":".utf8)
        out += r.body.map { Array($0) } ?? Array("null".utf8)
        out.append(UInt8(ascii: "}"))
    }
    out.append(UInt8(ascii: "]"))
    return out
}

// MARK: - zlib baselines

func zlibCompress(_ input: [UInt8], level: Int32) -> [UInt8] {
    var size = compressBound(uLong(input.count))
    var out = [UInt8](repeating: 0, count: Int(size))
    let status = compress2(&out, &size, input, uLong(input.count), level)
    precondition(status == Z_OK)
    out.removeSubrange(Int(size)...)
    return out
}

func zlibUncompress(_ input: [UInt8], into out: inout [UInt8]) {
    var size = uLong(out.count)
    let status = uncompress(&out, &size, input, uLong(input.count))
    precondition(status == Z_OK && Int(size) == out.count)
}

/// Deflate with a given window-bits setting (-15 raw, 31 gzip).
func deflateBytes(_ input: [UInt8], level: Int32, windowBits: Int32) -> [UInt8] {
    var stream = z_stream()
    precondition(deflateInit2_(&stream, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    defer { deflateEnd(&stream) }
    var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))))
    var inputCopy = input
    let produced: Int = inputCopy.withUnsafeMutableBufferPointer { inBuf in
        out.withUnsafeMutableBufferPointer { outBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = UInt32(inBuf.count)
            stream.next_out = outBuf.baseAddress
            stream.avail_out = UInt32(outBuf.count)
            precondition(deflate(&stream, Z_FINISH) == Z_STREAM_END)
            return Int(stream.total_out)
        }
    }
    out.removeSubrange(produced...)
    return out
}

func rawInflate(_ input: [UInt8], into out: inout [UInt8]) {
    var stream = z_stream()
    precondition(inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    defer { inflateEnd(&stream) }
    var inputCopy = input
    inputCopy.withUnsafeMutableBufferPointer { inBuf in
        out.withUnsafeMutableBufferPointer { outBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = UInt32(inBuf.count)
            stream.next_out = outBuf.baseAddress
            stream.avail_out = UInt32(outBuf.count)
            precondition(inflate(&stream, Z_FINISH) == Z_STREAM_END)
        }
    }
}

// MARK: - timing

let quick = CommandLine.arguments.contains("--quick")
let clock = ContinuousClock()
var sink = 0

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// Iterations of `body` that take about `target` seconds.
@MainActor func calibrate(_ target: Double, _ body: () -> Void) -> Int {
    var iterations = 1
    while true {
        let start = clock.now
        for _ in 0..<iterations { body() }
        let elapsed = seconds(clock.now - start)
        if elapsed >= target { return iterations }
        iterations = elapsed < target / 8 ? iterations * 8 : iterations * 2
    }
}

@MainActor func timePerCall(_ iterations: Int, _ body: () -> Void) -> Double {
    let start = clock.now
    for _ in 0..<iterations { body() }
    return seconds(clock.now - start) / Double(iterations)
}

/// Times `ours` and `baseline` in alternating short rounds, so that both see the same
/// machine load, and returns the best time per call of each and the median of the
/// per-round ratios baseline/ours (above 1: ours is faster).
@MainActor func compare(_ ours: () -> Void, _ baseline: () -> Void) -> (ours: Double, baseline: Double, ratio: Double) {
    let target = quick ? 0.01 : 0.03
    let rounds = quick ? 5 : 21
    let oursIterations = calibrate(target, ours), baselineIterations = calibrate(target, baseline)
    var bestOurs = Double.infinity, bestBaseline = Double.infinity
    var ratios: [Double] = []
    for round in 0..<rounds {
        var a = 0.0, b = 0.0
        if round % 2 == 0 { // alternate which one goes first
            a = timePerCall(oursIterations, ours)
            b = timePerCall(baselineIterations, baseline)
        } else {
            b = timePerCall(baselineIterations, baseline)
            a = timePerCall(oursIterations, ours)
        }
        bestOurs = min(bestOurs, a)
        bestBaseline = min(bestBaseline, b)
        ratios.append(b / a)
    }
    ratios.sort()
    return (bestOurs, bestBaseline, ratios[ratios.count / 2])
}

func mbps(_ bytes: Int, _ secondsPerCall: Double) -> Double { Double(bytes) / secondsPerCall / 1e6 }

func fmt(_ v: Double, _ digits: Int = 2) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = Double(Int64(v * p + (v < 0 ? -0.5 : 0.5))) / p // no libm: the bench links no Glibc
    var s = digits == 0 ? String(Int64(r)) : String(r)
    if digits > 0, let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    }
    return s
}

// MARK: - runs

struct Workload {
    var name: String
    var records: [SyncResponse.PulledRecord]
}

let perPage = 1000
let workloads = [
    Workload(name: "field-service (1000 records, bodies ~100-400 B)", records: fieldServiceRecords(perPage, seed: 7)),
    Workload(name: "terminal counters (1000 records, bodies ~90 B)", records: counterRecords(perPage, seed: 11)),
]

@MainActor func runBenchmarks() {
    print("pier-bench-wire: PierWire on \(PierWire.deflateLibrary), baselines on zlib \(String(cString: zlibVersion())), one pull page of \(perPage) records per frame, default level \(EncodeOptions.defaultCompressionLevel)\(quick ? " (quick)" : "")")
    print("ratios: median over alternating rounds of baseline time / PierWire time (above 1 = PierWire faster); MB/s: best round, uncompressed payload bytes")
    print("")

    for workload in workloads {
        let response = SyncResponse(serverTime: now, records: workload.records, cursor: workload.records.last!.version, hasMore: true)
        let message = Message.syncResponse(response)
        let payload = try! message.encodedPayload()
        let json = jsonArray(workload.records)
        let gzipBytes = deflateBytes(json, level: 6, windowBits: 31).count
        print("## \(workload.name)")
        let bodiesOnly = deflateBytes(workload.records.flatMap { $0.body.map { Array($0) } ?? [] }, level: 6, windowBits: -15).count
        print("payload \(payload.count) B uncompressed; JSON array \(json.count) B, gzip -6 \(gzipBytes) B (\(fmt(Double(gzipBytes) / Double(perPage), 1)) B/record); the bodies alone deflate -6 to \(bodiesOnly) B (\(fmt(Double(bodiesOnly) / Double(gzipBytes))) of the gzip JSON)")
        print("")
        print("| level | frame B/record | vs gzip-6 JSON | format 1 B/record | format 1 vs gzip-6 | encode MB/s | compress2 MB/s | encode ratio | decode MB/s | uncompress MB/s | decode ratio | raw inflate MB/s | vs raw inflate |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        let levels: [Int] = quick ? [1, 6] : [1, 2, 3, 4, 5, 6, 7, 8, 9]
        for level in levels {
            let options = EncodeOptions(compressionLevel: level)
            let frame = try! Frame.encode(message, options: options)
            precondition(try! Frame.decode(frame) == message)
            let frame1 = try! Frame.encode(message, options: options.writing(version: 1))
            let zlibData = zlibCompress(payload, level: Int32(level))
            let rawData = deflateBytes(payload, level: Int32(level), windowBits: -15)
            var scratch = [UInt8](repeating: 0, count: payload.count)
            let decodeFrame = { if case .syncResponse(let r) = try! Frame.decode(frame) { sink &+= r.records.count } }
            let encode = compare({ sink &+= (try! Frame.encode(message, options: options)).count }, { sink &+= zlibCompress(payload, level: Int32(level)).count })
            let decode = compare(decodeFrame, { zlibUncompress(zlibData, into: &scratch); sink &+= Int(scratch[0]) })
            let raw = compare(decodeFrame, { rawInflate(rawData, into: &scratch); sink &+= Int(scratch[0]) })
            let row = [
                "\(level)", fmt(Double(frame.count) / Double(perPage), 1), fmt(Double(frame.count) / Double(gzipBytes)),
                fmt(Double(frame1.count) / Double(perPage), 1), fmt(Double(frame1.count) / Double(gzipBytes)),
                fmt(mbps(payload.count, encode.ours), 1), fmt(mbps(payload.count, encode.baseline), 1), fmt(encode.ratio),
                fmt(mbps(payload.count, decode.ours), 1), fmt(mbps(payload.count, decode.baseline), 1), fmt(decode.ratio),
                fmt(mbps(payload.count, raw.baseline), 1), fmt(raw.ratio),
            ]
            print("| " + row.joined(separator: " | ") + " |")
        }
        print("")

        // Framing alone, no compression, against memcpy of the same payload bytes.
        let plainFrame = try! Frame.encode(payload: payload, type: .syncResponse, options: .uncompressed)
        var copy = [UInt8](repeating: 0, count: payload.count)
        let copyPayload = {
            copy.withUnsafeMutableBytes { dst in payload.withUnsafeBytes { src in dst.copyMemory(from: src) } }
            sink &+= Int(copy[0])
        }
        let rows: [(String, () -> Void)] = [
            ("frame a payload (header, CRC-32, copy)", { sink &+= (try! Frame.encode(payload: payload, type: .syncResponse, options: .uncompressed)).count }),
            ("verify a frame (header, CRC-32), copy payload out", { sink &+= (try! Frame.payload(of: plainFrame)).payload.count }),
            ("encode the message bytes (no frame)", { sink &+= (try! message.encodedPayload()).count }),
            ("decode an uncompressed frame to values", { if case .syncResponse(let r) = try! Frame.decode(plainFrame) { sink &+= r.records.count } }),
        ]
        print("| uncompressed (level 0) | MB/s | memcpy MB/s | ratio to memcpy |")
        print("|---|---|---|---|")
        for (name, body) in rows {
            let result = compare(body, copyPayload)
            print("| \(name) | \(fmt(mbps(payload.count, result.ours), 0)) | \(fmt(mbps(payload.count, result.baseline), 0)) | \(fmt(result.ratio, 3)) |")
        }
        print("")
    }

    // Push direction: a batch of 500 changes, default options.
    var rng = SplitMix64(state: 99)
    let changes = fieldServiceRecords(500, seed: 13).map { r in
        SyncRequest.Change(
            collection: r.collection, id: r.id, op: r.deleted ? .delete : .upsert, baseVersion: r.version - Int64(rng.int(0...50)),
            hlc: r.hlc, scope: r.scope, body: r.body, changedFields: []
        )
    }
    let request = Message.syncRequest(SyncRequest(clientID: "0197a7c4-1b2c-7d3e-8f40-5a6b7c8d9e0f", batchSeq: 42, changes: changes))
    let payload = try! request.encodedPayload()
    let frame = try! Frame.encode(request)
    let level = Int32(EncodeOptions.defaultCompressionLevel)
    let zlibData = zlibCompress(payload, level: level)
    var scratch = [UInt8](repeating: 0, count: payload.count)
    let encode = compare({ sink &+= (try! Frame.encode(request)).count }, { sink &+= zlibCompress(payload, level: level).count })
    let decode = compare({ if case .syncRequest(let r) = try! Frame.decode(frame) { sink &+= r.changes.count } }, { zlibUncompress(zlibData, into: &scratch); sink &+= Int(scratch[0]) })
    print("## push batch: 500 field-service changes, default level \(level)")
    print("payload \(payload.count) B, frame \(frame.count) B (\(fmt(Double(frame.count) / 500, 1)) B/change)")
    print("encode \(fmt(mbps(payload.count, encode.ours), 1)) MB/s vs compress2 \(fmt(mbps(payload.count, encode.baseline), 1)) MB/s: ratio \(fmt(encode.ratio))")
    print("decode \(fmt(mbps(payload.count, decode.ours), 1)) MB/s vs uncompress \(fmt(mbps(payload.count, decode.baseline), 1)) MB/s: ratio \(fmt(decode.ratio))")
    if sink == 42 { print("") }
}

if let i = CommandLine.arguments.firstIndex(of: "--dump"), i + 1 < CommandLine.arguments.count {
    // For trying other compressors and layouts on the same records (benchmarks/wire/codecs):
    // writes each workload's page as PREFIX-<workload>.payload (the message bytes PierWire
    // compresses), .json (the gzip baseline's JSON array) and .tsv (one record per line:
    // collection, id, hlc, deleted, body; the generated bodies hold no tab or newline).
    let prefix = CommandLine.arguments[i + 1]
    for (name, records) in [("field", fieldServiceRecords(perPage, seed: 7)), ("counters", counterRecords(perPage, seed: 11))] {
        let message = Message.syncResponse(SyncResponse(serverTime: now, records: records, cursor: records.last!.version, hasMore: true))
        var tsv: [UInt8] = []
        for r in records {
            tsv += Array("\(r.collection)\t\(r.id)\t\(r.hlc)\t\(r.deleted ? 1 : 0)\t".utf8)
            if let body = r.body {
                precondition(!body.contains(9) && !body.contains(10))
                tsv += Array(body)
            }
            tsv.append(10)
        }
        for (ext, bytes) in [("payload", try! message.encodedPayload()), ("json", jsonArray(records)), ("tsv", tsv)] {
            guard let f = fopen("\(prefix)-\(name).\(ext)", "wb") else { fatalError("cannot write \(prefix)-\(name).\(ext)") }
            _ = fwrite(bytes, 1, bytes.count, f)
            fclose(f)
        }
    }
} else if let i = CommandLine.arguments.firstIndex(of: "--profile"), i + 1 < CommandLine.arguments.count {
    // A hot loop for an instruction-counting profiler, which is immune to machine load:
    //   valgrind --tool=callgrind pier-bench-wire --profile decode [--counters] [--level N]
    // Modes: setup (nothing: subtract it), decode, decode-plain, uncompress, encode, compress2, payload.
    let counters = CommandLine.arguments.contains("--counters")
    let records = counters ? counterRecords(perPage, seed: 11) : fieldServiceRecords(perPage, seed: 7)
    let message = Message.syncResponse(SyncResponse(serverTime: now, records: records, cursor: 0))
    let level = CommandLine.arguments.firstIndex(of: "--level").map { Int(CommandLine.arguments[$0 + 1])! } ?? EncodeOptions.defaultCompressionLevel
    let plain = try! Frame.encode(message, options: .uncompressed)
    let compressed = try! Frame.encode(message, options: EncodeOptions(compressionLevel: level))
    let payload = try! message.encodedPayload()
    let zlibData = zlibCompress(payload, level: Int32(level))
    var scratch = [UInt8](repeating: 0, count: payload.count)
    let mode = CommandLine.arguments[i + 1]
    let iterations = CommandLine.arguments.firstIndex(of: "--iterations").map { Int(CommandLine.arguments[$0 + 1])! } ?? 100
    for _ in 0..<iterations {
        switch mode {
        case "setup": break
        case "decode-plain": if case .syncResponse(let r) = try! Frame.decode(plain) { sink &+= r.records.count }
        case "decode": if case .syncResponse(let r) = try! Frame.decode(compressed) { sink &+= r.records.count }
        case "uncompress": zlibUncompress(zlibData, into: &scratch); sink &+= Int(scratch[0])
        case "encode": sink &+= (try! Frame.encode(message, options: EncodeOptions(compressionLevel: level))).count
        case "compress2": sink &+= zlibCompress(payload, level: Int32(level)).count
        default: sink &+= (try! message.encodedPayload()).count
        }
    }
    print(sink)
} else {
    runBenchmarks()
}
