internal import CDeflate

/// Raw deflate (RFC 1951) and CRC-32 through libdeflate. The frame's CRC-32 already guards
/// the data, so the zlib wrapper (RFC 1950) and its Adler-32 would be redundant. A frame
/// is one buffer whose inflated size the header declares, which is the case libdeflate is
/// built for: no streaming state, and about 1.4 times zlib's compression speed at the same
/// level (with smaller output) and twice its inflate speed (benchmarks/COMPONENTS.md).
/// The output is ordinary DEFLATE: zlib, Python's `zlib` and every other inflater read it.
enum Deflate {
    /// Compresses `input` into `output` (at most `output.count` bytes). Returns the
    /// compressed size, or nil if the result would not fit: the caller then sends the
    /// payload uncompressed, so a frame is compressed only when that makes it smaller.
    static func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, level: Int) throws(WireError) -> Int? {
        guard output.count > 0, let outBase = output.baseAddress else { return nil }
        // A compressor per frame: it is not safe to share between threads, and its
        // allocation is small next to compressing a page.
        guard let compressor = libdeflate_alloc_compressor(Int32(max(1, min(9, level)))) else {
            throw WireError(.compression, "libdeflate could not allocate a compressor (out of memory)")
        }
        defer { libdeflate_free_compressor(compressor) }
        let written = libdeflate_deflate_compress(compressor, input.baseAddress, input.count, outBase, output.count)
        return written == 0 ? nil : written // 0: output space ran out, so not smaller
    }

    /// Inflates `input` into exactly `output.count` bytes (the size the header declares).
    /// Anything else is a `.compression` error: corrupt or truncated data, a stream that
    /// inflates to more or fewer bytes than declared, or bytes after the stream's end.
    static func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard let decompressor = libdeflate_alloc_decompressor() else {
            throw WireError(.compression, "libdeflate could not allocate a decompressor (out of memory)")
        }
        defer { libdeflate_free_decompressor(decompressor) }
        var consumed = 0, produced = 0
        // libdeflate wants non-null pointers even for empty buffers.
        var scratch: (UInt8, UInt8) = (0, 0)
        let result = withUnsafeMutableBytes(of: &scratch) { scratchBytes in
            libdeflate_deflate_decompress_ex(
                decompressor, input.baseAddress ?? UnsafeRawPointer(scratchBytes.baseAddress!), input.count,
                output.baseAddress ?? scratchBytes.baseAddress! + 1, output.count, &consumed, &produced)
        }
        switch result {
        case LIBDEFLATE_SUCCESS:
            if consumed != input.count {
                throw WireError(.compression, "deflate stream ends \(input.count - consumed) bytes before the payload does")
            }
            if produced != output.count {
                throw WireError(.compression, "payload inflates to \(produced) bytes, header declares \(output.count)")
            }
        case LIBDEFLATE_INSUFFICIENT_SPACE:
            throw WireError(.compression, "payload inflates to more than the \(output.count) bytes the header declares")
        case LIBDEFLATE_BAD_DATA:
            // libdeflate reads past a truncated stream as zero bits, so truncation lands here too.
            throw WireError(.compression, "corrupt or truncated deflate data")
        default:
            throw WireError(.compression, "libdeflate inflate failed with status \(result.rawValue)")
        }
    }

    @inline(__always)
    static func crc32(_ crc: UInt32, _ buffer: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return crc }
        return libdeflate_crc32(crc, base, buffer.count)
    }
}

extension PierWire {
    /// The DEFLATE implementation frames are compressed with, e.g. "libdeflate 1.14".
    /// Compressed bytes depend on it (never the message bytes or what a frame decodes to).
    public static var deflateLibrary: String { "libdeflate " + LIBDEFLATE_VERSION_STRING }
}
