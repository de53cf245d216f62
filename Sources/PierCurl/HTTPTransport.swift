// PierCurl: the built-in HTTP(S) transport of libpier, over the system libcurl. It owns the
// client side of docs/PROTOCOL.md §12 (POST /v1/sync, headers, statuses, retries) and the
// mapping of HTTP failures to PierError. It must not depend on Foundation (libpier.so stays
// lean), PierServer or the public Pier module.
public import PierStore
public import PierSync
import PierWire
import CCurl

/// Sync over HTTP(S): each round trip is one `POST <base>/v1/sync` carrying a request frame,
/// answered by a response frame (docs/PROTOCOL.md §12).
///
/// ```swift
/// let transport = try HTTPTransport(baseURL: "https://sync.example.com", token: jwt)
/// let report = try db.sync(over: transport)
/// ```
///
/// **Retries.** Connection failures, timeouts, 429, 500, 502, 503 and 504 are retried by
/// `RetryPolicy` (exponential backoff, full jitter, at least `Retry-After` when the server
/// sends one, never above the policy's cap). Retrying is safe even when a response was lost
/// after the server applied the batch: the server recognises a resent
/// `(client_id, batch_seq)` and answers from the results it stored, so nothing applies twice.
/// Other 4xx statuses are never retried.
///
/// **Errors.** An error response carries an `error` frame; its Pier code and message become
/// the thrown `PierError`. A body that is not a frame (a proxy's HTML page) is mapped from the
/// status: 401 `.auth`, 403 `.forbidden`, 413 `.limit`, 400 and 415 `.protocol`. When retries
/// run out (5xx, 429, network) the error is `.network`, naming the last status or libcurl
/// error; the batch stays in flight and the next sync sends it again.
///
/// **Limits.** A response larger than `Configuration.maxResponseBytes` (default: the wire
/// format's largest frame) is cut off and refused as `.protocol`, so a hostile or broken
/// server cannot exhaust memory. Redirects are not followed; only `http` and `https` are
/// spoken.
///
/// A transport keeps one libcurl handle, so the round trips of a sync reuse one connection.
/// It may be used from several threads; their round trips take turns on the handle.
public struct HTTPTransport: SyncTransport, Sendable {
    /// Timeouts, retries and TLS settings.
    public struct Configuration: Sendable, Hashable {
        /// The longest wait for a TCP (and TLS) connection, in milliseconds.
        public var connectTimeoutMilliseconds: Int
        /// The longest one request may take from start to last byte, in milliseconds.
        public var timeoutMilliseconds: Int
        /// When to try again.
        public var retry: RetryPolicy
        /// The largest response body accepted, in bytes.
        public var maxResponseBytes: Int
        /// A PEM file of CA certificates to verify the server with instead of the system's
        /// (a test or private deployment with its own CA).
        public var caFile: String?
        /// Skips TLS certificate and host name verification. Only for tests against a
        /// server with a self-signed certificate: it makes HTTPS as open to interception as
        /// plain HTTP. Prefer `caFile`.
        public var insecureSkipVerify: Bool

        /// Creates a configuration: 10 s to connect, 60 s per request, the default retry
        /// policy, 80 MiB responses, the system's CA certificates.
        public init(connectTimeoutMilliseconds: Int = 10_000, timeoutMilliseconds: Int = 60_000,
                    retry: RetryPolicy = .default, maxResponseBytes: Int = HTTPTransport.defaultMaxResponseBytes,
                    caFile: String? = nil, insecureSkipVerify: Bool = false) {
            self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
            self.timeoutMilliseconds = timeoutMilliseconds
            self.retry = retry
            self.maxResponseBytes = maxResponseBytes
            self.caFile = caFile
            self.insecureSkipVerify = insecureSkipVerify
        }
    }

    /// The clock, the sleep and the randomness of the retry loop; tests inject their own.
    public struct Hooks: Sendable {
        /// Blocks the calling thread for the given milliseconds.
        public var sleep: @Sendable (Int) -> Void
        /// A uniformly random integer in `0...upper`.
        public var random: @Sendable (Int) -> Int
        /// A monotonic clock in milliseconds.
        public var now: @Sendable () -> Int

        /// Creates hooks.
        public init(sleep: @escaping @Sendable (Int) -> Void, random: @escaping @Sendable (Int) -> Int,
                    now: @escaping @Sendable () -> Int) {
            self.sleep = sleep
            self.random = random
            self.now = now
        }

