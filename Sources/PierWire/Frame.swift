/// The compression algorithm of a frame's payload (low four bits of header byte 6).
public enum Compression: UInt8, Sendable, Hashable, CaseIterable {
    /// The payload is the message bytes as they are.
    case none = 0
    /// The payload is raw deflate (RFC 1951) of the message bytes, made with libdeflate.
    case deflate = 1

    /// The name used in docs/PROTOCOL.md and in JSON renderings.
    public var name: String {
        switch self {
        case .none: return "none"
        case .deflate: return "deflate"
        }
    }
}

/// The fixed 20-byte header every frame starts with (docs/PROTOCOL.md section 2).
public struct FrameHeader: Sendable, Hashable {
    /// The format version the frame was written in.
    public var version: UInt8
    /// The oldest reader version that can decode this frame.
    public var minimumReaderVersion: UInt8
    /// The message the payload holds.
    public var messageType: MessageType
    /// How the payload is compressed.
    public var compression: Compression
    /// The size of the message bytes after decompression.
    public var uncompressedLength: UInt32
    /// The size of the payload that follows the header.
    public var payloadLength: UInt32
    /// CRC-32 of header bytes 0-15 followed by the payload.
    public var checksum: UInt32

    /// The size of the whole frame: header plus payload.
    public var frameLength: Int { PierWire.headerSize + Int(payloadLength) }

    /// Creates a header (the checksum is normally filled in by `Frame.encode`).
    public init(
        version: UInt8 = PierWire.formatVersion, minimumReaderVersion: UInt8 = 1, messageType: MessageType,
        compression: Compression, uncompressedLength: UInt32, payloadLength: UInt32, checksum: UInt32 = 0
    ) {
        self.version = version
        self.minimumReaderVersion = minimumReaderVersion
        self.messageType = messageType
        self.compression = compression
        self.uncompressedLength = uncompressedLength
        self.payloadLength = payloadLength
        self.checksum = checksum
    }

    /// Parses and validates the first 20 bytes of `bytes` (which may hold more: a stream
    /// reader uses `frameLength` to know how much to read). Checks magic, versions, type,
    /// flags and every length against `limits`; it cannot check the CRC, which covers the
    /// payload too.
    public static func parse(_ bytes: [UInt8], limits: WireLimits = .default) throws(WireError) -> FrameHeader {
        try withBytes(bytes) { (buffer) throws(WireError) in try parse(buffer, limits: limits) }
    }

