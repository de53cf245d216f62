import Foundation
public import PierServer
public import PierStore

/// The whole `pier serve` configuration file: the sync server's own settings
/// (`ServerConfig.parse`: policies, collections, limits) plus three sections of its own:
///
/// ```json
/// { "store": "/var/lib/pier/master.pier",
///   "http": { "listen": "0.0.0.0:8443", "max_request_bytes": 33554432, "max_concurrent_syncs": 8,
///             "retry_after_seconds": 1, "tls": { "certificate_file": "cert.pem", "private_key_file": "key.pem" } },
///   "auth": { "jwt": { "hs256_secret_file": "jwt.secret", "es256_public_key_file": "jwt-es256.pem",
///                      "issuer": "https://auth.example.com", "audience": "pier", "leeway_seconds": 30 },
///             "api_keys": [ { "key": "...", "user": "backoffice", "read_scopes": ["*"], "write_scopes": ["*"], "admin": true } ],
///             "api_keys_file": "keys.json" },
///   "default_policy": "last_write_wins",
///   "collections": { "jobs": { "policy": "manual" } } }
/// ```
///
/// Unknown keys are errors. Relative file paths (the store's too) are resolved against
/// the configuration file's folder.
public struct ServeConfiguration: Sendable {
    /// The master store: an SQLite file path or a `postgres://` URL.
    public var store: String?
    /// The sync server's policies and limits (every key not in the sections above).
    public var server: ServerConfig
    /// The `http` and `auth` sections.
    public var http: HTTPConfiguration

    /// A configuration from its parts.
    public init(store: String? = nil, server: ServerConfig = ServerConfig(), http: HTTPConfiguration = HTTPConfiguration()) {
        self.store = store
        self.server = server
        self.http = http
    }

    /// Reads and parses a configuration file.
    public static func load(path: String) throws(PierError) -> ServeConfiguration {
        let text = try readText(path, what: "configuration file")
        let folder = (path as NSString).deletingLastPathComponent
        do throws(PierError) {
            return try parse(json: text, baseDirectory: folder.isEmpty ? "." : folder)
        } catch {
            throw PierError(error.code, "\(path): \(error.message)")
        }
    }

    /// Parses configuration text.
    public static func parse(json: String, baseDirectory: String = ".") throws(PierError) -> ServeConfiguration {
        let root = try JSONValue.parse(json, what: "the configuration")
        guard case .object(var members) = root else {
            throw PierError(.invalid, "the configuration must be a JSON object")
        }
        var result = ServeConfiguration()
        let files = FileResolver(base: baseDirectory)
        if let store = members.removeValue(forKey: "store") {
            let spec = try store.string("store")
            result.store = spec.contains("://") ? spec : files.path(spec)
        }
        if let http = members.removeValue(forKey: "http") { try parseHTTP(http, into: &result.http, files) }
        if let auth = members.removeValue(forKey: "auth") { try parseAuth(auth, into: &result.http.auth, files) }
        // Everything else belongs to the sync server, which rejects unknown keys itself.
        result.server = try ServerConfig.parse(json: JSONValue.object(members).serialized)
        return result
    }