        /// The real thread sleep, the system random generator and the continuous clock.
        public static let system = Hooks(
            sleep: { milliseconds in sleepMilliseconds(milliseconds) },
            random: { upper in upper <= 0 ? 0 : Int.random(in: 0...upper) },
            now: { monotonicMilliseconds() }
        )
    }

    /// The default response cap: the wire format's largest frame (80 MiB).
    public static var defaultMaxResponseBytes: Int { WireLimits.default.maxFrameBytes }

    /// The endpoint requests go to: the base URL followed by `/v1/sync`.
    public let endpoint: String
    /// The settings this transport was made with.
    public let configuration: Configuration
    let token: String?
    let hooks: Hooks
    private let session: CurlSession

    /// Creates a transport to the Pier server at `baseURL` (`http://` or `https://`, the
    /// part before `/v1/sync`).
    /// - Parameters:
    ///   - token: sent as `Authorization: Bearer <token>` (a JWT or an API key) when given.
    /// - Throws: `.invalid` for a URL that is not http(s) or a token with control
    ///   characters; `.noMemory` or `.internalError` when libcurl cannot start.
    public init(baseURL: String, token: String? = nil, configuration: Configuration = Configuration(),
                hooks: Hooks = .system) throws(PierError) {
        endpoint = try HTTPTransport.endpoint(baseURL)
        if let token {
            guard !token.isEmpty, !token.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                throw PierError(.invalid, "token must be non-empty and free of control characters (it becomes an Authorization header)")
            }
        }
        guard configuration.connectTimeoutMilliseconds >= 0, configuration.timeoutMilliseconds >= 0 else {
            throw PierError(.invalid, "timeouts must not be negative")
        }
        guard configuration.maxResponseBytes > 0 else { throw PierError(.invalid, "maxResponseBytes must be positive") }
        self.token = token
        self.configuration = configuration
        self.hooks = hooks
        session = try CurlSession(token: token)
    }

    /// Sends one request frame and returns the response frame, retrying as described above.
    public func roundTrip(_ request: [UInt8]) throws(PierError) -> [UInt8] {
        try post(request, cancellation: nil)
    }

    /// A request sent ahead: when cancelled, no further attempt is made, a backoff wait
    /// ends early and a transfer in progress is aborted (libcurl's progress callback, called
    /// at least once a second).
    public func roundTrip(_ request: [UInt8], cancellation: Cancellation) throws(PierError) -> [UInt8] {
        try post(request, cancellation: cancellation)
    }

    private func post(_ request: [UInt8], cancellation: Cancellation?) throws(PierError) -> [UInt8] {
        try send(request, cancellation: cancellation) { request in
            session.exchange(request, to: endpoint, configuration, cancellation: cancellation)
        }
    }

    /// The next pull page is fetched on a helper thread while this one is applied: the
    /// session's handle is used by one exchange at a time (its lock), and the only host
    /// code it could reach, the log sink, gets the helper's lines on the syncing thread.
    public var supportsPipelining: Bool { true }

    // MARK: - The retry loop (the exchange is injected so tests drive it without a network)

    /// What one HTTP attempt came to.
    enum Outcome: Sendable, Equatable {
        /// The server answered (any status).
        case response(status: Int, retryAfterSeconds: Int?, body: [UInt8])
        /// No complete answer: connection refused or reset, timeout, truncated body, TLS
        /// failure. `retryable` says whether trying again may help.
        case failure(retryable: Bool, message: String)
        /// The response was larger than `maxResponseBytes`.
        case tooLarge
    }

    func send(_ request: [UInt8], cancellation: Cancellation? = nil, exchange: ([UInt8]) -> Outcome) throws(PierError) -> [UInt8] {
        let policy = configuration.retry
        let start = hooks.now()
        var attempt = 1
        while true {
            if let cancellation, cancellation.isCancelled {
                throw PierError(.network, "POST \(endpoint) cancelled: the sync that sent it ahead has stopped")
            }
            let last: String
            var retryAfter: Int?
            switch exchange(request) {
            case .response(let status, let seconds, let body):
                if (200..<300).contains(status) { return body }
                guard HTTPTransport.isRetryable(status: status) else {
                    throw HTTPTransport.error(status: status, body: body, endpoint: endpoint)
                }
                last = HTTPTransport.describe(status: status, body: body)
                retryAfter = seconds.map { $0 > Int.max / 1000 ? Int.max : $0 * 1000 }
            case .failure(let retryable, let message):
                guard retryable else { throw PierError(.network, "POST \(endpoint) failed: \(message)") }
                last = message
            case .tooLarge:
                throw PierError(.protocol, "the response from \(endpoint) is larger than \(configuration.maxResponseBytes) bytes; refused")
            }
            guard attempt < policy.maxAttempts else {
                throw PierError(.network, "POST \(endpoint) failed after \(attempt) attempt\(attempt == 1 ? "" : "s"); the last: \(last)")
            }
            let wait = policy.delay(retry: attempt, retryAfterMilliseconds: retryAfter, random: hooks.random)
            if let budget = policy.maxElapsedMilliseconds, hooks.now() - start + wait > budget {
                throw PierError(.network, "POST \(endpoint) failed after \(attempt) attempt\(attempt == 1 ? "" : "s") (no time left for another within \(budget) ms); the last: \(last)")
            }
            PierLog.log(.info, "http: \(last); retry \(attempt) of \(policy.maxAttempts - 1) in \(wait) ms")
            pause(wait, cancellation)
            attempt += 1
        }
    }

    /// Waits `milliseconds` before a retry; with a cancellation, in slices of 50 ms, so a
    /// cancelled request stops waiting within 50 ms.
    private func pause(_ milliseconds: Int, _ cancellation: Cancellation?) {
        guard let cancellation else {
            hooks.sleep(milliseconds)
            return
        }
        var left = milliseconds
        while left > 0 && !cancellation.isCancelled {
            hooks.sleep(min(left, 50))
            left -= 50
        }
    }

    /// Statuses worth trying again (docs/PROTOCOL.md §12).
    static func isRetryable(status: Int) -> Bool {
        [429, 500, 502, 503, 504].contains(status)
    }

    /// The error an unsuccessful response stands for: the code and message of its `error`
    /// frame, or, when the body is not one, what the status means.
    static func error(status: Int, body: [UInt8], endpoint: String) -> PierError {
        if let message = try? Frame.decode(body), case .error(let frame) = message {
            let code = frame.code < 0 ? PierError.Code(rawValue: frame.code) : .protocol
            return PierError(code, "server (HTTP \(status)): \(frame.message)")
        }
        let what = "HTTP \(status) from \(endpoint) (the body is not a Pier frame)"
        switch status {
        case 401: return PierError(.auth, "\(what): the server refused the credentials; check the token")
        case 403: return PierError(.forbidden, "\(what): this credential may not sync here")
        case 413: return PierError(.limit, "\(what): the request is larger than the server accepts; lower max_batch_bytes")
        case 429: return PierError(.limit, "\(what): too many concurrent syncs")
        case 400, 415: return PierError(.protocol, "\(what): the server did not accept the request")
        case 404, 405: return PierError(.protocol, "\(what): is this the base URL of a Pier server?")
        case 408: return PierError(.network, "\(what): the request reached the server slower than it accepts (request_min_bytes_per_second)")
        case 409: return PierError(.conflict, what)
        case 300..<400: return PierError(.protocol, "\(what): redirects are not followed; use the final URL")
        case 400..<500: return PierError(.protocol, what)
        default: return PierError(.network, what)
        }
    }

    /// A retried response in a few words: the status, and the error frame's code and
    /// message when the body is one.
    static func describe(status: Int, body: [UInt8]) -> String {
        if let message = try? Frame.decode(body), case .error(let frame) = message {
            return "HTTP \(status) with \(PierError.Code(rawValue: frame.code).name): \(frame.message)"
        }
        return "HTTP \(status) (the body is not a Pier frame)"
    }

    /// `base` + `/v1/sync`, after checking the scheme.
    static func endpoint(_ base: String) throws(PierError) -> String {
        let lower = base.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            throw PierError(.invalid, "url must start with http:// or https://, got \"\(base.prefix(200))\"")
        }
        guard !base.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw PierError(.invalid, "url must not contain spaces or control characters")
        }
        guard !base.contains("?"), !base.contains("#") else {
            throw PierError(.invalid, "url is the server's base URL (POST goes to <url>/v1/sync); drop the query or fragment")
        }
        var trimmed = Substring(base)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard trimmed.count > (lower.hasPrefix("https") ? 8 : 7) else { throw PierError(.invalid, "url has no host: \"\(base)\"") }
        return trimmed + "/v1/sync"
    }
}
