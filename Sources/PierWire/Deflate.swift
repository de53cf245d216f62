internal import CZlib

/// Raw deflate (RFC 1951) through the system zlib. The frame's CRC-32 already guards the
/// data, so the zlib wrapper (RFC 1950) and its Adler-32 would be redundant.
enum Deflate {
    /// Compresses `input` into `output` (at most `output.count` bytes). Returns the
    /// compressed size, or nil if the result would not fit: the caller then sends the
    /// payload uncompressed, so a frame is compressed only when that makes it smaller.
    static func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, level: Int) throws(WireError) -> Int? {
        guard output.count > 0, let outBase = output.baseAddress else { return nil }
        var stream = z_stream()
        let initStatus = deflateInit2_(
            &stream, Int32(max(1, min(9, level))), Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY,
            zlibVersion(), Int32(MemoryLayout<z_stream>.size)
        )
        guard initStatus == Z_OK else {
            throw WireError(.compression, "zlib deflateInit2 failed with status \(initStatus)")
        }
        defer { deflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
        stream.avail_in = UInt32(input.count)
        stream.next_out = outBase.assumingMemoryBound(to: UInt8.self)
        stream.avail_out = UInt32(output.count)
        let status = deflate(&stream, Z_FINISH)
        switch status {
        case Z_STREAM_END:
            return Int(stream.total_out)
        case Z_OK, Z_BUF_ERROR:
            return nil // output space ran out: not smaller
        default:
            throw WireError(.compression, "zlib deflate failed with status \(status)")
        }
    }

    /// Inflates `input` into exactly `output.count` bytes. The stream must end exactly
    /// there and consume all input: more output (a lie about the size, or a bomb), less
    /// output, corrupt data and bytes after the end of the stream are all errors. Work is
    /// bounded by the input and output sizes, so it cannot hang.
    static func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(WireError) {
        var stream = z_stream()
        let initStatus = inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else {
            throw WireError(.compression, "zlib inflateInit2 failed with status \(initStatus)")
        }
        defer { inflateEnd(&stream) }
        var scratch: UInt8 = 0
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
        stream.avail_in = UInt32(input.count)
        // zlib wants a non-null output pointer even for zero bytes.
        let status: Int32 = withUnsafeMutablePointer(to: &scratch) { scratchPointer in
            stream.next_out = output.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? scratchPointer
            stream.avail_out = UInt32(output.count)
            return CZlib.inflate(&stream, Z_FINISH)
        }
        let produced = Int(stream.total_out)
        switch status {
        case Z_STREAM_END:
            if stream.avail_in != 0 {
                throw WireError(.compression, "deflate stream ends \(stream.avail_in) bytes before the payload does")
            }
            if produced != output.count {
                throw WireError(.compression, "payload inflates to \(produced) bytes, header declares \(output.count)")
            }
        case Z_BUF_ERROR, Z_OK:
            if stream.avail_out == 0 {
                throw WireError(.compression, "payload inflates to more than the \(output.count) bytes the header declares")
            }
            throw WireError(.compression, "deflate stream is truncated after \(produced) of \(output.count) bytes")
        case Z_DATA_ERROR:
            let detail = stream.msg.map { String(cString: $0) } ?? "invalid data"
            throw WireError(.compression, "corrupt deflate data: \(detail)")
        case Z_NEED_DICT:
            throw WireError(.compression, "corrupt deflate data: asks for a preset dictionary")
        case Z_MEM_ERROR:
            throw WireError(.compression, "zlib ran out of memory while inflating")
        default:
            throw WireError(.compression, "zlib inflate failed with status \(status)")
        }
    }

    /// CRC-32 (ISO-HDLC, as zlib and gzip compute it), continuing from `crc`.
    @inline(__always)
    static func crc32(_ crc: UInt32, _ buffer: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return crc }
        return UInt32(truncatingIfNeeded: crc32_z(UInt(crc), base.assumingMemoryBound(to: UInt8.self), buffer.count))
    }
}

extension PierWire {
    /// The version of the zlib library PierWire runs with (compressed bytes may differ
    /// between zlib versions; the format does not depend on them).
    public static var zlibVersion: String { String(cString: CZlib.zlibVersion()) }
}
