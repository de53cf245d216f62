/// Builds JSON text by appending bytes. Pier never parses record bodies on its hot paths:
/// SQLite validates and transforms JSON, and this writer only assembles output around
/// bodies that are already valid JSON text.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public var string: String { String(decoding: bytes, as: UTF8.self) }

    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Appends text that is already JSON (a record body).
    public mutating func rawJSON(_ text: UnsafeRawBufferPointer) { bytes.append(contentsOf: text) }
    public mutating func rawJSON(_ text: String) { bytes.append(contentsOf: text.utf8) }

    public mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { string(UnsafeRawBufferPointer($0)) }
    }

    public mutating func string(_ utf8: UnsafeRawBufferPointer) {
        bytes.append(UInt8(ascii: "\""))
        let hex: StaticString = "0123456789abcdef"
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(byte)
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(byte)
            case 0x0a: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
            case 0x0d: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
            case 0..<0x20:
                raw("\\u00")
                hex.withUTF8Buffer { digits in
                    bytes.append(digits[Int(byte >> 4)])
                    bytes.append(digits[Int(byte & 0xf)])
                }
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func number(_ value: Int64) { bytes.append(contentsOf: String(value).utf8) }

    public mutating func number(_ value: Double) {
        if value.isFinite {
            if value == value.rounded(.towardZero), abs(value) < 1e15 {
                bytes.append(contentsOf: String(Int64(value)).utf8)
                raw(".0")
            } else {
                bytes.append(contentsOf: value.description.utf8)
            }
        } else {
            raw("null")
        }
    }

    public mutating func bool(_ value: Bool) { if value { raw("true") } else { raw("false") } }
    public mutating func null() { raw("null") }

    public mutating func key(_ name: StaticString) {
        bytes.append(UInt8(ascii: "\""))
        raw(name)
        raw("\":")
    }

    public mutating func base64(_ data: UnsafeRawBufferPointer) {
        let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        bytes.append(UInt8(ascii: "\""))
        var i = 0
        while i + 3 <= data.count {
            let n = UInt32(data[i]) << 16 | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2])
            for shift in [18, 12, 6, 0] { bytes.append(alphabet[Int((n >> UInt32(shift)) & 63)]) }
            i += 3
        }
        let rest = data.count - i
        if rest > 0 {
            var n = UInt32(data[i]) << 16
            if rest == 2 { n |= UInt32(data[i + 1]) << 8 }
            bytes.append(alphabet[Int((n >> 18) & 63)])
            bytes.append(alphabet[Int((n >> 12) & 63)])
            bytes.append(rest == 2 ? alphabet[Int((n >> 6) & 63)] : UInt8(ascii: "="))
            bytes.append(UInt8(ascii: "="))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension JSONWriter {
    /// A JSON array of strings (for binding a list to SQLite's `json_each`).
    public static func stringArray<S: Sequence>(_ values: S) -> String where S.Element == String {
        var out = JSONWriter()
        out.raw("[")
        for (i, value) in values.enumerated() {
            if i > 0 { out.raw(",") }
            out.string(value)
        }
        out.raw("]")
        return out.string
    }
}

/// The SQL that keeps a record's `changed_fields` exact: the top-level members of `new`
/// that differ from the server copy `base` (added, removed or changed), as a sorted JSON
/// array. Shared by local writes, rebases after a push and conflict resolutions.
package enum ChangedFields {
    package static func sql(new: String, base: String) -> String {
        """
        (SELECT json_group_array(k) FROM (
            SELECT coalesce(n.key, s.key) AS k FROM json_each(\(new)) AS n
            FULL JOIN json_each(\(base)) AS s ON n.key = s.key
            WHERE n.key IS NULL OR s.key IS NULL OR n.type IS NOT s.type OR n.value IS NOT s.value
            ORDER BY k))
        """
    }
}
