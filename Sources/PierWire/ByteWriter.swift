/// An append-only byte buffer with the primitive encodings of docs/PROTOCOL.md section 3.
struct ByteWriter {
    var bytes: [UInt8] = []

    init() {}

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    var count: Int { bytes.count }

    @inline(__always)
    mutating func byte(_ value: UInt8) { bytes.append(value) }

    /// Unsigned LEB128, shortest form.
    @inline(__always)
    mutating func uvarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    /// Zigzag-mapped signed value as unsigned LEB128.
    @inline(__always)
    mutating func svarint(_ value: Int64) {
        uvarint(zigzag(value))
    }

    mutating func raw(_ source: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: source)
    }

    mutating func raw(_ source: [UInt8]) {
        bytes.append(contentsOf: source)
    }

    /// A length-prefixed string: uvarint byte count, then UTF-8.
    mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            uvarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// An `id` (section 3.5): a canonical lowercase UUID as 0x00 and 16 bytes, anything
    /// else as (length + 1) and UTF-8.
    mutating func id(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            if let uuid = canonicalUUID(UnsafeRawBufferPointer(utf8)) {
                bytes.append(0)
                withUnsafeBytes(of: uuid) { bytes.append(contentsOf: $0) }
            } else {
                uvarint(UInt64(utf8.count) + 1)
                bytes.append(contentsOf: utf8)
            }
        }
    }

    /// A `sym` (section 3.6): a back-reference to an earlier literal of the same column, or
    /// a new literal that joins the column's table.
    mutating func sym(_ value: String, _ table: inout SymbolTable) {
        if let index = table.index(of: value) {
            uvarint(UInt64(index) << 1 | 1)
        } else {
            table.add(value)
            var value = value
            value.withUTF8 { utf8 in
                uvarint(UInt64(utf8.count) << 1)
                bytes.append(contentsOf: utf8)
            }
        }
    }

    mutating func truncate(to count: Int) {
        bytes.removeSubrange(count...)
    }
}

/// The literals a `sym` column has introduced so far, in order.
struct SymbolTable {
    private var indexes: [String: Int] = [:]
    private var order: [String] = []

    var count: Int { order.count }

    func index(of value: String) -> Int? { indexes[value] }

    mutating func add(_ value: String) {
        indexes[value] = order.count
        order.append(value)
    }

    /// Forgets the literals added after the first `count` (bounded encoders roll back).
    mutating func truncate(to count: Int) {
        while order.count > count {
            indexes[order.removeLast()] = nil
        }
    }
}

@inline(__always)
func zigzag(_ value: Int64) -> UInt64 {
    UInt64(bitPattern: (value << 1) ^ (value >> 63))
}

@inline(__always)
func unzigzag(_ value: UInt64) -> Int64 {
    Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
}

/// The number of bytes `uvarint` writes for `value`.
@inline(__always)
func uvarintSize(_ value: UInt64) -> Int {
    var v = value
    var n = 1
    while v >= 0x80 {
        v >>= 7
        n += 1
    }
    return n
}

/// The 16 bytes of `text` if it is a UUID in canonical lowercase form
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits 0-9 a-f), else nil.
/// Any version and variant qualifies: only the spelling matters.
@inline(__always)
func canonicalUUID(_ text: UnsafeRawBufferPointer) -> (UInt64, UInt64)? {
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
    // Stored big-endian so that the 16 bytes read like the text.
    return (high.bigEndian, low.bigEndian)
}

/// The canonical lowercase text of a UUID given as 16 bytes.
func uuidText(_ raw: UnsafeRawBufferPointer) -> String {
    // Four bytes at a time become eight hex digits in one 64-bit word (SWAR): a decoded
    // pull page creates one of these per record, so this is on the hot path.
    @inline(__always)
    func hex8(_ p: UnsafeRawPointer) -> UInt64 {
        let v = UInt64(p.load(as: UInt8.self)) | UInt64(p.load(fromByteOffset: 1, as: UInt8.self)) << 16
            | UInt64(p.load(fromByteOffset: 2, as: UInt8.self)) << 32 | UInt64(p.load(fromByteOffset: 3, as: UInt8.self)) << 48
        let nibbles = (v >> 4) & 0x000F_000F_000F_000F | (v & 0x000F_000F_000F_000F) << 8
        let letters = ((nibbles &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        return nibbles &+ 0x3030_3030_3030_3030 &+ letters &* 39
    }
    let base = raw.baseAddress!
    let a = hex8(base), b = hex8(base + 4), c = hex8(base + 8), d = hex8(base + 12)
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
