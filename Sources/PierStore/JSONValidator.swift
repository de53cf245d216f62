/// Validates that bytes are exactly one JSON object (RFC 8259) in well-formed UTF-8, in a
/// single pass over the buffer. It replaces SQLite's `json_type()` check on every write:
/// it does not build anything, so it costs a few instructions per byte.
package enum JSONValidator {
    static let maxDepth = 256

    /// nil when `bytes` hold one JSON object; otherwise what is wrong and where.
    package static func objectProblem(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else {
            return "an empty body"
        }
        var scanner = Scanner(p: base, end: bytes.count)
        scanner.space()
        guard scanner.i < scanner.end, scanner.p[scanner.i] == UInt8(ascii: "{") else { return "not a JSON object" }
        guard scanner.value(depth: 0) else { return scanner.problem ?? "invalid JSON" }
        scanner.space()
        if scanner.i != scanner.end { return "unexpected text after the JSON object at byte \(scanner.i)" }
        return nil
    }

    private struct Scanner {
        let p: UnsafePointer<UInt8>
        let end: Int
        var i = 0
        var problem: String?

        init(p: UnsafePointer<UInt8>, end: Int) {
            self.p = p
            self.end = end
        }

        @inline(__always) mutating func space() {
            while i < end {
                let c = p[i]
                if c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09 { i += 1 } else { return }
            }
        }

        mutating func fail(_ what: String) -> Bool {
            if problem == nil { problem = "\(what) at byte \(i)" }
            return false
        }

        mutating func value(depth: Int) -> Bool {
            guard i < end else { return fail("missing value") }
            switch p[i] {
            case UInt8(ascii: "{"):
                guard depth < JSONValidator.maxDepth else { return fail("nested deeper than \(JSONValidator.maxDepth) levels") }
                i += 1
                space()
                if i < end && p[i] == UInt8(ascii: "}") { i += 1; return true }
                while true {
                    space()
                    guard i < end, p[i] == UInt8(ascii: "\"") else { return fail("expected a member name") }
                    guard string() else { return false }
                    space()
                    guard i < end, p[i] == UInt8(ascii: ":") else { return fail("expected ':'") }
                    i += 1
                    space()
                    guard value(depth: depth + 1) else { return false }
                    space()
                    guard i < end else { return fail("unterminated object") }
                    let c = p[i]
                    i += 1
                    if c == UInt8(ascii: "}") { return true }
                    if c != UInt8(ascii: ",") { i -= 1; return fail("expected ',' or '}'") }
                }
            case UInt8(ascii: "["):
                guard depth < JSONValidator.maxDepth else { return fail("nested deeper than \(JSONValidator.maxDepth) levels") }
                i += 1
                space()
                if i < end && p[i] == UInt8(ascii: "]") { i += 1; return true }
                while true {
                    space()
                    guard value(depth: depth + 1) else { return false }
                    space()
                    guard i < end else { return fail("unterminated array") }
                    let c = p[i]
                    i += 1
                    if c == UInt8(ascii: "]") { return true }
                    if c != UInt8(ascii: ",") { i -= 1; return fail("expected ',' or ']'") }
                }
            case UInt8(ascii: "\""): return string()
            case UInt8(ascii: "t"): return literal(0x74_72_75_65, 4)  // true
            case UInt8(ascii: "f"): return literal5()                  // false
            case UInt8(ascii: "n"): return literal(0x6e_75_6c_6c, 4)  // null
            default: return number()
            }
        }

        @inline(__always) mutating func literal(_ word: UInt32, _ length: Int) -> Bool {
            guard i + length <= end else { return fail("truncated literal") }
            let got = UInt32(p[i]) << 24 | UInt32(p[i + 1]) << 16 | UInt32(p[i + 2]) << 8 | UInt32(p[i + 3])
            guard got == word else { return fail("unknown literal") }
            i += length
            return true
        }

        mutating func literal5() -> Bool {
            guard i + 5 <= end, p[i + 1] == UInt8(ascii: "a"), p[i + 2] == UInt8(ascii: "l"), p[i + 3] == UInt8(ascii: "s"),
                  p[i + 4] == UInt8(ascii: "e") else { return fail("unknown literal") }
            i += 5
            return true
        }

        @inline(__always) func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

        mutating func number() -> Bool {
            if i < end && p[i] == UInt8(ascii: "-") { i += 1 }
            guard i < end, isDigit(p[i]) else { return fail("unexpected character") }
            if p[i] == UInt8(ascii: "0") { i += 1 } else { while i < end && isDigit(p[i]) { i += 1 } }
            if i < end && p[i] == UInt8(ascii: ".") {
                i += 1
                guard i < end, isDigit(p[i]) else { return fail("digits expected after '.'") }
                while i < end && isDigit(p[i]) { i += 1 }
            }
            if i < end && (p[i] | 0x20) == UInt8(ascii: "e") {
                i += 1
                if i < end && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) { i += 1 }
                guard i < end, isDigit(p[i]) else { return fail("digits expected in the exponent") }
                while i < end && isDigit(p[i]) { i += 1 }
            }
            return true
        }

        /// A string, from its opening quote; checks escapes, control characters and UTF-8.
        mutating func string() -> Bool {
            i += 1
            while i < end {
                // The common case first: a printable ASCII byte that is neither quote nor backslash.
                var j = i
                // Eight bytes at a time while none of them needs a look: no byte below 0x20,
                // none at or above 0x80, no quote, no backslash (SWAR "has zero byte" tests).
                while j &+ 8 <= end {
                    let w = UnsafeRawPointer(p + j).loadUnaligned(as: UInt64.self)
                    let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
                    let quote = w ^ (ones &* 0x22), backslash = w ^ (ones &* 0x5C)
                    let flagged = ((w &- ones &* 0x20) | (quote &- ones) & ~quote | (backslash &- ones) & ~backslash | w) & highs
                    if flagged != 0 {
                        #if _endian(little)
                        // Borrows only run towards later bytes, so the lowest flag is exact:
                        // skip straight to the first byte that needs the loop below.
                        j &+= flagged.trailingZeroBitCount &>> 3
                        #endif
                        break
                    }
                    j &+= 8
                }
                while j < end {
                    let b = p[j]
                    if b &- 0x20 < 0x60 && b != 0x22 && b != 0x5C { j &+= 1 } else { break }
                }
                i = j
                guard i < end else { break }
                let c = p[i]
                if c == UInt8(ascii: "\"") { i += 1; return true }
                if c == UInt8(ascii: "\\") {
                    guard i + 1 < end else { return fail("unterminated escape") }
                    switch p[i + 1] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                         UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        i += 2
                    case UInt8(ascii: "u"):
                        guard let unit = hex4(at: i + 2) else { return fail("invalid \\u escape") }
                        i += 6
                        if unit >= 0xD800 && unit <= 0xDBFF {
                            // A high surrogate must be followed by an escaped low surrogate.
                            guard i + 1 < end, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u"),
                                  let low = hex4(at: i + 2), low >= 0xDC00 && low <= 0xDFFF else { return fail("lone surrogate in a \\u escape") }
                            i += 6
                        } else if unit >= 0xDC00 && unit <= 0xDFFF {
                            return fail("lone surrogate in a \\u escape")
                        }
                    default: return fail("invalid escape")
                    }
                    continue
                }
                if c < 0x20 { return fail(c == 0 ? "NUL byte" : "control character in a string") }
                if c < 0x80 { i += 1; continue }
                guard utf8Sequence() else { return fail("invalid UTF-8") }
            }
            return fail("unterminated string")
        }

        /// Four hex digits at `at`, or nil.
        @inline(__always) func hex4(at: Int) -> UInt32? {
            guard at + 4 <= end else { return nil }
            var value: UInt32 = 0
            for k in 0..<4 {
                let c = p[at + k]
                let digit: UInt8
                if isDigit(c) { digit = c &- UInt8(ascii: "0") } else {
                    let h = c | 0x20
                    guard h >= UInt8(ascii: "a") && h <= UInt8(ascii: "f") else { return nil }
                    digit = h &- UInt8(ascii: "a") &+ 10
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }

        /// One multi-byte UTF-8 sequence starting at `i` (no overlongs, surrogates or > U+10FFFF).
        @inline(__always) mutating func utf8Sequence() -> Bool {
            let c = p[i]
            let length: Int
            var scalar: UInt32
            switch c {
            case 0xC2...0xDF: length = 2; scalar = UInt32(c & 0x1F)
            case 0xE0...0xEF: length = 3; scalar = UInt32(c & 0x0F)
            case 0xF0...0xF4: length = 4; scalar = UInt32(c & 0x07)
            default: return false
            }
            guard i + length <= end else { return false }
            for k in 1..<length {
                let next = p[i + k]
                guard next & 0xC0 == 0x80 else { return false }
                scalar = scalar << 6 | UInt32(next & 0x3F)
            }
            if (length == 3 && (scalar < 0x800 || (0xD800...0xDFFF).contains(scalar))) || (length == 4 && (scalar < 0x10000 || scalar > 0x10FFFF)) {
                return false
            }
            i += length
            return true
        }
    }
}
