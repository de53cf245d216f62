public import PierStore

/// A parsed `postgres://` connection URL, in the libpq form:
///
///     postgres[ql]://[user[:password]@][host][:port][/database][?param=value&...]
///
/// User, password and database are percent-decoded. Parameters understood:
/// `sslmode` (`disable`, `allow`, `prefer` (the default, as in libpq), `require`,
/// `verify-ca`, `verify-full`), `host` (a folder holding the server's Unix socket
/// `.s.PGSQL.<port>`, as in libpq, or a host name), `port`, `user`, `password`, `dbname`,
/// `connect_timeout` (seconds), `application_name`, and Pier's own `pool_size` (the most
/// connections one store opens, default 10) and `query_timeout` (seconds one statement may
/// go unanswered, lock waits included, before its connection is given up; default 120).
/// Anything else is refused, so a typo is not silently ignored.
public struct PostgresURL: Sendable, Equatable {
    public enum TLSMode: String, Sendable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host = "localhost"
    public var port = 5432
    /// The Unix socket file, when `host` named a folder.
    public var unixSocketPath: String?
    public var user = "postgres"
    public var password: String?
    public var database: String?
    public var tls = TLSMode.prefer
    public var connectTimeoutSeconds = 10
    public var applicationName = "pier"
    public var poolSize = 10
    public var queryTimeoutSeconds = 120

    /// Parses `url`; a malformed one is `.invalid` with the reason.
    public init(_ url: String) throws(PierError) {
        func bad(_ why: String) -> PierError {
            PierError(.invalid, "PostgreSQL URL: \(why); expected postgres://user:password@host:port/database")
        }
        var rest = Substring(url)
        if rest.hasPrefix("postgres://") {
            rest = rest.dropFirst("postgres://".count)
        } else if rest.hasPrefix("postgresql://") {
            rest = rest.dropFirst("postgresql://".count)
        } else {
            throw bad("the scheme must be postgres:// or postgresql://")
        }
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path: Substring?
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        // The authority: the last @ separates the credentials (a password may hold one,
        // percent-encoded or not).
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = try Self.decode(credentials[..<colon], bad)
                password = try Self.decode(credentials[credentials.index(after: colon)...], bad)
            } else {
                user = try Self.decode(credentials, bad)
            }
            if user.isEmpty { throw bad("the user name is empty") }
        }
        var hostPart = rest
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { throw bad("an IPv6 address needs a closing ]") }
            host = String(hostPart[hostPart.index(after: hostPart.startIndex)..<close])
            hostPart = hostPart[hostPart.index(after: close)...]
            if !hostPart.isEmpty {
                guard hostPart.first == ":" else { throw bad("unexpected text after the IPv6 address") }
                port = try Self.port(hostPart.dropFirst(), bad)
            }
        } else if let colon = hostPart.lastIndex(of: ":") {
            host = try Self.decode(hostPart[..<colon], bad)
            port = try Self.port(hostPart[hostPart.index(after: colon)...], bad)
        } else if !hostPart.isEmpty {
            host = try Self.decode(hostPart, bad)
        }
        if let path, !path.isEmpty {
            database = try Self.decode(path, bad)
        }
        var socketFolder: String?
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let key: String
            let value: String
            if let equals = pair.firstIndex(of: "=") {
                key = try Self.decode(pair[..<equals], bad)
                value = try Self.decode(pair[pair.index(after: equals)...], bad)
            } else {
                throw bad("parameter '\(pair)' has no value")
            }
            switch key {
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    throw bad("sslmode must be disable, allow, prefer, require, verify-ca or verify-full, got '\(value)'")
                }
                tls = mode
            case "host":
                if value.hasPrefix("/") { socketFolder = value } else { host = value }
            case "port": port = try Self.port(Substring(value), bad)
            case "user": user = value
            case "password": password = value
            case "dbname": database = value
            case "application_name": applicationName = value
            case "connect_timeout":
                guard let seconds = Int(value), seconds > 0, seconds <= 3600 else { throw bad("connect_timeout must be 1-3600 seconds, got '\(value)'") }
                connectTimeoutSeconds = seconds
            case "query_timeout":
                guard let seconds = Int(value), seconds > 0, seconds <= 86_400 else { throw bad("query_timeout must be 1-86400 seconds, got '\(value)'") }
                queryTimeoutSeconds = seconds
            case "pool_size":
                guard let size = Int(value), size > 0, size <= 1000 else { throw bad("pool_size must be 1-1000, got '\(value)'") }
                poolSize = size
            default:
                throw bad("unknown parameter '\(key)'")
            }
        }
        if let socketFolder {
            unixSocketPath = socketFolder.hasSuffix("/") ? "\(socketFolder).s.PGSQL.\(port)" : "\(socketFolder)/.s.PGSQL.\(port)"
        } else if host.isEmpty {
            throw bad("the host is empty")
        }
    }

    /// Where the server is, for messages (never the password).
    public var location: String {
        if let unixSocketPath { return "\(unixSocketPath) as \(user)" }
        return host.contains(":") ? "[\(host)]:\(port) as \(user)" : "\(host):\(port) as \(user)"
    }

    private static func port(_ text: Substring, _ bad: (String) -> PierError) throws(PierError) -> Int {
        guard let port = Int(text), port > 0, port < 65536 else { throw bad("the port must be 1-65535, got '\(text)'") }
        return port
    }

    private static func decode(_ text: Substring, _ bad: (String) -> PierError) throws(PierError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard iterator.count >= 2, let high = hex(iterator.removeFirst()), let low = hex(iterator.removeFirst()) else {
                throw bad("a % must be followed by two hex digits")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else { throw bad("a percent-encoded part is not UTF-8") }
        return decoded
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
