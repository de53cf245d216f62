/// A bounds-checked cursor over part of a payload, with the primitive decodings of
/// docs/PROTOCOL.md section 3. Every read checks the bytes that remain first; nothing is
/// allocated for a length that has not been checked against both the remaining bytes and
/// the configured limit.
///
/// The pointer is only valid inside the `withUnsafeBytes` scope that created the reader;
/// readers never escape the decoding functions.
struct ByteReader {
    let base: UnsafeRawPointer
    /// Absolute offset in the payload of the next byte.
    var position: Int
    /// Absolute offset in the payload one past the last readable byte.
    let end: Int
    /// Names the structure being read, for error messages ("records.id").
    let name: String

    init(_ buffer: UnsafeRawBufferPointer, name: String) {
        // An empty buffer may have a nil base address; no byte is ever read from it then.
        base = buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        position = 0
        end = buffer.count
        self.name = name
    }

    init(base: UnsafeRawPointer, position: Int, end: Int, name: String) {
        self.base = base
        self.position = position
        self.end = end
        self.name = name
    }

    var remaining: Int { end - position }
    var isAtEnd: Bool { position == end }

    func fail(_ fault: WireError.Fault, _ what: String) -> WireError {
        WireError(fault, "\(name): \(what) (payload offset \(position))")
    }

    @inline(__always)
    mutating func byte() throws(WireError) -> UInt8 {
        guard position < end else { throw fail(.truncated, "expected 1 more byte, 0 left") }
        let b = base.load(fromByteOffset: position, as: UInt8.self)
        position += 1
        return b
    }

    /// Unsigned LEB128 of at most 64 bits in its shortest form.
    @inline(__always)
    mutating func uvarint() throws(WireError) -> UInt64 {
        if position < end {
            let b = base.load(fromByteOffset: position, as: UInt8.self)
            if b < 0x80 {
                position += 1
                return UInt64(b)
            }
        }
        return try uvarintSlow()
    }

    private mutating func uvarintSlow() throws(WireError) -> UInt64 {
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        // With 10 bytes available (the longest varint) the loop needs no bounds checks.
        let limit = end - start >= 10 ? start + 10 : end
        var p = start
        while p < limit {
            let b = base.load(fromByteOffset: p, as: UInt8.self)
            p += 1
            result |= UInt64(b & 0x7F) &<< shift
            if b < 0x80 {
                if b == 0 && p - start > 1 { throw fail(.malformed, "varint not in shortest form") }
                if p - start == 10 && b > 1 { throw fail(.malformed, "varint longer than 64 bits") }
                position = p
                return result
            }
            shift += 7
        }
        if p - start == 10 { throw fail(.malformed, "varint longer than 64 bits") }
        throw fail(.truncated, "varint runs past the end")
    }

    @inline(__always)
    mutating func svarint() throws(WireError) -> Int64 {
        unzigzag(try uvarint())
    }

    mutating func uint32() throws(WireError) -> UInt32 {
        let v = try uvarint()
        guard v <= UInt64(UInt32.max) else { throw fail(.malformed, "value \(v) exceeds 2^32-1") }
        return UInt32(v)
    }

    mutating func int32() throws(WireError) -> Int32 {
        let v = try svarint()
        guard let narrow = Int32(exactly: v) else { throw fail(.malformed, "value \(v) outside the int32 range") }
        return narrow
    }

    /// A uvarint count or length, checked against `limit` (a `WireLimits` value) and
    /// against the bytes that remain in this reader after the varint itself.
    @inline(__always)
    mutating func length(limit: Int, what: StaticString) throws(WireError) -> Int {
        let v = try uvarint()
        return try check(v, limit: limit, available: remaining, what: what)
    }

    /// A uvarint length of data held by another reader (a body in the bodies column),
    /// checked against `limit` and against `available`, the bytes that reader has left.
    @inline(__always)
    mutating func length(limit: Int, availableElsewhere available: Int, what: StaticString) throws(WireError) -> Int {
        let v = try uvarint()
        return try check(v, limit: limit, available: available, what: what)
    }

    @inline(__always)
    private func check(_ v: UInt64, limit: Int, available: Int, what: StaticString) throws(WireError) -> Int {
        guard v <= UInt64(limit) else {
            throw fail(.limitExceeded, "\(what) \(v) exceeds the limit of \(limit)")
        }
        guard v <= UInt64(available) else {
            throw fail(.truncated, "\(what) \(v) exceeds the \(available) bytes left")
        }
        return Int(v)
    }