    private static func parseHTTP(_ value: JSONValue, into http: inout HTTPConfiguration, _ files: FileResolver) throws(PierError) {
        for (key, item) in try value.object("http").sorted(by: { $0.key < $1.key }) {
            let context = "http.\(key)"
            switch key {
            case "listen": try http.setListen(try item.string(context))
            case "max_request_bytes": http.maxRequestBytes = try item.integer(context, min: 1)
            case "max_concurrent_syncs": http.maxConcurrentSyncs = try item.integer(context, min: 1)
            case "retry_after_seconds": http.retryAfterSeconds = try item.integer(context, min: 0)
            case "idle_timeout_seconds": http.idleTimeoutSeconds = try item.integer(context, min: 1)
            case "request_timeout_seconds": http.requestTimeoutSeconds = try item.integer(context, min: 1)
            case "request_min_bytes_per_second": http.requestMinimumBytesPerSecond = try item.integer(context, min: 1)
            case "tls":
                var certificate: String?
                var key: String?
                for (name, entry) in try item.object(context) {
                    switch name {
                    case "certificate_file": certificate = files.path(try entry.string("\(context).\(name)"))
                    case "private_key_file": key = files.path(try entry.string("\(context).\(name)"))
                    default: throw PierError(.invalid, "unknown key \(name.debugDescription) in \(context); use certificate_file and private_key_file")
                    }
                }
                guard let certificate, let key else {
                    throw PierError(.invalid, "\(context) needs both certificate_file and private_key_file")
                }
                http.tls = TLSFiles(certificatePath: certificate, privateKeyPath: key)
            default:
                throw PierError(.invalid, "unknown key \(key.debugDescription) in http; known: listen, max_request_bytes, max_concurrent_syncs, retry_after_seconds, idle_timeout_seconds, request_timeout_seconds, request_min_bytes_per_second, tls")
            }
        }
    }

    private static func parseAuth(_ value: JSONValue, into auth: inout AuthConfiguration, _ files: FileResolver) throws(PierError) {
        for (key, item) in try value.object("auth").sorted(by: { $0.key < $1.key }) {
            switch key {
            case "jwt": try parseJWT(item, into: &auth.jwt, files)
            case "api_keys": auth.apiKeys += try parseAPIKeys(item, context: "auth.api_keys")
            case "api_keys_file":
                auth.apiKeys += try loadAPIKeys(path: files.path(try item.string("auth.api_keys_file")))
            default:
                throw PierError(.invalid, "unknown key \(key.debugDescription) in auth; known: jwt, api_keys, api_keys_file")
            }
        }
    }

    private static func parseJWT(_ value: JSONValue, into jwt: inout JWTConfiguration, _ files: FileResolver) throws(PierError) {
        for (key, item) in try value.object("auth.jwt").sorted(by: { $0.key < $1.key }) {
            let context = "auth.jwt.\(key)"
            switch key {
            case "hs256_secret": jwt.hs256Secret = Array(try item.string(context).utf8)
            case "hs256_secret_file": jwt.hs256Secret = try readSecretFile(files.path(try item.string(context)))
            case "es256_public_key_file": jwt.es256PublicKeyPEM = try readText(files.path(try item.string(context)), what: "ES256 public key")
            case "rs256_public_key_file": jwt.rs256PublicKeyPEM = try readText(files.path(try item.string(context)), what: "RS256 public key")
            case "issuer": jwt.issuer = try item.string(context)
            case "audience": jwt.audience = try item.string(context)
            case "leeway_seconds": jwt.leewaySeconds = try item.integer(context, min: 0)
            case "hs256_key_id": jwt.keyIDs["HS256"] = try item.string(context)
            case "es256_key_id": jwt.keyIDs["ES256"] = try item.string(context)
            case "rs256_key_id": jwt.keyIDs["RS256"] = try item.string(context)
            default:
                throw PierError(.invalid, "unknown key \(key.debugDescription) in auth.jwt; known: hs256_secret, hs256_secret_file, es256_public_key_file, rs256_public_key_file, hs256_key_id, es256_key_id, rs256_key_id, issuer, audience, leeway_seconds")
            }
        }
        if let secret = jwt.hs256Secret, secret.count < 32 {
            throw PierError(.invalid, "the HS256 secret is \(secret.count) bytes; use at least 32 random bytes")
        }
    }

    /// Reads an API key file: a JSON array of `{"key", "user", "read_scopes", "write_scopes", "admin"}`.
    public static func loadAPIKeys(path: String) throws(PierError) -> [APIKey] {
        let text = try readText(path, what: "API key file")
        do throws(PierError) {
            return try parseAPIKeys(try JSONValue.parse(text, what: "the API key file"), context: path)
        } catch {
            throw PierError(error.code, "\(path): \(error.message)")
        }
    }

