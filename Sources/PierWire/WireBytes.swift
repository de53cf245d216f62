/// An immutable run of bytes, such as a record body (JSON object text), that may share
/// storage with the frame it was decoded from.
///
/// Decoding a frame copies no body: each `WireBytes` points into the decompressed payload,
/// which stays alive as long as any of them does. Keep a body beyond the message's life
/// with `Array(body)` if the rest of the frame should be freed. Indices start at 0.
public struct WireBytes: Sendable, Hashable, RandomAccessCollection, ExpressibleByArrayLiteral,
    ExpressibleByStringLiteral, CustomStringConvertible
{
    @usableFromInline let storage: [UInt8]
    @usableFromInline let offset: Int
    /// The number of bytes.
    public let count: Int

    /// Bytes copied from (or, for an array, sharing the storage of) `bytes`.
    public init(_ bytes: [UInt8]) {
        storage = bytes
        offset = 0
        count = bytes.count
    }

    /// The UTF-8 bytes of `text`.
    public init(_ text: String) {
        self.init(Array(text.utf8))
    }

    /// Bytes from an array literal.
    public init(arrayLiteral elements: UInt8...) {
        self.init(elements)
    }

    /// The UTF-8 bytes of a string literal (handy for JSON bodies: `body: "{\"a\":1}"`).
    public init(stringLiteral value: String) {
        self.init(value)
    }

    /// A view of `count` bytes of `storage` from `offset` (already bounds-checked).
    init(storage: [UInt8], offset: Int, count: Int) {
        self.storage = storage
        self.offset = offset
        self.count = count
    }

    /// Always 0.
    public var startIndex: Int { 0 }
    /// `count`.
    public var endIndex: Int { count }

    /// The byte at `position` (0 ..< count).
    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < count, "WireBytes index \(position) out of range 0..<\(count)")
        return storage[offset + position]
    }

    /// Calls `body` with the bytes; the pointer is valid only inside `body`.
    /// Inlinable so that callers in other modules get it specialized: the generic version
    /// looks up `Result<R, E>`'s metadata on every call, which showed in apply profiles.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = storage.withUnsafeBytes { all in
            do throws(E) {
                return .success(try body(UnsafeRawBufferPointer(rebasing: all[offset..<offset + count])))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The bytes as text, if they are valid UTF-8.
    public var utf8String: String? {
        withUnsafeBytes { makeString($0) }
    }

    /// The text if it is UTF-8, else a note of the size.
    public var description: String {
        utf8String ?? "<\(count) bytes, not UTF-8>"
    }

    /// Equal when the bytes are equal, wherever they are stored.
    public static func == (lhs: WireBytes, rhs: WireBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in a.elementsEqual(b) } }
    }

    /// Hashes the bytes.
    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
