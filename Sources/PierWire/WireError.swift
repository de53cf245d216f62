/// The one error of PierWire: a frame or a message that cannot be decoded (or encoded).
///
/// Every malformed, truncated, oversized or otherwise hostile input ends in a `WireError`;
/// the decoder never traps. `PierC` maps it to `PIER_EPROTOCOL` (`statusCode`).
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of fault was found; tests and callers can branch on it without parsing text.
    public enum Fault: String, Sendable, Hashable {
        /// The input ends before the structure it declares (header, payload, field, column).
        case truncated
        /// The first four bytes are not `PIER`.
        case badMagic
        /// The format version (or the minimum reader version) is not one this module reads.
        case unsupportedVersion
        /// The message type byte names no message this version knows.
        case unknownMessageType
        /// The compression algorithm is unknown, or the compressed data is corrupt.
        case compression
        /// The CRC-32 in the header does not match the frame.
        case checksum
        /// A declared size or count exceeds a configured `WireLimits` value.
        case limitExceeded
        /// Bytes remain after the end of the frame, a column or the payload.
        case trailingBytes
        /// A value is out of range, a reserved bit or enumeration value is used, a string is
        /// not UTF-8, or a length contradicts its container.
        case malformed
    }

    /// The C status code every `WireError` maps to: `PIER_EPROTOCOL`.
    public static let statusCode: Int32 = -15

    /// The kind of fault.
    public var fault: Fault
    /// What is wrong, naming the field and the numbers involved.
    public var message: String

    /// The C status code of this error (always `statusCode`).
    public var code: Int32 { Self.statusCode }

    /// Creates an error of the given kind.
    public init(_ fault: Fault, _ message: String) {
        self.fault = fault
        self.message = message
    }

    /// `PIER_EPROTOCOL (fault): message`.
    public var description: String { "PIER_EPROTOCOL (\(fault.rawValue)): \(message)" }
}