    static func parseAPIKeys(_ value: JSONValue, context: String) throws(PierError) -> [APIKey] {
        guard case .array(let items) = value else {
            throw PierError(.invalid, "\(context) must be an array of {\"key\", \"user\", \"read_scopes\", \"write_scopes\", \"admin\"}")
        }
        var keys: [APIKey] = []
        for (index, item) in items.enumerated() {
            let here = "\(context)[\(index)]"
            var key: String?
            var user: String?
            var read: [String]?
            var write: [String]?
            var admin = false
            for (name, entry) in try item.object(here) {
                switch name {
                case "key": key = try entry.string("\(here).key")
                case "user": user = try entry.string("\(here).user")
                case "read_scopes": read = try entry.strings("\(here).read_scopes")
                case "write_scopes": write = try entry.strings("\(here).write_scopes")
                case "admin": admin = try entry.bool("\(here).admin")
                default:
                    throw PierError(.invalid, "unknown key \(name.debugDescription) in \(here); known: key, user, read_scopes, write_scopes, admin")
                }
            }
            guard let key, key.utf8.count >= 16 else { throw PierError(.invalid, "\(here).key must be a string of at least 16 characters") }
            guard let user, !user.isEmpty else { throw PierError(.invalid, "\(here).user must be a non-empty string") }
            keys.append(APIKey(key: key, identity: Identity(user: user, readScopes: ScopeList.scopes(read),
                                                            writeScopes: ScopeList.scopes(write), isAdmin: admin)))
        }
        return keys
    }

    /// Reads a secret file; one trailing newline is not part of the secret.
    public static func readSecretFile(_ path: String) throws(PierError) -> [UInt8] {
        var text = try readText(path, what: "secret file")
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        return Array(text.utf8)
    }

    /// Reads a UTF-8 text file; `what` names it in the error.
    public static func readText(_ path: String, what: String) throws(PierError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PierError(.io, "cannot read the \(what) \(path.debugDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PierError(.invalid, "the \(what) \(path.debugDescription) is not UTF-8 text")
        }
        return text
    }
}

struct FileResolver {
    let base: String

    func path(_ path: String) -> String {
        path.hasPrefix("/") ? path : (base as NSString).appendingPathComponent(path)
    }
}

/// A parsed JSON value, enough for configuration files.
enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    static func parse(_ text: String, what: String) throws(PierError) -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch let DecodingError.dataCorrupted(context) {
            let detail = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String ?? context.debugDescription
            throw PierError(.invalid, "\(what) is not valid JSON: \(detail)")
        } catch {
            throw PierError(.invalid, "\(what) is not valid JSON: \(error)")
        }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    var serialized: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    func object(_ context: String) throws(PierError) -> [String: JSONValue] {
        guard case .object(let members) = self else { throw PierError(.invalid, "\(context) must be an object") }
        return members
    }

    func string(_ context: String) throws(PierError) -> String {
        guard case .string(let text) = self else { throw PierError(.invalid, "\(context) must be a string") }
        return text
    }

    func strings(_ context: String) throws(PierError) -> [String] {
        guard case .array(let items) = self else { throw PierError(.invalid, "\(context) must be an array of strings") }
        var out: [String] = []
        for item in items {
            guard case .string(let text) = item else { throw PierError(.invalid, "\(context) must be an array of strings") }
            out.append(text)
        }
        return out
    }

    func integer(_ context: String, min: Int) throws(PierError) -> Int {
        guard case .integer(let number) = self, number >= min, number <= Int64(Int32.max) else {
            throw PierError(.invalid, "\(context) must be an integer of at least \(min)")
        }
        return Int(number)
    }

    func bool(_ context: String) throws(PierError) -> Bool {
        guard case .bool(let value) = self else { throw PierError(.invalid, "\(context) must be true or false") }
        return value
    }
}
