/// The one error type of Pier's Swift modules.
///
/// `code` matches the C status codes of `include/pier.h` one to one (they are never
/// renumbered); `message` says what went wrong and what to do about it.
public struct PierError: Error, Sendable, CustomStringConvertible, Equatable {
    /// A status code; the raw value is the `PIER_E...` constant of the C header.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let internalError = Code(rawValue: -1)
        public static let invalid = Code(rawValue: -2)
        public static let notFound = Code(rawValue: -3)
        public static let closed = Code(rawValue: -4)
        public static let notADatabase = Code(rawValue: -5)
        public static let version = Code(rawValue: -6)
        public static let readOnly = Code(rawValue: -7)
        public static let state = Code(rawValue: -8)
        public static let busy = Code(rawValue: -9)
        public static let io = Code(rawValue: -10)
        public static let noMemory = Code(rawValue: -11)
        public static let corrupt = Code(rawValue: -12)
        public static let key = Code(rawValue: -13)
        public static let conflict = Code(rawValue: -14)
        public static let `protocol` = Code(rawValue: -15)
        public static let network = Code(rawValue: -16)
        public static let auth = Code(rawValue: -17)
        public static let forbidden = Code(rawValue: -18)
        public static let limit = Code(rawValue: -19)
        public static let cancelled = Code(rawValue: -20)

        /// The C constant's name, e.g. `PIER_EINVALID`.
        public var name: String {
            switch rawValue {
            case 0: return "PIER_OK"
            case -1: return "PIER_ERROR"
            case -2: return "PIER_EINVALID"
            case -3: return "PIER_ENOTFOUND"
            case -4: return "PIER_ECLOSED"
            case -5: return "PIER_ENOTDB"
            case -6: return "PIER_EVERSION"
            case -7: return "PIER_EREADONLY"
            case -8: return "PIER_ESTATE"
            case -9: return "PIER_EBUSY"
            case -10: return "PIER_EIO"
            case -11: return "PIER_ENOMEM"
            case -12: return "PIER_ECORRUPT"
            case -13: return "PIER_EKEY"
            case -14: return "PIER_ECONFLICT"
            case -15: return "PIER_EPROTOCOL"
            case -16: return "PIER_ENETWORK"
            case -17: return "PIER_EAUTH"
            case -18: return "PIER_EFORBIDDEN"
            case -19: return "PIER_ELIMIT"
            case -20: return "PIER_ECANCELLED"
            default: return "PIER_E(\(rawValue))"
            }
        }

        /// A short fixed description of the code (what `pier_errstr` returns).
        public var summary: String {
            switch rawValue {
            case 0: return "not an error"
            case -1: return "internal error"
            case -2: return "invalid argument"
            case -3: return "not found"
            case -4: return "handle is closed"
            case -5: return "file is not a Pier database"
            case -6: return "unsupported store version"
            case -7: return "read-only"
            case -8: return "call not valid in the current state"
            case -9: return "database is busy"
            case -10: return "I/O error"
            case -11: return "out of memory"
            case -12: return "data is corrupt"
            case -13: return "wrong or missing key"
            case -14: return "unresolved conflict"
            case -15: return "protocol error"
            case -16: return "network error"
            case -17: return "authentication failed"
            case -18: return "forbidden"
            case -19: return "limit exceeded"
            case -20: return "cancelled"
            default: return "unknown status code"
            }
        }

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// The lower-level error this one wraps, rendered as text (kept `Sendable` and `Equatable`).
    public var underlying: String?

    public init(_ code: Code, _ message: String, underlying: String? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        if let underlying { return "\(code.name): \(message) (\(underlying))" }
        return "\(code.name): \(message)"
    }
}
