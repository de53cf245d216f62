import Testing
import PierWire

/// A deterministic generator for the generated cases.
struct TestRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
}

/// Little builders for hand-made payloads.
func uv(_ value: UInt64) -> [UInt8] {
    var v = value
    var out: [UInt8] = []
    while v >= 0x80 {
        out.append(UInt8(truncatingIfNeeded: v) | 0x80)
        v >>= 7
    }
    out.append(UInt8(v))
    return out
}

func sv(_ value: Int64) -> [UInt8] { uv(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

func str(_ s: String) -> [UInt8] { uv(UInt64(s.utf8.count)) + Array(s.utf8) }

/// A length-prefixed column.
func column(_ bytes: [UInt8]) -> [UInt8] { uv(UInt64(bytes.count)) + bytes }

/// A frame around `payload` with a valid checksum.
/// A version-1 frame around hand-made message bytes (layout 1).
func frame(_ payload: [UInt8], _ type: MessageType) throws -> [UInt8] {
    try Frame.encode(payload: payload, type: type, options: EncodeOptions(compressionLevel: 0, formatVersion: 1))
}

/// Recomputes the checksum after a header edit.
func fixChecksum(_ frame: inout [UInt8]) {
    let crc = Frame.checksum(of: frame)
    for i in 0..<4 { frame[16 + i] = UInt8(truncatingIfNeeded: crc >> UInt32(8 * i)) }
}

func setLE32(_ frame: inout [UInt8], at offset: Int, _ value: UInt32) {
    for i in 0..<4 { frame[offset + i] = UInt8(truncatingIfNeeded: value >> UInt32(8 * i)) }
}

/// Decodes and returns the error, failing the test if decoding succeeded.
func decodeError(_ bytes: [UInt8], limits: WireLimits = .default, sourceLocation: SourceLocation = #_sourceLocation) -> WireError? {
    do {
        let message = try Frame.decode(bytes, limits: limits)
        Issue.record("expected a WireError, decoded \(message)", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.code == -15, sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
        return error
    }
}

/// A records payload of one sync_response built from raw columns.
func responsePayload(count: UInt64, columns: [[UInt8]], columnCount: UInt64? = nil) -> [UInt8] {
    var p: [UInt8] = [0] + sv(1) + sv(0) + uv(0) + uv(0) // flags, server_time, cursor, resync list, results
    p += uv(count)
    if count > 0 {
        p += uv(columnCount ?? UInt64(columns.count))
        for c in columns { p += column(c) }
    }
    p += uv(0) // conflicts
    return p
}

/// The eight columns of one valid record: flags(body), "c", id "x", scope "", +1, +1, body "{}".
let oneRecord: [[UInt8]] = [[2], [2, 0x63], [2, 0x78], [0], sv(1), sv(1), [2], [0x7B, 0x7D]]

/// A version-2 frame (minimum reader version `minimumReader`) around hand-made message bytes.
func frame2(_ payload: [UInt8], minimumReader: UInt8 = 2) throws -> [UInt8] {
    try Frame.encode(payload: payload, type: .syncResponse, options: EncodeOptions(compressionLevel: 0, formatVersion: 2), minimumReaderVersion: minimumReader)
}

/// A sync_response payload whose message flags are `flags` (bit 2: records in layout 2).
func responsePayload2(flags: UInt8 = 4, count: UInt64, columns: [[UInt8]]) -> [UInt8] {
    var p = responsePayload(count: count, columns: columns)
    p[0] = flags
    return p
}

/// Two records in layout 2: a UUID id (planes) in "c" with body "{}", a text id "x" in "d"
/// with body "[]"; HLCs 1 and 2 as planes; bodies grouped ("c" first).
let uuidBytes: [UInt8] = Array(0..<16)
let twoRecords2: [[UInt8]] = [
    [2, 2],                                             // flags: body, body
    [2, 0x63, 2, 0x64],                                  // collections "c", "d"
    [0, 2, 0x78] + uuidBytes,                            // id heads (UUID, text "x") + planes of one UUID
    [0, 1],                                              // scope "" then a reference to it
    sv(1) + sv(1),                                       // versions 1, 2
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2],    // HLC planes: 1, 2
    [2, 2],                                              // body lengths
    Array("{}[]".utf8),                                  // bodies, grouped by collection
]

@Suite struct HostileInputTests {
    static let goldenFrames: [[UInt8]] = Fixtures.goldens.compactMap { Fixtures.read($0.file) } + [Fixtures.futureFrame()]

    @Test func goldensAreThere() {
        #expect(Self.goldenFrames.count == Fixtures.goldens.count + 1)
    }

    @Test func truncationAtEveryByteOffsetOfEveryGoldenFrame() {
        var cases = 0
        for bytes in Self.goldenFrames {
            for length in 0..<bytes.count {
                let error = decodeError(Array(bytes[0..<length]))
                #expect(error?.fault == .truncated, "prefix of \(length) bytes: \(String(describing: error))")
                cases += 1
            }
        }
        #expect(cases > 2000)
    }

    /// Every single-bit flip of every golden frame (more than 10,000 cases) is detected:
    /// the CRC-32 covers header and payload, so none can slip through.
    @Test func everySingleBitFlipOfEveryGoldenFrameIsAnError() {
        var cases = 0
        for original in Self.goldenFrames {
            var bytes = original
            for index in 0..<bytes.count {
                for bit in 0..<8 {
                    bytes[index] ^= 1 << UInt8(bit)
                    _ = decodeError(bytes)
                    bytes[index] ^= 1 << UInt8(bit)
                    cases += 1
                }
            }
        }
        #expect(cases >= 10_000)
    }

    /// Mutations behind a valid checksum reach the message decoder itself. Each either
    /// fails with a WireError or decodes to a value that re-encodes to exactly the
    /// mutated bytes (the encoding is canonical): nothing in between, never a trap.
    @Test func mutatedPayloadsBehindAValidChecksumFailCleanlyOrAreCanonical() throws {
        var random = TestRandom(state: 20_260_301)
        let payloads: [(MessageType, UInt8, [UInt8])] = try Self.goldenFrames.dropLast().map { bytes in
            let (header, payload) = try Frame.payload(of: bytes)
            return (header.messageType, header.version, payload)
        }
        var failures = 0
        var decoded = 0
        for _ in 0..<10_000 {
            let (type, version, original) = payloads[random.below(payloads.count)]
            var payload = original
            switch random.below(6) {
            case 0, 1: // flip 1-3 bits
                for _ in 0...random.below(3) where !payload.isEmpty {
                    payload[random.below(payload.count)] ^= 1 << UInt8(random.below(8))
                }
            case 2: // overwrite a byte with an interesting value
                if !payload.isEmpty { payload[random.below(payload.count)] = [0x00, 0x01, 0x7F, 0x80, 0xFF][random.below(5)] }
            case 3: // cut the payload short
                payload.removeLast(random.below(payload.count) + 1)
            case 4: // insert a byte
                payload.insert(UInt8(truncatingIfNeeded: random.next()), at: random.below(payload.count + 1))
            default: // duplicate a slice (lengths now lie about what follows)
                let start = random.below(payload.count)
                let end = min(payload.count, start + 1 + random.below(8))
                payload.insert(contentsOf: payload[start..<end], at: random.below(payload.count + 1))
            }
            do {
                let message = try Message.decode(payload: payload, type: type, version: version)
                #expect(try message.encodedPayload(version: version) == payload, "decoded a non-canonical payload")
                decoded += 1
            } catch {
                #expect(error.code == -15)
                failures += 1
            }
        }
        #expect(failures + decoded == 10_000)
        #expect(failures > 5_000)
    }

    @Test func mutatedDeflateStreamsBehindAValidChecksumFailCleanly() throws {
        var random = TestRandom(state: 77)
        let compressed = Self.goldenFrames.filter { (try? FrameHeader.parse($0).compression) == .deflate }
        #expect(compressed.count >= 3)
        for _ in 0..<2_000 {
            var bytes = compressed[random.below(compressed.count)]
            let index = PierWire.headerSize + random.below(bytes.count - PierWire.headerSize)
            bytes[index] ^= 1 << UInt8(random.below(8))
            fixChecksum(&bytes)
            do {
                _ = try Frame.decode(bytes)
            } catch {
                #expect(error.code == -15)
            }
        }
    }

    @Test func inflatedLengthFields() throws {
        for bytes in Self.goldenFrames.dropLast() {
            let header = try FrameHeader.parse(bytes)
            // Payload length larger than what follows: truncated (with or without a fixed CRC).
            var longer = bytes
            setLE32(&longer, at: 12, header.payloadLength + 1)
            if header.compression == .none { setLE32(&longer, at: 8, header.uncompressedLength + 1) }
            fixChecksum(&longer)
            #expect(decodeError(longer)?.fault == .truncated)
            // A huge payload length: refused by the frame limit before anything is read.
            var huge = bytes
            setLE32(&huge, at: 12, .max)
            fixChecksum(&huge)
            #expect(decodeError(huge)?.fault == .limitExceeded)
            // Uncompressed length that disagrees with the data.
            var lie = bytes
            setLE32(&lie, at: 8, header.uncompressedLength + 100)
            fixChecksum(&lie)
            let error = decodeError(lie)
            #expect(error?.fault == (header.compression == .none ? .malformed : .compression))
            if header.compression == .deflate {
                var short = bytes
                setLE32(&short, at: 8, header.payloadLength + 1)
                fixChecksum(&short)
                let shortError = decodeError(short)
                #expect(shortError?.fault == .compression)
                #expect(shortError?.message.contains("more than") == true)
            }
        }
    }

    @Test func trailingGarbage() throws {
        for bytes in Self.goldenFrames {
            let error = decodeError(bytes + [0])
            #expect(error?.fault == .trailingBytes)
            #expect(error?.message.contains("follow the end of the frame") == true)
        }
        // Bytes after the message inside the payload (version 1 is strict).
        let (header, payload) = try Frame.payload(of: try #require(Fixtures.read("response-full.bin")))
        let error = decodeError(try frame(payload + [0, 0], header.messageType))
        #expect(error?.fault == .trailingBytes)
        #expect(error?.message.contains("2 bytes follow the end of the message") == true)
    }

    @Test func badChecksumMagicVersionTypeAndFlags() throws {
        let good = try #require(Fixtures.read("error.bin"))
        var crc = good
        crc[16] ^= 0x55
        #expect(decodeError(crc)?.fault == .checksum)
        #expect(decodeError(crc)?.message.contains("CRC-32 mismatch") == true)

        var magic = good
        magic[0] = UInt8(ascii: "X")
        fixChecksum(&magic)
        #expect(decodeError(magic)?.fault == .badMagic)
        #expect(decodeError(Array("GET / HTTP/1.1\r\n\r\n".utf8))?.fault == .badMagic)

        for (version, minimum) in [(0, 0), (0, 1), (3, 3), (1, 2), (2, 3), (9, 0), (255, 255)] as [(UInt8, UInt8)] {
            var bytes = good
            bytes[4] = version
            bytes[7] = minimum
            fixChecksum(&bytes)
            #expect(decodeError(bytes)?.fault == .unsupportedVersion, "version \(version), min reader \(minimum)")
        }
        for type in [0, 4, 9, 255] as [UInt8] {
            var bytes = good
            bytes[5] = type
            fixChecksum(&bytes)
            let error = decodeError(bytes)
            #expect(error?.fault == .unknownMessageType)
            #expect(error?.message.contains("unknown message type \(type)") == true)
        }
        for flags in [2, 3, 15] as [UInt8] {
            var bytes = good
            bytes[6] = flags
            fixChecksum(&bytes)
            #expect(decodeError(bytes)?.fault == .compression)
        }
        var reserved = good
        reserved[6] = 0x10
        fixChecksum(&reserved)
        #expect(decodeError(reserved)?.fault == .malformed)
    }

    @Test func layoutTwoRecordsDecodeAndTheirLiesAreCaught() throws {
        func fault(_ payload: [UInt8], minimumReader: UInt8 = 2) throws -> WireError? {
            decodeError(try frame2(payload, minimumReader: minimumReader))
        }
        let valid = try Frame.decode(try frame2(responsePayload2(count: 2, columns: twoRecords2)))
        let uuid = "00010203-0405-0607-0809-0a0b0c0d0e0f"
        #expect(valid == .syncResponse(SyncResponse(serverTime: 1, records: [
            .init(collection: "c", id: uuid, version: 1, scope: "", hlc: 1, body: "{}"),
            .init(collection: "d", id: "x", version: 2, scope: "", hlc: 2, body: "[]"),
        ], cursor: 0)))
        // Bodies are taken from their collection's group, not in item order.
        // Items in "c", "d", "c": the body column holds c's two bodies, then d's.
        let threeRecords: [[UInt8]] = [
            [2, 2, 2], [2, 0x63, 2, 0x64, 1], [2, 0x78, 2, 0x79, 2, 0x7A], [0, 1, 1], sv(1) + sv(1) + sv(1),
            Array(repeating: 0, count: 24), [1, 2, 1], Array("1322".utf8),
        ]
        let grouped = try Frame.decode(try frame2(responsePayload2(count: 3, columns: threeRecords)))
        guard case .syncResponse(let page) = grouped else { return }
        #expect(page.records.map { $0.body?.utf8String } == ["1", "22", "3"])
        #expect(page.records.map(\.collection) == ["c", "d", "c"])

        // Layout 2 in a frame that version-1 readers were told they could read.
        var e = try fault(responsePayload2(count: 2, columns: twoRecords2), minimumReader: 1)
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("minimum reader version is 1") == true)
        // Records without the layout flag in a version-2 frame, and the flag without records.
        e = try fault(responsePayload2(flags: 0, count: 1, columns: oneRecord))
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("without flag bit 2") == true)
        e = try fault(responsePayload2(count: 0, columns: []))
        #expect(e?.fault == .malformed)
        // Flag bit 2 in a version-1 frame is a reserved bit.
        e = decodeError(try frame(responsePayload2(count: 2, columns: twoRecords2), .syncResponse))
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("reserved message flag bits") == true)
        // UUID planes short or long.
        var lie = twoRecords2
        lie[2].removeLast()
        e = try fault(responsePayload2(count: 2, columns: lie))
        #expect(e?.fault == .truncated)
        #expect(e?.message.contains("id planes hold 15 bytes") == true)
        lie = twoRecords2
        lie[2] += [0]
        #expect(try fault(responsePayload2(count: 2, columns: lie))?.fault == .trailingBytes)
        // A text id head longer than the column.
        lie = twoRecords2
        lie[2] = [0, 0x7F] + uuidBytes
        #expect(try fault(responsePayload2(count: 2, columns: lie))?.fault == .truncated)
        // HLC planes of the wrong size.
        lie = twoRecords2
        lie[5].removeLast()
        e = try fault(responsePayload2(count: 2, columns: lie))
        #expect(e?.fault == .truncated)
        #expect(e?.message.contains("hlc planes hold 15 bytes") == true)
        lie = twoRecords2
        lie[5] += [9]
        #expect(try fault(responsePayload2(count: 2, columns: lie))?.fault == .trailingBytes)
        // Body lengths that add up to more, or less, than the body column.
        lie = twoRecords2
        lie[6] = [2, 3]
        e = try fault(responsePayload2(count: 2, columns: lie))
        #expect(e?.fault == .truncated)
        #expect(e?.message.contains("records[1]") == true)
        lie = twoRecords2
        lie[6] = [1, 2]
        #expect(try fault(responsePayload2(count: 2, columns: lie))?.fault == .trailingBytes)
        // A canonical UUID in text form is refused in layout 2 as in layout 1.
        lie = twoRecords2
        lie[2] = [0] + uv(37) + Array("00010203-0405-0607-0809-0a0b0c0d0e0f".utf8) + uuidBytes
        e = try fault(responsePayload2(count: 2, columns: lie))
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("canonical UUID") == true)
        // Truncating the valid frame at every byte fails cleanly.
        let whole = try frame2(responsePayload2(count: 2, columns: twoRecords2))
        for cut in 0..<whole.count {
            #expect(decodeError(Array(whole[..<cut])) != nil)
        }
    }

    @Test func nestedLengthLies() throws {
        func fault(_ payload: [UInt8], _ type: MessageType = .syncResponse, limits: WireLimits = .default) throws -> WireError? {
            decodeError(try frame(payload, type), limits: limits)
        }
        // Sanity: the hand-made record decodes.
        let valid = try Frame.decode(try frame(responsePayload(count: 1, columns: oneRecord), .syncResponse))
        #expect(valid == .syncResponse(SyncResponse(serverTime: 1, records: [.init(collection: "c", id: "x", version: 1, scope: "", hlc: 1, body: "{}")], cursor: 0)))

        // More items than the flags column has bytes.
        var e = try fault(responsePayload(count: 5, columns: oneRecord))
        #expect(e?.fault == .truncated)
        #expect(e?.message.contains("5 items declared") == true)
        // A column longer than the payload.
        var lying = responsePayload(count: 1, columns: oneRecord)
        lying[7] = 0x7F // the flags column's length
        e = try fault(lying)
        #expect(e?.fault == .truncated)
        // A string longer than its column.
        e = try fault(responsePayload(count: 1, columns: [[2], [8, 0x63], [2, 0x78], [0], sv(1), sv(1), [2], [0x7B, 0x7D]]))
        #expect(e?.fault == .truncated)
        #expect(e?.message.contains("records[0]: records.collection") == true)
        // A body longer than the bodies column.
        e = try fault(responsePayload(count: 1, columns: [[2], [2, 0x63], [2, 0x78], [0], sv(1), sv(1), [9], [0x7B, 0x7D]]))
        #expect(e?.fault == .truncated)
        #expect(e?.message.contains("body length 9") == true)
        // A column with bytes left over.
        e = try fault(responsePayload(count: 1, columns: [[2], [2, 0x63], [2, 0x78], [0], sv(1), sv(1), [2], [0x7B, 0x7D, 0x20]]))
        #expect(e?.fault == .trailingBytes)
        #expect(e?.message.contains("records.body") == true)
        // Wrong number of columns.
        e = try fault(responsePayload(count: 1, columns: Array(oneRecord.dropLast())))
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("7 columns") == true)
        // A count far beyond the limit: refused before anything is reserved.
        e = try fault(responsePayload(count: 1 << 40, columns: oneRecord))
        #expect(e?.fault == .limitExceeded)
        // A string count beyond the bytes left.
        e = try fault([0] + sv(1) + sv(0) + uv(1000) + [0, 0, 0])
        #expect(e?.fault == .truncated)
        // A symbol reference to nothing, and a literal repeated instead of referenced.
        e = try fault(responsePayload(count: 1, columns: [[2], [3], [2, 0x78], [0], sv(1), sv(1), [2], [0x7B, 0x7D]]))
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("symbol reference 1") == true)
        e = try fault(responsePayload(count: 2, columns: [[0, 0], [2, 0x63, 2, 0x63], [2, 0x78, 2, 0x79], [0, 1], sv(1) + sv(1), sv(1) + sv(1), [], []]))
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("repeated") == true)
        // A canonical UUID sent as text.
        let uuid = Array("0190f3a2-8000-7000-8000-000000000001".utf8)
        e = try fault(responsePayload(count: 1, columns: [[0], [2, 0x63], uv(37) + uuid, [0], sv(1), sv(1), [], []]))
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("canonical UUID") == true)
        // Invalid UTF-8.
        e = try fault(responsePayload(count: 1, columns: [[0], [4, 0xC3, 0x28], [2, 0x78], [0], sv(1), sv(1), [], []]))
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("UTF-8") == true)
        // Overlong and oversized varints.
        e = try fault(responsePayload(count: 1, columns: [[0], [2, 0x63], [2, 0x78], [0], [0x82, 0x00], sv(1), [], []]))
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("shortest form") == true)
        e = try fault([0] + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F] + [0, 0, 0, 0, 0])
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("64 bits") == true)
        // Reserved bits and unknown enumeration values.
        e = try fault(responsePayload(count: 1, columns: [[6], [2, 0x63], [2, 0x78], [0], sv(1), sv(1), [2], [0x7B, 0x7D]]))
        #expect(e?.fault == .malformed)
        e = try fault([8] + sv(1) + sv(0) + [0, 0, 0, 0])
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("reserved message flag") == true)
        let change3: [UInt8] = [0, 1, 1] + [1] + uv(9) + column([3]) + column([2, 0x63]) + column([2, 0x78]) + column([0])
            + column(sv(0)) + column(sv(0)) + column([0]) + column([]) + column([])
        e = try fault(change3, .syncRequest)
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("unknown operation 3") == true)
        let result5: [UInt8] = [0] + sv(1) + sv(0) + [0] + [1, 8] + column([5]) + column(sv(0)) + column(sv(0)) + column(sv(0))
            + column([0]) + column([1]) + column([]) + column([]) + [0, 0]
        e = try fault(result5)
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("unknown outcome 5") == true)
        let negativeIndex: [UInt8] = [0] + sv(1) + sv(0) + [0] + [1, 8] + column([0]) + column(sv(-5)) + column(sv(0)) + column(sv(0))
            + column([0]) + column([1]) + column([]) + column([]) + [0, 0]
        e = try fault(negativeIndex)
        #expect(e?.fault == .malformed)
        #expect(e?.message.contains("change index") == true)
        // A string length one past the end: the bytes left are counted after the length
        // itself (the fuzzer found an over-read here).
        e = try fault([0] + sv(-17) + [3, 0x61, 0x62], .error)
        #expect(e?.fault == .truncated)
        #expect(e?.message.contains("string length 3 exceeds the 2 bytes left") == true)
        e = try fault(responsePayload(count: 1, columns: oneRecord).dropLast() + [], .syncResponse)
        #expect(e?.fault == .truncated)
        // Error code outside int32.
        e = try fault([0] + sv(Int64(Int32.min) - 1) + str("x"), .error)
        #expect(e?.fault == .malformed)
        // Messages cut inside their head.
        e = try fault([1] + [0], .syncRequest)
        #expect(e?.fault == .truncated)
    }

    @Test func configuredLimitsAreEnforced() throws {
        let response = try #require(Fixtures.read("response-compressed.bin"))
        var limits = WireLimits.default
        limits.maxItems = 49
        #expect(decodeError(response, limits: limits)?.fault == .limitExceeded)
        limits = .default
        limits.maxFrameBytes = response.count - 1
        #expect(decodeError(response, limits: limits)?.message.contains("exceeds the limit") == true)
        limits = .default
        limits.maxPayloadBytes = 100
        #expect(decodeError(response, limits: limits)?.fault == .limitExceeded)
        limits = .default
        limits.maxBodyBytes = 10
        #expect(decodeError(response, limits: limits)?.message.contains("body length") == true)
        limits = .default
        limits.maxStringBytes = 5
        let request = try #require(Fixtures.read("request-push-pull.bin"))
        #expect(decodeError(request, limits: limits)?.fault == .limitExceeded)
        // Limits that fit decode fine.
        limits = WireLimits(maxFrameBytes: response.count, maxPayloadBytes: 4096, maxItems: 50, maxStringBytes: 64, maxBodyBytes: 64)
        _ = try Frame.decode(response, limits: limits)
    }

    @Test func decompressionBombsAreRefused() throws {
        // 8 MiB of zeros deflate to about 8 KB.
        let zeros = [UInt8](repeating: 0, count: 8 << 20)
        let bomb = try Frame.encode(payload: zeros, type: .error, options: EncodeOptions(compressionLevel: 9))
        let header = try FrameHeader.parse(bomb)
        #expect(header.compression == .deflate)
        #expect(header.payloadLength < 10_000)
        // Over the configured payload limit: refused before any memory is reserved.
        var limits = WireLimits.default
        limits.maxPayloadBytes = 1 << 20
        #expect(decodeError(bomb, limits: limits)?.fault == .limitExceeded)
        // Declaring less than it inflates to: inflation stops at the declared size.
        var understated = bomb
        setLE32(&understated, at: 8, 1 << 20)
        fixChecksum(&understated)
        let error = decodeError(understated)
        #expect(error?.fault == .compression)
        #expect(error?.message.contains("more than the 1048576 bytes") == true)
        // Declaring more than deflate can produce from the payload.
        var impossible = bomb
        setLE32(&impossible, at: 8, header.payloadLength * 1033)
        fixChecksum(&impossible)
        #expect(decodeError(impossible)?.message.contains("cannot inflate") == true)
    }

    @Test func headerParsingForStreams() throws {
        let bytes = try #require(Fixtures.read("response-full.bin"))
        // A stream reader parses the header alone, then reads frameLength bytes.
        let header = try FrameHeader.parse(Array(bytes[0..<PierWire.headerSize]))
        #expect(header.frameLength == bytes.count)
        #expect(throws: WireError.self) { try FrameHeader.parse(Array(bytes[0..<19])) }
    }
}
