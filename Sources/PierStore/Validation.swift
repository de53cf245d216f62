/// Limits and checks for names, ids and bodies. The limits are part of the public
/// contract (documented in pier.h and docs/C-API.md).
public enum Limits {
    /// Collection names: 1 to 128 bytes of UTF-8, no NUL, not starting with `pier_`... see `validateCollection`.
    public static let maxCollectionBytes = 128
    /// Record ids: 1 to 256 bytes of UTF-8, no NUL and no control characters.
    public static let maxIdBytes = 256
    /// Scope names: 1 to 256 bytes of UTF-8.
    public static let maxScopeBytes = 256
    /// Default maximum size of a record body (1 MiB); configurable per store up to `maxBodyBytesCeiling`.
    public static let defaultMaxBodyBytes = 1 << 20
    /// The largest body a store can be configured to accept (64 MiB).
    public static let maxBodyBytesCeiling = 64 << 20
}

enum Validate {
    static func name(_ value: String, what: String, max: Int) throws(PierError) {
        let count = value.utf8.count
        guard count >= 1, count <= max else {
            throw PierError(.invalid, "\(what) must be 1-\(max) bytes of UTF-8, got \(count)")
        }
        let control = value.utf8.withContiguousStorageIfAvailable { bytes in bytes.first { $0 < 0x20 || $0 == 0x7f } }
            ?? value.utf8.first { $0 < 0x20 || $0 == 0x7f }
        if let byte = control {
            throw PierError(.invalid, "\(what) must not contain control characters (found byte 0x\(String(byte, radix: 16)))")
        }
    }

    static func collection(_ value: String) throws(PierError) {
        try name(value, what: "collection name", max: Limits.maxCollectionBytes)
    }

    static func id(_ value: String) throws(PierError) {
        try name(value, what: "record id", max: Limits.maxIdBytes)
    }

    static func scope(_ value: String) throws(PierError) {
        try name(value, what: "scope", max: Limits.maxScopeBytes)
    }

    /// Cheap structural check before SQLite validates the JSON: the first significant byte
    /// must open an object. Returns nil when it does, otherwise the JSON type found.
    static func objectOpening(_ body: UnsafeRawBufferPointer) -> String? {
        for byte in body {
            switch byte {
            case 0x20, 0x09, 0x0a, 0x0d: continue
            case UInt8(ascii: "{"): return nil
            case UInt8(ascii: "["): return "an array"
            case UInt8(ascii: "\""): return "a string"
            case UInt8(ascii: "t"), UInt8(ascii: "f"): return "a boolean"
            case UInt8(ascii: "n"): return "null"
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return "a number"
            default: return "text that is not JSON"
            }
        }
        return "an empty body"
    }
}

/// Lends a string's UTF-8 bytes to a typed-throwing body (the standard library's
/// `withUTF8` is untyped `rethrows`).
public func withUTF8Bytes<T>(_ string: String, _ body: (UnsafeRawBufferPointer) throws(PierError) -> T) throws(PierError) -> T {
    var string = string
    let result: Result<T, PierError> = string.withUTF8 { buffer in
        do throws(PierError) { return .success(try body(UnsafeRawBufferPointer(buffer))) } catch { return .failure(error) }
    }
    return try result.get()
}

/// Lends an array's bytes to a typed-throwing body.
public func withBytes<T>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(PierError) -> T) throws(PierError) -> T {
    let result: Result<T, PierError> = bytes.withUnsafeBytes { buffer in
        do throws(PierError) { return .success(try body(buffer)) } catch { return .failure(error) }
    }
    return try result.get()
}
