import Testing
@testable import PierStore

/// The validator scans plain string bytes eight at a time and falls back to one byte at a
/// time at the first byte that needs a look. These tests put every kind of such byte at
/// every offset of those eight-byte windows, so a wrong skip or a missed flag shows up.
@Suite("JSON validator")
struct JSONValidatorTests {
    func problem(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { JSONValidator.objectProblem($0) }
    }

    /// `{"k":"<prefix x's><middle><suffix x's>"}` as bytes.
    func body(_ prefix: Int, _ middle: [UInt8], _ suffix: Int) -> [UInt8] {
        Array(#"{"k":""#.utf8) + Array(repeating: UInt8(ascii: "x"), count: prefix) + middle
            + Array(repeating: UInt8(ascii: "x"), count: suffix) + Array(#""}"#.utf8)
    }

    @Test("a byte that needs a look is found at every offset of the eight-byte scan")
    func everyOffset() {
        // (bytes inside the string, valid?, part of the expected message when invalid)
        let cases: [([UInt8], Bool, String)] = [
            ([0x01], false, "control character"),
            ([0x1F], false, "control character"),
            ([0x00], false, "NUL byte"),
            ([0x0A], false, "control character"),
            ([0x7F], true, ""),                                   // DEL is allowed in JSON strings
            ([0x20], true, ""),
            (Array(#"\""#.utf8), true, ""),
            (Array(#"\\"#.utf8), true, ""),
            (Array(#"\n"#.utf8), true, ""),
            (Array(#"\u00e9"#.utf8), true, ""),
            (Array(#"\ud83d\ude00"#.utf8), true, ""),
            (Array(#"\q"#.utf8), false, "invalid escape"),
            (Array(#"\ud800x"#.utf8), false, "lone surrogate"),
            ([0xC3, 0xA9], true, ""),                             // é
            ([0xE2, 0x82, 0xAC], true, ""),                       // €
            ([0xF0, 0x9F, 0x98, 0x80], true, ""),                 // 😀
            ([0xFF], false, "invalid UTF-8"),
            ([0x80], false, "invalid UTF-8"),
            ([0xC0, 0xAF], false, "invalid UTF-8"),               // overlong
            ([0xED, 0xA0, 0x80], false, "invalid UTF-8"),         // a surrogate in UTF-8
            ([0xC3], false, "invalid UTF-8"),                     // cut short
            (Array(#"""#.utf8), false, "expected ',' or '}'"),    // a bare quote ends the string early
        ]
        for (middle, valid, expected) in cases {
            for prefix in 0..<20 {
                for suffix in [0, 1, 7, 8, 9, 23] {
                    let found = problem(body(prefix, middle, suffix))
                    if valid {
                        #expect(found == nil, "\(middle) after \(prefix) bytes, \(suffix) after: \(found ?? "")")
                    } else {
                        #expect(found?.contains(expected) == true, "\(middle) after \(prefix) bytes, \(suffix) after: \(found ?? "accepted")")
                    }
                }
            }
        }
    }

    @Test("the error names the offset of the offending byte wherever it falls in a window")
    func offsets() {
        for prefix in 0..<24 {
            let bytes = body(prefix, [0x01], 16)
            #expect(problem(bytes) == "control character in a string at byte \(6 + prefix)")
        }
    }

    @Test("long plain strings, and several of them, pass")
    func longStrings() {
        let text = String(repeating: "abcdefghij", count: 100)
        let json = #"{"a":"\#(text)","b":["\#(text)","x"],"c":{"\#(text)":"\#(text)"}}"#
        #expect(problem(Array(json.utf8)) == nil)
        // An unterminated long string is still an error, not a read past the end.
        #expect(problem(Array(#"{"a":"\#(text)"#.utf8))?.contains("unterminated string") == true)
    }
}
