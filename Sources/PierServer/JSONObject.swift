import PierStore

/// A validated JSON object split into its top-level members, each kept as the raw JSON
/// text of its value. This is all the server needs to merge fields, apply merge patches
/// and compare values: it never builds a tree of values.
public struct JSONObject: Equatable {
    public struct Member: Equatable {
        public var key: String
        /// The member's value as raw JSON text.
        public var value: [UInt8]

        /// The value unescaped when it is a JSON string; nil for any other kind of value.
        public var stringValue: String? {
            guard value.first == UInt8(ascii: "\"") else { return nil }
            var scanner = JSONScanner(bytes: value, maxDepth: 1)
            return try? scanner.string()
        }
    }

    /// Members in document order; a repeated key keeps its last value at its first position.
    public private(set) var members: [Member]

    init(members: [Member] = []) { self.members = members }

    /// Parses and fully validates `bytes` as one JSON object.
    public init(parsing bytes: [UInt8], maxDepth: Int = 256) throws(JSONError) {
        var scanner = JSONScanner(bytes: bytes, maxDepth: maxDepth)
        scanner.skipSpace()
        guard scanner.peek() == UInt8(ascii: "{") else { throw JSONError("a body must be a JSON object") }
        var members: [Member] = []
        var index: [String: Int] = [:]
        try scanner.object(depth: 1) { (key, range) in
            let value = Array(bytes[range])
            if let at = index[key] { members[at].value = value } else {
                index[key] = members.count
                members.append(Member(key: key, value: value))
            }
        }
        scanner.skipSpace()
        guard scanner.atEnd else { throw JSONError("unexpected text after the JSON object at byte \(scanner.position)") }
        self.members = members
    }

    subscript(key: String) -> [UInt8]? {
        get { members.first { $0.key == key }?.value }
        set {
            if let at = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[at].value = newValue } else { members.remove(at: at) }
            } else if let newValue {
                members.append(Member(key: key, value: newValue))
            }
        }
    }

    var keys: [String] { members.map(\.key) }

    /// Compact JSON text.
    var bytes: [UInt8] {
        var out = JSONWriter(capacity: members.reduce(2) { $0 + $1.key.utf8.count + $1.value.count + 4 })
        out.raw("{")
        for (i, member) in members.enumerated() {
            if i > 0 { out.raw(",") }
            out.string(member.key)
            out.raw(":")
            member.value.withUnsafeBytes { out.rawJSON($0) }
        }
        out.raw("}")
        return out.bytes
    }

    /// Applies a JSON merge patch (RFC 7396) to this object.
    mutating func apply(patch: JSONObject) throws(JSONError) {
        for member in patch.members {
            let value = member.value
            if value == Array("null".utf8) {
                self[member.key] = nil
            } else if value.first == UInt8(ascii: "{") {
                var target = (try? self[member.key].map { (v) throws(JSONError) in try JSONObject(parsing: v) }) ?? nil ?? JSONObject()
                try target.apply(patch: try JSONObject(parsing: value))
                self[member.key] = target.bytes
            } else {
                self[member.key] = value
            }
        }
    }

    /// True when two raw JSON values are the same value (ignoring insignificant whitespace
    /// and member order inside objects).
    static func sameValue(_ a: [UInt8]?, _ b: [UInt8]?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        if a == b { return true }
        if a.first == UInt8(ascii: "{"), b.first == UInt8(ascii: "{"),
           let x = try? JSONObject(parsing: a), let y = try? JSONObject(parsing: b) {
            guard x.members.count == y.members.count else { return false }
            return x.members.allSatisfy { sameValue($0.value, y[$0.key]) }
        }
        return canonical(a) == canonical(b)
    }

    /// Removes whitespace outside strings (enough to compare arrays and scalars).
    private static func canonical(_ value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.count)
        var inString = false, escaped = false
        for byte in value {
            if inString {
                out.append(byte)
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
                out.append(byte)
            } else if byte != 0x20 && byte != 0x0a && byte != 0x0d && byte != 0x09 {
                out.append(byte)
            }
        }
        return out
    }
}