    /// Advances over `count` bytes (already checked) and returns their offset.
    @inline(__always)
    mutating func skip(_ count: Int) -> Int {
        let start = position
        position += count
        return start
    }

    func pointer(at offset: Int) -> UnsafeRawPointer { base + offset }

    /// A length-prefixed UTF-8 string.
    mutating func string(limits: WireLimits) throws(WireError) -> String {
        let n = try length(limit: limits.maxStringBytes, what: "string length")
        return try utf8(count: n)
    }

    /// `count` bytes (already checked against `remaining`) as a validated UTF-8 string.
    @inline(__always)
    mutating func utf8(count: Int) throws(WireError) -> String {
        let buffer = UnsafeRawBufferPointer(start: base + position, count: count)
        guard let s = makeString(buffer) else { throw fail(.malformed, "string of \(count) bytes is not valid UTF-8") }
        position += count
        return s
    }

    /// An `id`: 0x00 + 16 bytes of UUID, or (length + 1) + UTF-8 that is not a canonical UUID.
    @inline(__always)
    mutating func id(limits: WireLimits, strict: Bool) throws(WireError) -> String {
        try compactID(limits: limits, strict: strict).string
    }

    /// An `id` in compact form: a UUID costs no allocation.
    @inline(__always)
    mutating func compactID(limits: WireLimits, strict: Bool) throws(WireError) -> CompactID {
        if let text = try idHead(limits: limits, strict: strict) { return .text(text) }
        guard remaining >= 16 else { throw fail(.truncated, "UUID needs 16 bytes, \(remaining) left") }
        let high = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
        let low = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: position + 8, as: UInt64.self))
        position += 16
        return .uuid(high, low)
    }

    /// A `sym`: a reference to an earlier literal of this column or a new literal.
    @inline(__always)
    mutating func sym(_ table: inout SymbolReadTable, limits: WireLimits, strict: Bool) throws(WireError) -> String {
        table.values[try symIndex(&table, limits: limits, strict: strict)]
    }

    /// A `sym`, returned as its position in the column's table (`table.values`).
    @inline(__always)
    mutating func symIndex(_ table: inout SymbolReadTable, limits: WireLimits, strict: Bool) throws(WireError) -> Int {
        let h = try uvarint()
        if h & 1 == 1 {
            let index = h >> 1
            guard index < UInt64(table.values.count) else {
                throw fail(.malformed, "symbol reference \(index) but only \(table.values.count) defined")
            }
            return Int(index)
        }
        let n = h >> 1
        guard n <= UInt64(limits.maxStringBytes) else {
            throw fail(.limitExceeded, "string length \(n) exceeds the limit of \(limits.maxStringBytes)")
        }
        guard n <= UInt64(remaining) else { throw fail(.truncated, "string length \(n) exceeds the \(remaining) bytes left") }
        let s = try utf8(count: Int(n))
        if strict {
            guard table.seen.insert(s).inserted else {
                position -= Int(n)
                throw fail(.malformed, "literal \"\(s)\" repeated (must be a back-reference)")
            }
        }
        table.values.append(s)
        return table.values.count - 1
    }

    /// The head of an id (docs/PROTOCOL.md section 3.5): nil for a UUID, whose 16 bytes
    /// follow (`compactID`) or lie in the column's byte planes (layout 2, section 5.4), or
    /// the id in text form.
    @inline(__always)
    mutating func idHead(limits: WireLimits, strict: Bool) throws(WireError) -> String? {
        let h = try uvarint()
        if h == 0 { return nil }
        let n = h - 1
        guard n <= UInt64(limits.maxStringBytes) else {
            throw fail(.limitExceeded, "id length \(n) exceeds the limit of \(limits.maxStringBytes)")
        }
        guard n <= UInt64(remaining) else { throw fail(.truncated, "id length \(n) exceeds the \(remaining) bytes left") }
        if strict, CompactID.parseUUID(UnsafeRawBufferPointer(start: base + position, count: Int(n))) != nil {
            throw fail(.malformed, "canonical UUID sent in text form (must use the 16-byte form)")
        }
        return try utf8(count: Int(n))
    }
}

/// The literals of one `sym` column seen so far while decoding.
struct SymbolReadTable {
    var values: [String] = []
    var seen: Set<String> = []
}

/// A String from bytes that must be valid UTF-8; nil if they are not.
@inline(__always)
func makeString(_ buffer: UnsafeRawBufferPointer) -> String? {
    if buffer.isEmpty { return "" }
    let typed = buffer.assumingMemoryBound(to: UInt8.self)
    return String(validating: typed, as: UTF8.self)
}
