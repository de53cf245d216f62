public import PierServer
public import PierStore

/// How `pier serve` (or an embedding app) exposes a `SyncServer` over HTTP.
public struct HTTPConfiguration: Sendable {
    /// The address to bind: a host name or IP address, and a port (0 = any free port).
    public var host: String
    /// The port; 0 picks a free one (`RunningServer.port` tells which).
    public var port: Int
    /// Largest request body accepted on `POST /v1/sync` (413 beyond it); nil = the sync
    /// server's `max_frame_bytes`.
    public var maxRequestBytes: Int?
    /// Syncs handled at the same time; a sync beyond this is answered 429 with `Retry-After`.
    /// Each runs on a thread of the server's own pool, never on an event loop.
    public var maxConcurrentSyncs: Int
    /// The `Retry-After` value (seconds) sent with 429 and 503.
    public var retryAfterSeconds: Int
    /// A connection that sends nothing for this long, between requests or in the middle
    /// of one, is closed (seconds). A request being handled is never cut off.
    public var idleTimeoutSeconds: Int
    /// Seconds a sync request's body may take before its pace is checked: from then on it
    /// must have arrived at an average of `requestMinimumBytesPerSecond` since the headers,
    /// or it is answered 408 and the connection closed. A slow-drip client (each byte resets
    /// the idle timer) cannot hold a connection open; a large batch on a slow link can.
    public var requestTimeoutSeconds: Int
    /// The slowest average pace of a request body accepted after `requestTimeoutSeconds`.
    public var requestMinimumBytesPerSecond: Int
    /// Serve HTTPS with this certificate chain and private key (PEM files).
    public var tls: TLSFiles?
    /// Who may sync, and as whom.
    public var auth: AuthConfiguration

    /// A configuration; the defaults listen on 127.0.0.1:8080 and accept no credential.
    public init(host: String = "127.0.0.1", port: Int = 8080, maxRequestBytes: Int? = nil, maxConcurrentSyncs: Int = 8,
                retryAfterSeconds: Int = 1, idleTimeoutSeconds: Int = 60, requestTimeoutSeconds: Int = 30,
                requestMinimumBytesPerSecond: Int = 1024, tls: TLSFiles? = nil,
                auth: AuthConfiguration = AuthConfiguration()) {
        self.host = host
        self.port = port
        self.maxRequestBytes = maxRequestBytes
        self.maxConcurrentSyncs = maxConcurrentSyncs
        self.retryAfterSeconds = retryAfterSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.requestTimeoutSeconds = requestTimeoutSeconds
        self.requestMinimumBytesPerSecond = requestMinimumBytesPerSecond
        self.tls = tls
        self.auth = auth
    }

    /// Sets host and port from `host:port` (`[::1]:8080` for IPv6 addresses).
    public mutating func setListen(_ address: String) throws(PierError) {
        (host, port) = try Self.parseListen(address)
    }

    static func parseListen(_ address: String) throws(PierError) -> (String, Int) {
        let problem = PierError(.invalid, "listen address \(address.debugDescription) must be HOST:PORT, e.g. 127.0.0.1:8080, 0.0.0.0:443 or [::1]:8080 (port 0-65535)")
        var host: Substring
        let portText: Substring
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]") else { throw problem }
            host = address[address.index(after: address.startIndex)..<close]
            let rest = address[address.index(after: close)...]
            guard rest.hasPrefix(":") else { throw problem }
            portText = rest.dropFirst()
        } else {
            guard let colon = address.lastIndex(of: ":") else { throw problem }
            host = address[..<colon]
            portText = address[address.index(after: colon)...]
            if host.contains(":") { throw problem }
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else { throw problem }
        host = host.trimmingPrefix(" ")
        return (String(host), port)
    }
}

/// PEM files of a TLS certificate chain and its private key.
public struct TLSFiles: Sendable, Equatable {
    /// The certificate chain, leaf first.
    public var certificatePath: String
    /// The certificate's private key.
    public var privateKeyPath: String

    /// Names the two PEM files.
    public init(certificatePath: String, privateKeyPath: String) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
    }
}

/// Credentials the HTTP server accepts: bearer JWTs and static API keys.
public struct AuthConfiguration: Sendable {
    /// How bearer JWTs are verified (none accepted when no key is set).
    public var jwt: JWTConfiguration
    /// Static API keys.
    public var apiKeys: [APIKey]

    /// Credentials; the default accepts none.
    public init(jwt: JWTConfiguration = JWTConfiguration(), apiKeys: [APIKey] = []) {
        self.jwt = jwt
        self.apiKeys = apiKeys
    }

    /// Whether any credential can be accepted at all.
    public var isEmpty: Bool { !jwt.isEnabled && apiKeys.isEmpty }
}

/// How bearer JWTs are verified. Only algorithms with a key configured are accepted
/// (`none` never is).
public struct JWTConfiguration: Sendable {
    /// The HS256 shared secret (raw bytes).
    public var hs256Secret: [UInt8]?
    /// The ES256 (P-256) public key, PEM.
    public var es256PublicKeyPEM: String?
    /// The RS256 public key, PEM.
    public var rs256PublicKeyPEM: String?
    /// When set, the `iss` claim must equal it.
    public var issuer: String?
    /// When set, the `aud` claim must contain it.
    public var audience: String?
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    public var leewaySeconds: Int
    /// The key id (`kid`) of each algorithm's key, by algorithm name ("HS256", "ES256",
    /// "RS256"). When one is set, a token of that algorithm naming another `kid` is refused;
    /// a token without `kid`, or of an algorithm without a configured id, is verified with
    /// the algorithm's key.
    public var keyIDs: [String: String] = [:]

    /// Keys and claim checks; only algorithms given a key are allowed.
    public init(hs256Secret: [UInt8]? = nil, es256PublicKeyPEM: String? = nil, rs256PublicKeyPEM: String? = nil,
                issuer: String? = nil, audience: String? = nil, leewaySeconds: Int = 0) {
        self.hs256Secret = hs256Secret
        self.es256PublicKeyPEM = es256PublicKeyPEM
        self.rs256PublicKeyPEM = rs256PublicKeyPEM
        self.issuer = issuer
        self.audience = audience
        self.leewaySeconds = leewaySeconds
    }

    /// The algorithms allowed: those with a key.
    public var algorithms: [String] {
        var names: [String] = []
        if hs256Secret != nil { names.append("HS256") }
        if es256PublicKeyPEM != nil { names.append("ES256") }
        if rs256PublicKeyPEM != nil { names.append("RS256") }
        return names
    }

    /// Whether any JWT can be accepted.
    public var isEnabled: Bool { !algorithms.isEmpty }
}

/// A static API key and the identity it stands for.
public struct APIKey: Sendable {
    /// The key as clients send it (at least 16 characters).
    public var key: String
    /// Who a request with this key acts as.
    public var identity: Identity

    /// Binds a key to an identity.
    public init(key: String, identity: Identity) {
        self.key = key
        self.identity = identity
    }
}

/// Scopes as written in a token or a config file: `["*"]` means every scope, absent or
/// empty means none (only collections readable by all can be pulled, nothing pushed).
enum ScopeList {
    static func scopes(_ list: [String]?) -> Set<String>? {
        guard let list else { return [] }
        if list.contains("*") { return nil }
        return Set(list)
    }
}