public struct JSONError: Error, Equatable {
    public var message: String
    init(_ message: String) { self.message = message }
}

/// A validating JSON scanner (RFC 8259) over bytes.
struct JSONScanner {
    let bytes: [UInt8]
    let maxDepth: Int
    var position = 0

    init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    var atEnd: Bool { position >= bytes.count }
    func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func skipSpace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0a, 0x0d, 0x09: position += 1
            default: return
            }
        }
    }

    private func fail(_ what: String) -> JSONError { JSONError("invalid JSON at byte \(position): \(what)") }

    mutating func expect(_ byte: UInt8) throws(JSONError) {
        guard peek() == byte else { throw fail("expected '\(Character(Unicode.Scalar(byte)))'") }
        position += 1
    }

    /// Scans an object, calling `member` with each key and the byte range of its value.
    mutating func object(depth: Int, _ member: (String, Range<Int>) throws(JSONError) -> Void) throws(JSONError) {
        guard depth <= maxDepth else { throw fail("nested deeper than \(maxDepth) levels") }
        try expect(UInt8(ascii: "{"))
        skipSpace()
        if peek() == UInt8(ascii: "}") { position += 1; return }
        while true {
            skipSpace()
            let key = try string()
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            let start = position
            try value(depth: depth)
            try member(key, start..<position)
            skipSpace()
            guard let next = peek() else { throw fail("unterminated object") }
            position += 1
            if next == UInt8(ascii: "}") { return }
            guard next == UInt8(ascii: ",") else { throw fail("expected ',' or '}'") }
        }
    }

    mutating func value(depth: Int) throws(JSONError) {
        guard let byte = peek() else { throw fail("missing value") }
        switch byte {
        case UInt8(ascii: "{"): try object(depth: depth + 1) { (_: String, _: Range<Int>) throws(JSONError) in }
        case UInt8(ascii: "["):
            guard depth + 1 <= maxDepth else { throw fail("nested deeper than \(maxDepth) levels") }
            position += 1
            skipSpace()
            if peek() == UInt8(ascii: "]") { position += 1; return }
            while true {
                skipSpace()
                try value(depth: depth + 1)
                skipSpace()
                guard let next = peek() else { throw fail("unterminated array") }
                position += 1
                if next == UInt8(ascii: "]") { return }
                guard next == UInt8(ascii: ",") else { throw fail("expected ',' or ']'") }
            }
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: try number()
        }
    }

    private mutating func literal(_ text: StaticString) throws(JSONError) {
        let count = text.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw fail("truncated literal") }
        let matches = text.withUTF8Buffer { Array($0) == Array(bytes[position..<position + count]) }
        guard matches else { throw fail("unknown literal") }
        position += count
    }

    private mutating func number() throws(JSONError) {
        let start = position
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard let first = peek(), first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") else { throw fail("unexpected character") }
        if first == UInt8(ascii: "0") { position += 1 } else { digits() }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw fail("digits expected after '.'") }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw fail("digits expected in exponent") }
        }
        if position == start { throw fail("number expected") }
    }

    @discardableResult
    private mutating func digits() -> Int {
        let start = position
        while let byte = peek(), byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { position += 1 }
        return position - start
    }

    /// Scans a string and returns it unescaped.
    mutating func string() throws(JSONError) -> String {
        try expect(UInt8(ascii: "\""))
        var out: [UInt8] = []
        while true {
            guard let byte = peek() else { throw fail("unterminated string") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
                return text
            case UInt8(ascii: "\\"):
                guard let escape = peek() else { throw fail("unterminated escape") }
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard peek() == UInt8(ascii: "\\") else { throw fail("lone high surrogate") }
                        position += 1
                        try expect(UInt8(ascii: "u"))
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw fail("lone low surrogate")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid code point") }
                    out.append(contentsOf: Array(String(Character(unicode)).utf8))
                default: throw fail("invalid escape")
                }
            case 0..<0x20: throw fail("control character in string")
            default: out.append(byte)
            }
        }
    }

    private mutating func hex4() throws(JSONError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            position += 1
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("invalid hex digit")
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}