    /// Parses and validates the first 20 bytes of `bytes`; see `parse(_:limits:)`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, limits: WireLimits = .default) throws(WireError) -> FrameHeader {
        let magic = PierWire.magic
        for i in 0..<min(4, bytes.count) where bytes[i] != magic[i] {
            throw WireError(.badMagic, "frame does not start with \"PIER\" (bytes 0-3 are \(hex(bytes, 0..<min(4, bytes.count))))")
        }
        guard bytes.count >= PierWire.headerSize else {
            throw WireError(.truncated, "frame is \(bytes.count) bytes, shorter than the \(PierWire.headerSize)-byte header")
        }
        let version = bytes[4]
        let minimumReader = bytes[7]
        guard version >= 1, minimumReader >= 1, minimumReader <= version else {
            throw WireError(.unsupportedVersion, "invalid version bytes: version \(version), minimum reader version \(minimumReader)")
        }
        guard minimumReader <= PierWire.formatVersion else {
            throw WireError(
                .unsupportedVersion,
                "frame needs a reader of format version \(minimumReader) (written in version \(version)); this reader supports up to \(PierWire.formatVersion)"
            )
        }
        guard let type = MessageType(rawValue: bytes[5]) else {
            throw WireError(.unknownMessageType, "unknown message type \(bytes[5]) (known: 1 sync_request, 2 sync_response, 3 error)")
        }
        let flags = bytes[6]
        guard flags & 0xF0 == 0 else {
            throw WireError(.malformed, "reserved flag bits set in header byte 6 (0x\(hexByte(flags)))")
        }
        guard let compression = Compression(rawValue: flags & 0x0F) else {
            throw WireError(.compression, "unknown compression algorithm \(flags & 0x0F) (known: 0 none, 1 deflate)")
        }
        let uncompressed = loadLE32(bytes, 8)
        let payload = loadLE32(bytes, 12)
        let checksum = loadLE32(bytes, 16)
        let frameLength = PierWire.headerSize + Int(payload)
        guard frameLength <= limits.maxFrameBytes else {
            throw WireError(.limitExceeded, "frame of \(frameLength) bytes exceeds the limit of \(limits.maxFrameBytes)")
        }
        guard Int(uncompressed) <= limits.maxPayloadBytes else {
            throw WireError(.limitExceeded, "uncompressed payload of \(uncompressed) bytes exceeds the limit of \(limits.maxPayloadBytes)")
        }
        switch compression {
        case .none:
            guard uncompressed == payload else {
                throw WireError(.malformed, "uncompressed frame declares \(uncompressed) uncompressed bytes but carries \(payload)")
            }
        case .deflate:
            guard uncompressed > payload else {
                throw WireError(.malformed, "compressed payload of \(payload) bytes is not smaller than its \(uncompressed) uncompressed bytes")
            }
            // Deflate cannot expand data more than 1032:1; a larger claim is a lie.
            guard UInt64(uncompressed) <= UInt64(payload) * 1032 else {
                throw WireError(.malformed, "\(payload) deflate bytes cannot inflate to the declared \(uncompressed)")
            }
        }
        return FrameHeader(
            version: version, minimumReaderVersion: minimumReader, messageType: type, compression: compression,
            uncompressedLength: uncompressed, payloadLength: payload, checksum: checksum
        )
    }

    /// The first 16 header bytes (everything but the checksum).
    func prefixBytes() -> [UInt8] {
        var out = PierWire.magic
        out.append(version)
        out.append(messageType.rawValue)
        out.append(compression.rawValue)
        out.append(minimumReaderVersion)
        storeLE32(&out, uncompressedLength)
        storeLE32(&out, payloadLength)
        return out
    }
}

/// Frame-level encoding and decoding: header, checksum, compression, then the message codec.
public enum Frame {
    /// Encodes `message` into one frame.
    public static func encode(_ message: Message, options: EncodeOptions = .default) throws(WireError) -> [UInt8] {
        try encode(payload: try message.encodedPayload(version: options.formatVersion), type: message.type, options: options)
    }

