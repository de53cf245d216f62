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

    /// `source`, a run of items of `width` bytes each, as byte planes: byte 0 of every item,
    /// then byte 1 of every item, and so on (docs/PROTOCOL.md section 5.4).
    mutating func planes(_ source: [UInt8], width: Int) {
        let n = source.count / width
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: source.count))
        bytes.withUnsafeMutableBufferPointer { out in
            source.withUnsafeBufferPointer { input in
                for k in 0..<width {
                    let plane = start + k * n
                    for j in 0..<n { out[plane + j] = input[j * width + k] }
                }
            }
        }
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
        id(CompactID(value))
    }

    mutating func id(_ value: CompactID) {
        switch value {
        case .uuid(let high, let low):
            bytes.append(0)
            withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { bytes.append(contentsOf: $0) }
        case .text(var text):
            text.withUTF8 { utf8 in
                uvarint(UInt64(utf8.count) + 1)
                bytes.append(contentsOf: utf8)
            }
        }
    }

    /// A `sym` (section 3.6): a back-reference to an earlier literal of the same column, or
    /// a new literal that joins the column's table.
    /// Returns the string's position in the table.
    @discardableResult
    mutating func sym(_ value: String, _ table: inout SymbolTable) -> Int {
        if let index = table.index(of: value) {
            uvarint(UInt64(index) << 1 | 1)
            return index
        }
        table.add(value)
        var value = value
        value.withUTF8 { utf8 in
            uvarint(UInt64(utf8.count) << 1)
            bytes.append(contentsOf: utf8)
        }
        return table.count - 1
    }

    mutating func truncate(to count: Int) {
        bytes.removeSubrange(count...)
    }
}

/// The literals a `sym` column has introduced so far, in order.
struct SymbolTable {
    private var indexes: [String: Int] = [:]
    private var order: [String] = []
    /// The last string looked up and its index: consecutive items usually repeat it, and
    /// comparing with it is cheaper than hashing.
    private var recent: (String, Int)? = nil

    var count: Int { order.count }

    @inline(__always)
    mutating func index(of value: String) -> Int? {
        if let recent, recent.0 == value { return recent.1 }
        guard let index = indexes[value] else { return nil }
        recent = (value, index)
        return index
    }

    mutating func add(_ value: String) {
        indexes[value] = order.count
        recent = (value, order.count)
        order.append(value)
    }

    /// Forgets the literals added after the first `count` (bounded encoders roll back).
    mutating func truncate(to count: Int) {
        while order.count > count {
            indexes[order.removeLast()] = nil
        }
        if let recent, recent.1 >= count { self.recent = nil }
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
