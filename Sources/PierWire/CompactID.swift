/// A record id as messages hold it: a UUID in canonical lowercase text form
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, any version) is kept as its 128 bits, anything
/// else as the string. Decoding a pull page then allocates nothing per UUID id; the text
/// is rebuilt when the id is read. The wire form (docs/PROTOCOL.md section 3.5) mirrors it.
enum CompactID: Hashable, Sendable {
    /// The UUID's bytes 0-7 and 8-15 as big-endian integers.
    case uuid(UInt64, UInt64)
    /// Any id that is not a canonical lowercase UUID.
    case text(String)

    init(_ value: String) {
        var value = value
        if let (high, low) = value.withUTF8({ CompactID.parseUUID(UnsafeRawBufferPointer($0)) }) {
            self = .uuid(high, low)
        } else {
            self = .text(value)
        }
    }

    var string: String {
        switch self {
        case .uuid(let high, let low): return CompactID.text(high: high, low: low)
        case .text(let text): return text
        }
    }

    /// The 128 bits of `text` if it is a canonical lowercase UUID, else nil.
    static func parseUUID(_ text: UnsafeRawBufferPointer) -> (UInt64, UInt64)? {
        guard text.count == 36 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var digits = 0
        for i in 0..<36 {
            let c = text[i]
            if i == 8 || i == 13 || i == 18 || i == 23 {
                guard c == 0x2D else { return nil }
                continue
            }
            let nibble: UInt8
            switch c {
            case 0x30...0x39: nibble = c &- 0x30
            case 0x61...0x66: nibble = c &- 0x61 &+ 10
            default: return nil
            }
            if digits < 16 {
                high = high << 4 | UInt64(nibble)
            } else {
                low = low << 4 | UInt64(nibble)
            }
            digits += 1
        }
        return (high, low)
    }

    /// The canonical text of a UUID.
    static func text(high: UInt64, low: UInt64) -> String {
        // Four bytes become eight hex digits in one 64-bit word (SWAR).
        @inline(__always)
        func hex8(_ word: UInt32) -> UInt64 {
            let w = UInt64(word)
            let v = (w >> 24) | (w >> 16 & 0xFF) << 16 | (w >> 8 & 0xFF) << 32 | (w & 0xFF) << 48
            let nibbles = (v >> 4) & 0x000F_000F_000F_000F | (v & 0x000F_000F_000F_000F) << 8
            let letters = ((nibbles &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
            return nibbles &+ 0x3030_3030_3030_3030 &+ letters &* 39
        }
        let a = hex8(UInt32(truncatingIfNeeded: high >> 32)), b = hex8(UInt32(truncatingIfNeeded: high))
        let c = hex8(UInt32(truncatingIfNeeded: low >> 32)), d = hex8(UInt32(truncatingIfNeeded: low))
        var text: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &text) { o in
            o.storeBytes(of: a.littleEndian, toByteOffset: 0, as: UInt64.self)
            o.storeBytes(of: 0x2D, toByteOffset: 8, as: UInt8.self)
            o.storeBytes(of: UInt32(truncatingIfNeeded: b).littleEndian, toByteOffset: 9, as: UInt32.self)
            o.storeBytes(of: 0x2D, toByteOffset: 13, as: UInt8.self)
            o.storeBytes(of: UInt32(truncatingIfNeeded: b >> 32).littleEndian, toByteOffset: 14, as: UInt32.self)
            o.storeBytes(of: 0x2D, toByteOffset: 18, as: UInt8.self)
            o.storeBytes(of: UInt32(truncatingIfNeeded: c).littleEndian, toByteOffset: 19, as: UInt32.self)
            o.storeBytes(of: 0x2D, toByteOffset: 23, as: UInt8.self)
            o.storeBytes(of: UInt32(truncatingIfNeeded: c >> 32).littleEndian, toByteOffset: 24, as: UInt32.self)
            o.storeBytes(of: d.littleEndian, toByteOffset: 28, as: UInt64.self)
            return String(decoding: UnsafeRawBufferPointer(rebasing: o[0..<36]).assumingMemoryBound(to: UInt8.self), as: UTF8.self)
        }
    }
}