    /// Wraps message bytes that are already encoded into a frame: compresses them if that
    /// makes the frame smaller, writes the header and the checksum. Tools and tests use it
    /// to frame payloads of their own. The header says `options.formatVersion`, and as
    /// minimum reader version `minimumReaderVersion` or, if nil, what the payload needs: 2
    /// for a version-2 response whose message flags say its records are in layout 2.
    public static func encode(
        payload: [UInt8], type: MessageType, options: EncodeOptions = .default, minimumReaderVersion: UInt8? = nil
    ) throws(WireError) -> [UInt8] {
        // The message flags are the payload's first varint; bit 2 lies in its first byte.
        let layout2 = type == .syncResponse && options.formatVersion >= 2 && (payload.first ?? 0) & 4 != 0
        let minimumReaderVersion = minimumReaderVersion ?? (layout2 ? 2 : 1)
        guard options.formatVersion >= 1 && options.formatVersion <= PierWire.formatVersion,
              minimumReaderVersion >= 1 && minimumReaderVersion <= options.formatVersion else {
            throw WireError(.unsupportedVersion, "cannot write format version \(options.formatVersion) with minimum reader version \(minimumReaderVersion)")
        }
        guard payload.count <= Int(UInt32.max) else {
            throw WireError(.limitExceeded, "payload of \(payload.count) bytes exceeds the format's 4 GiB limit")
        }
        let h = PierWire.headerSize
        var compressedCount: Int? = nil
        var frame: [UInt8] = []
        if options.compressionLevel > 0 && payload.count >= max(options.minimumCompressibleBytes, 2) {
            // Room for at most payload.count - 1 bytes: deflate succeeds only if it saves space.
            let capacity = h + payload.count - 1
            var failure: WireError? = nil
            frame = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
                let out = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[h...])
                do throws(WireError) {
                    compressedCount = try withBytes(payload) { (input) throws(WireError) in
                        try Deflate.compress(input, into: out, level: options.compressionLevel)
                    }
                } catch {
                    failure = error
                }
                for i in 0..<h { buffer[i] = 0 }
                initialized = h + (compressedCount ?? 0)
            }
            if let failure { throw failure }
        }
        var header = FrameHeader(
            version: options.formatVersion, minimumReaderVersion: minimumReaderVersion, messageType: type, compression: compressedCount == nil ? .none : .deflate,
            uncompressedLength: UInt32(payload.count), payloadLength: UInt32(compressedCount ?? payload.count)
        )
        if compressedCount == nil {
            frame = [UInt8](repeating: 0, count: h)
            frame.reserveCapacity(h + payload.count)
            frame.append(contentsOf: payload)
        }
        let prefix = header.prefixBytes()
        var crc = prefix.withUnsafeBytes { Deflate.crc32(0, $0) }
        crc = frame.withUnsafeBytes { Deflate.crc32(crc, UnsafeRawBufferPointer(rebasing: $0[h...])) }
        header.checksum = crc
        for i in 0..<16 { frame[i] = prefix[i] }
        frame[16] = UInt8(truncatingIfNeeded: crc)
        frame[17] = UInt8(truncatingIfNeeded: crc >> 8)
        frame[18] = UInt8(truncatingIfNeeded: crc >> 16)
        frame[19] = UInt8(truncatingIfNeeded: crc >> 24)
        return frame
    }

    /// Decodes one frame that must be exactly `frame` (bytes after it are an error).
    public static func decode(_ frame: [UInt8], limits: WireLimits = .default) throws(WireError) -> Message {
        try decodeWithHeader(frame, limits: limits).message
    }

    /// Decodes one frame that must be exactly `frame`; see `decode(_:limits:)`.
    public static func decode(_ frame: UnsafeRawBufferPointer, limits: WireLimits = .default) throws(WireError) -> Message {
        try decodeWithHeader(frame, limits: limits).message
    }

    /// Decodes one frame and also returns its header. Decoded bodies share the storage of
    /// `frame` (uncompressed frames) or of the inflated payload.
    public static func decodeWithHeader(_ frame: [UInt8], limits: WireLimits = .default) throws(WireError) -> (header: FrameHeader, message: Message) {
        let (header, inflated) = try withBytes(frame) { (buffer) throws(WireError) -> (FrameHeader, [UInt8]?) in
            let header = try verify(buffer, limits: limits)
            switch header.compression {
            case .none: return (header, nil)
            case .deflate:
                let payload = UnsafeRawBufferPointer(rebasing: buffer[PierWire.headerSize...])
                return (header, try inflate(payload, count: Int(header.uncompressedLength)))
            }
        }
        let message: Message
        if let inflated {
            message = try Message.decode(
                storage: inflated, offset: 0, count: inflated.count, type: header.messageType, version: header.version,
                minimumReaderVersion: header.minimumReaderVersion, limits: limits
            )
        } else {
            message = try Message.decode(
                storage: frame, offset: PierWire.headerSize, count: Int(header.payloadLength), type: header.messageType,
                version: header.version, minimumReaderVersion: header.minimumReaderVersion, limits: limits
            )
        }
        return (header, message)
    }

    /// Decodes one frame and also returns its header.
    public static func decodeWithHeader(_ frame: UnsafeRawBufferPointer, limits: WireLimits = .default) throws(WireError) -> (header: FrameHeader, message: Message) {
        let header = try verify(frame, limits: limits)
        let payload = UnsafeRawBufferPointer(rebasing: frame[PierWire.headerSize...])
        let plain = header.compression == .none ? Array(payload) : try inflate(payload, count: Int(header.uncompressedLength))
        let message = try Message.decode(
            storage: plain, offset: 0, count: plain.count, type: header.messageType, version: header.version,
            minimumReaderVersion: header.minimumReaderVersion, limits: limits
        )
        return (header, message)
    }

    /// Verifies a frame (header, size, checksum) and returns its header and its message
    /// bytes after decompression, without decoding the message. Debugging tools use it.
    public static func payload(of frame: [UInt8], limits: WireLimits = .default) throws(WireError) -> (header: FrameHeader, payload: [UInt8]) {
        try withBytes(frame) { (buffer) throws(WireError) in
            let header = try verify(buffer, limits: limits)
            let payload = UnsafeRawBufferPointer(rebasing: buffer[PierWire.headerSize...])
            switch header.compression {
            case .none: return (header, Array(payload))
            case .deflate: return (header, try inflate(payload, count: Int(header.uncompressedLength)))
            }
        }
    }

    /// The CRC-32 a frame's header must carry: over header bytes 0-15, then the payload.
    public static func checksum(of frame: [UInt8]) -> UInt32 {
        frame.withUnsafeBytes { buffer in
            guard buffer.count >= PierWire.headerSize else { return 0 }
            let crc = Deflate.crc32(0, UnsafeRawBufferPointer(rebasing: buffer[0..<16]))
            return Deflate.crc32(crc, UnsafeRawBufferPointer(rebasing: buffer[PierWire.headerSize...]))
        }
    }

    private static func verify(_ frame: UnsafeRawBufferPointer, limits: WireLimits) throws(WireError) -> FrameHeader {
        let header = try FrameHeader.parse(frame, limits: limits)
        let available = frame.count - PierWire.headerSize
        if available < Int(header.payloadLength) {
            throw WireError(.truncated, "frame truncated: header declares \(header.payloadLength) payload bytes, \(available) present")
        }
        if available > Int(header.payloadLength) {
            throw WireError(.trailingBytes, "\(available - Int(header.payloadLength)) bytes follow the end of the frame")
        }
        let computed = Deflate.crc32(
            Deflate.crc32(0, UnsafeRawBufferPointer(rebasing: frame[0..<16])),
            UnsafeRawBufferPointer(rebasing: frame[PierWire.headerSize...])
        )
        guard computed == header.checksum else {
            throw WireError(.checksum, "CRC-32 mismatch: header says 0x\(hex32(header.checksum)), frame has 0x\(hex32(computed))")
        }
        return header
    }

    private static func inflate(_ payload: UnsafeRawBufferPointer, count: Int) throws(WireError) -> [UInt8] {
        var failure: WireError? = nil
        let plain = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(WireError) {
                try Deflate.inflate(payload, into: UnsafeMutableRawBufferPointer(buffer))
                initialized = count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return plain
    }
}

/// Runs `body` over the bytes of `array` with a typed error.
@inline(__always)
func withBytes<T>(_ array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(WireError) -> T) throws(WireError) -> T {
    let result: Result<T, WireError> = array.withUnsafeBytes { buffer in
        do throws(WireError) { return .success(try body(buffer)) } catch { return .failure(error) }
    }
    return try result.get()
}

@inline(__always)
func loadLE32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
}

func storeLE32(_ out: inout [UInt8], _ value: UInt32) {
    for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
}

func hexByte(_ b: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}

func hex32(_ v: UInt32) -> String {
    (0..<4).reversed().map { hexByte(UInt8(truncatingIfNeeded: v >> UInt32($0 * 8))) }.joined()
}

func hex(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
    range.map { hexByte(bytes[$0]) }.joined(separator: " ")
}
