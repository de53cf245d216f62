// libFuzzer entry point for the PierWire decoder. Built by scripts/fuzz-wire, which
// compiles it together with Sources/PierWire/*.swift into one module (swift build cannot
// link libFuzzer), with -sanitize=fuzzer,address.
//
// Each input is tried as a whole frame (the CRC rejects most mutations there), and as
// the message bytes of each message type in each format version (behind the CRC, where the
// column, varint and string decoders live). Anything that decodes must be canonical:
// encoding the value again gives the same message bytes. A violation traps, which the
// fuzzer reports as a crash.

/// Small limits keep allocations bounded and make limit checks reachable.
let fuzzLimits = WireLimits(maxFrameBytes: 1 << 20, maxPayloadBytes: 1 << 20, maxItems: 4096, maxStringBytes: 4096, maxBodyBytes: 1 << 16)

@_cdecl("LLVMFuzzerTestOneInput")
public func pierWireFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let (header, message) = try? Frame.decodeWithHeader(bytes, limits: fuzzLimits) {
        if header.version <= PierWire.formatVersion {
            let (_, original) = try! Frame.payload(of: bytes, limits: fuzzLimits)
            precondition(try! message.encodedPayload(version: header.version) == original, "decoded frame is not canonical")
        }
        for version in 1...PierWire.formatVersion {
            let again = try! Frame.decode(try! Frame.encode(message, options: EncodeOptions(formatVersion: version)), limits: fuzzLimits)
            precondition(again == message, "frame round trip in version \(version) changed the value")
        }
    }
    // Message bytes of every type, read by the rules of every version.
    for type in MessageType.allCases {
        for version in 1...PierWire.formatVersion {
            guard let message = try? Message.decode(payload: bytes, type: type, version: version, limits: fuzzLimits) else { continue }
            precondition(try! message.encodedPayload(version: version) == bytes, "decoded payload is not canonical")
            _ = WireJSON.render(message)
        }
    }
    return 0
}
