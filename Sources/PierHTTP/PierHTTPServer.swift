// PierHTTP: the HTTP binding of docs/PROTOCOL.md section 12 (`pier serve`).
//
// Owns: the Hummingbird 2 application (POST /v1/sync, GET /v1/health, GET /metrics and the
// admin endpoints), bearer JWT and API-key authentication, the bound on concurrent syncs,
// Prometheus metrics, structured logs (swift-log), graceful shutdown and optional TLS.
// Depends on PierServer and PierWire. Nothing below it depends on it: Hummingbird, NIO
// and jwt-kit stay out of Pier, PierServer, PierSync and libpier.so.
public import Logging
public import PierServer
public import PierStore
import PierWire
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOCore
import NIOPosix
import NIOSSL
public import ServiceLifecycle
import Synchronization

/// A `SyncServer` served over HTTP. Run it as a `Service` (in a `ServiceGroup`, which
/// stops it gracefully on SIGTERM/SIGINT) or start it in the background with `start`.
///
/// ```swift
/// let http = try await PierHTTPServer.start(server: server, configuration: HTTPConfiguration(port: 0, auth: auth))
/// print(http.url)            // http://127.0.0.1:54321
/// try await http.shutdown()  // lets in-flight syncs finish
/// ```
public final class PierHTTPServer: Service, Sendable {
    /// The sync handler served.
    public let server: SyncServer
    /// The configuration it was made with.
    public let configuration: HTTPConfiguration
    let authenticator: Authenticator
    let metrics = SyncMetrics()
    let logger: Logger
    /// Syncs being handled; never more than `configuration.maxConcurrentSyncs`.
    private let inFlight = Atomic<Int>(0)
    /// Set by the first `run`: the thread pool cannot be started again after it stopped.
    private let hasRun = Atomic<Bool>(false)
    /// Where the blocking handler and store calls run: never on an event loop. Two threads
    /// beyond the sync bound keep health checks and admin queries answering under load.
    let pool: NIOThreadPool

    /// Checks the configuration and prepares the keys. Nothing listens until `run`.
    public init(server: SyncServer, configuration: HTTPConfiguration, logger: Logger = Logger(label: "pier.http")) async throws(PierError) {
        guard configuration.maxConcurrentSyncs >= 1 else {
            throw PierError(.invalid, "max_concurrent_syncs must be 1 or more, got \(configuration.maxConcurrentSyncs)")
        }
        guard (0...65535).contains(configuration.port) else {
            throw PierError(.invalid, "port must be 0-65535, got \(configuration.port)")
        }
        if configuration.auth.isEmpty {
            logger.warning("no JWT key and no API key configured: every sync will be refused with 401")
        }
        self.server = server
        self.configuration = configuration
        self.logger = logger
        self.authenticator = try await Authenticator(configuration.auth)
        self.pool = NIOThreadPool(numberOfThreads: configuration.maxConcurrentSyncs + 2)
    }

    /// The address the server listens on, once it does.
    public struct Address: Sendable, CustomStringConvertible {
        /// The host as configured.
        public var host: String
        /// The bound port.
        public var port: Int
        /// Whether it speaks HTTPS.
        public var isTLS: Bool
        /// `http://host:port` or `https://host:port` (IPv6 hosts in brackets).
        public var url: String {
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return "\(isTLS ? "https" : "http")://\(shownHost):\(port)"
        }
        /// The URL.
        public var description: String { url }
    }

    /// Serves until the task is cancelled or a graceful shutdown is triggered; then stops
    /// accepting connections and returns once the requests in flight have been answered.
    /// A server runs once.
    public func run() async throws {
        try await run(onListening: { _ in })
    }

    /// `run`, calling `onListening` once the socket is bound (with the real port when
    /// configured with port 0).
    public func run(onListening: @escaping @Sendable (Address) async -> Void) async throws {
        guard !hasRun.exchange(true, ordering: .acquiringAndReleasing) else {
            throw PierError(.state, "a PierHTTPServer runs once; make a new one to serve again")
        }
        let http1: HTTPServerBuilder = .http1(configuration: .init(idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds))))
        var serverBuilder = http1
        if let files = configuration.tls {
            serverBuilder = try .tls(http1, tlsConfiguration: try Self.tlsConfiguration(files))
        }
        let router = Router(context: ServeRequestContext.self)
        addRoutes(to: router)
        let host = configuration.host
        let isTLS = configuration.tls != nil
        let app = Application(
            router: router,
            server: serverBuilder,
            configuration: ApplicationConfiguration(address: .hostname(host, port: configuration.port), serverName: "pier"),
            onServerRunning: { channel in
                await onListening(Address(host: host, port: channel.localAddress?.port ?? 0, isTLS: isTLS))
            },
            logger: logger)
        pool.start()
        do {
            try await app.run()
        } catch {
            // Cancelled or failed: do not wait for work stuck in the pool (a store that never
            // answers); its threads stop when that work returns.
            pool.shutdownGracefully { _ in }
            throw error
        }
        try await pool.shutdownGracefully()
    }

    static func tlsConfiguration(_ files: TLSFiles) throws(PierError) -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(files.certificatePath)
            let key = try NIOSSLPrivateKey(file: files.privateKeyPath, format: .pem)
            return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        } catch {
            throw PierError(.invalid, "cannot load the TLS certificate \(files.certificatePath.debugDescription) and key \(files.privateKeyPath.debugDescription): \(error)")
        }
    }

    /// Starts serving in the background and returns once the socket is bound.
    public static func start(server: SyncServer, configuration: HTTPConfiguration,
                             logger: Logger = Logger(label: "pier.http")) async throws -> RunningServer {
        let http = try await PierHTTPServer(server: server, configuration: configuration, logger: logger)
        return try await http.start()
    }

    /// Starts this server in the background and returns once the socket is bound.
    public func start() async throws -> RunningServer {
        let (addresses, continuation) = AsyncStream<Address>.makeStream()
        let service = ListeningService(http: self, onListening: { continuation.yield($0) })
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = addresses.makeAsyncIterator()
        guard let address = await iterator.next() else {
            try await task.value
            throw PierError(.io, "the HTTP server stopped before it listened")
        }
        return RunningServer(address: address, group: group, task: task)
    }

    private struct ListeningService: Service {
        let http: PierHTTPServer
        let onListening: @Sendable (Address) async -> Void
        func run() async throws { try await http.run(onListening: onListening) }
    }
}

/// A server started with `PierHTTPServer.start`.
public final class RunningServer: Sendable {
    /// Where it listens.
    public let address: PierHTTPServer.Address
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(address: PierHTTPServer.Address, group: ServiceGroup, task: Task<Void, any Error>) {
        self.address = address
        self.group = group
        self.task = task
    }

    /// The bound port (the real one when started on port 0).
    public var port: Int { address.port }
    /// `http://127.0.0.1:PORT`.
    public var url: String { address.url }

    /// Stops accepting connections, waits for the requests in flight to be answered, then
    /// returns.
    public func shutdown() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

// MARK: Routes

extension PierHTTPServer {
    static let frameContentType = "application/vnd.pier.frame"

    func addRoutes(to router: Router<ServeRequestContext>) {
        router.post("/v1/sync") { request, context in await self.sync(request, connection: context.channel) }
        router.get("/v1/health") { _, _ in await self.health() }
        router.get("/metrics") { _, _ in
            self.metrics.update(self.server.prefetchStatistics)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: self.metrics.text)))
        }
        router.get("/v1/admin/log") { request, _ in await self.admin(request) { query throws(PierError) in try self.adminLog(query) } }
        router.get("/v1/admin/conflicts") { request, _ in await self.admin(request) { query throws(PierError) in try self.adminConflicts(query) } }
    }

    // MARK: POST /v1/sync

    struct RequestTooSlow: Error {}

    /// The request body, up to `limit` bytes (NIOTooManyBytesError beyond). After the first
    /// `grace`, the body must be arriving at an average of at least `minimumRate` bytes per
    /// second since the headers, or it is refused (RequestTooSlow): a large batch on a slow
    /// link keeps going, a body dripped a byte at a time (each byte resets the idle timer)
    /// does not. A connection that sends nothing at all is the idle timeout's.
    static func collectBody(_ request: Request, upTo limit: Int, grace: Duration, minimumRate: Int) async throws -> ByteBuffer {
        let start = ContinuousClock.now
        var body = ByteBuffer()
        for try await part in request.body {
            guard body.readableBytes + part.readableBytes <= limit else { throw NIOTooManyBytesError(maxBytes: limit) }
            var part = part
            body.writeBuffer(&part)
            let elapsed = ContinuousClock.now - start
            if elapsed > grace && Double(body.readableBytes) < Double(minimumRate) * (elapsed / .seconds(1)) {
                throw RequestTooSlow()
            }
        }
        return body
    }

    /// What a sync produced, for the response, the log and the metrics.
    struct SyncOutcome: Sendable {
        var status: HTTPResponse.Status
        var body: [UInt8]
        var clientID = ""
        var changes = 0
        var response: SyncResponse?
        var error: PierError?
    }

    func sync(_ request: Request, connection: any Channel) async -> Response {
        let identity: Identity
        switch await authenticator.authenticate(authorization: request.headers[.authorization]) {
        case .success(let verified): identity = verified
        case .failure(let failure):
            authFailed(failure, path: "/v1/sync")
            return frameError(PierError(.auth, "invalid credentials"), status: .unauthorized, result: "unauthorized")
        }
        guard let contentType = request.headers[.contentType],
              contentType.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() == Self.frameContentType else {
            return frameError(PierError(.protocol, "the request body must be a Pier frame (Content-Type: \(Self.frameContentType))"),
                              status: .unsupportedMediaType, result: "unsupported_media_type")
        }
        let limit = configuration.maxRequestBytes ?? server.config.maxFrameBytes
        let tooLarge = PierError(.limit, "the request body is over this server's limit of \(limit) bytes")
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            return frameError(tooLarge, status: .contentTooLarge, result: "too_large")
        }
        let body: ByteBuffer
        do {
            body = try await Self.collectBody(request, upTo: limit, grace: .seconds(configuration.requestTimeoutSeconds),
                                              minimumRate: configuration.requestMinimumBytesPerSecond)
        } catch is NIOTooManyBytesError {
            return frameError(tooLarge, status: .contentTooLarge, result: "too_large")
        } catch is RequestTooSlow {
            logger.info("sync refused: the request body is arriving too slowly",
                        metadata: ["user": "\(identity.user)", "grace_seconds": "\(configuration.requestTimeoutSeconds)",
                                   "minimum_bytes_per_second": "\(configuration.requestMinimumBytesPerSecond)"])
            var response = frameError(
                PierError(.network, "the request body arrived slower than \(configuration.requestMinimumBytesPerSecond) bytes/s after \(configuration.requestTimeoutSeconds) s"),
                status: .requestTimeout, result: "request_timeout")
            response.headers[.connection] = "close"
            // Hummingbird would drain the rest of the body after the answer, and a drip keeps
            // that going for ever: close the connection once the answer has had time to go out.
            connection.eventLoop.scheduleTask(in: .seconds(2)) { connection.close(promise: nil) }
            return response
        } catch {
            return frameError(PierError(.protocol, "cannot read the request body: \(error)"), status: .badRequest, result: "bad_request")
        }

        // The bound on concurrent syncs: take a slot or answer 429 at once.
        let max = configuration.maxConcurrentSyncs
        let taken = inFlight.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
        guard taken <= max else {
            inFlight.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            logger.info("sync refused: too many concurrent syncs", metadata: ["user": "\(identity.user)", "limit": "\(max)"])
            var response = frameError(PierError(.limit, "too many concurrent syncs; retry later"), status: .tooManyRequests, result: "too_many_requests")
            response.headers[.retryAfter] = String(configuration.retryAfterSeconds)
            return response
        }
        metrics.inFlight.increment()
        defer {
            inFlight.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            metrics.inFlight.decrement()
        }

        let frame = Array(buffer: body)
        let started = ContinuousClock.now
        let outcome: SyncOutcome
        do {
            outcome = try await pool.runIfActive { self.handle(frame: frame, identity: identity) }
        } catch {
            var response = frameError(PierError(.busy, "the server is shutting down; retry later"), status: .serviceUnavailable, result: "unavailable")
            response.headers[.retryAfter] = String(configuration.retryAfterSeconds)
            return response
        }
        let duration = ContinuousClock.now - started
        metrics.handled(duration: duration, bytesIn: frame.count, bytesOut: outcome.body.count)
        metrics.sync(result: Self.result(of: outcome.status))
        if let response = outcome.response { metrics.record(response) }
        log(outcome, identity: identity, duration: duration, bytesIn: frame.count)

        var headers: HTTPFields = [.contentType: Self.frameContentType]
        if outcome.status == .serviceUnavailable { headers[.retryAfter] = String(configuration.retryAfterSeconds) }
        return Response(status: outcome.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: outcome.body)))
    }

    /// Decodes the request, runs the handler and encodes the answer. Blocking: runs on
    /// the thread pool.
    func handle(frame: [UInt8], identity: Identity) -> SyncOutcome {
        var clientID = ""
        var changes = 0
        do throws(PierError) {
            let header: FrameHeader, message: Message
            do throws(WireError) { (header, message) = try Frame.decodeWithHeader(frame, limits: server.wireLimits) } catch {
                throw PierError(.protocol, error.message)
            }
            guard case .syncRequest(let request) = message else {
                throw PierError(.protocol, "expected a sync_request frame, got \(message.type.name)")
            }
            clientID = request.clientID
            changes = request.changes.count
            let (response, bytes) = try server.respond(to: request, identity: identity, encoding: server.encoding(answering: header))
            return SyncOutcome(status: .ok, body: bytes, clientID: clientID, changes: changes, response: response)
        } catch {
            return SyncOutcome(status: Self.status(of: error.code), body: Self.errorFrame(error), clientID: clientID, changes: changes, error: error)
        }
    }

    /// The HTTP status of a Pier error code (PROTOCOL.md section 12).
    static func status(of code: PierError.Code) -> HTTPResponse.Status {
        switch code {
        case .protocol, .invalid: return .badRequest
        case .auth: return .unauthorized
        case .forbidden: return .forbidden
        case .conflict: return .conflict
        case .limit: return .contentTooLarge
        case .busy, .io: return .serviceUnavailable
        default: return .internalServerError
        }
    }

    static func result(of status: HTTPResponse.Status) -> String {
        switch status.code {
        case 200: return "ok"
        case 400: return "bad_request"
        case 401: return "unauthorized"
        case 403: return "forbidden"
        case 413: return "too_large"
        case 415: return "unsupported_media_type"
        case 429: return "too_many_requests"
        case 503: return "unavailable"
        default: return "error"
        }
    }

    static func errorFrame(_ error: PierError) -> [UInt8] {
        // Version 1, which every reader reads (docs/PROTOCOL.md section 6).
        let message = Message.error(ErrorMessage(code: error.code.rawValue, message: error.message))
        return (try? Frame.encode(message, options: EncodeOptions(compressionLevel: 0, formatVersion: 1))) ?? []
    }

    func frameError(_ error: PierError, status: HTTPResponse.Status, result: String) -> Response {
        metrics.sync(result: result)
        var headers: HTTPFields = [.contentType: Self.frameContentType]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: Self.errorFrame(error))))
    }

    func authFailed(_ failure: Authenticator.Failure, path: String) {
        metrics.authFailed()
        logger.notice("authentication failed", metadata: ["path": "\(path)", "reason": "\(failure.reason)"])
    }

    private func log(_ outcome: SyncOutcome, identity: Identity, duration: Duration, bytesIn: Int) {
        var metadata: Logger.Metadata = [
            "user": "\(identity.user)", "client_id": "\(outcome.clientID)", "changes": "\(outcome.changes)",
            "status": "\(outcome.status.code)", "duration_ms": "\(Self.milliseconds(duration))",
            "bytes_in": "\(bytesIn)", "bytes_out": "\(outcome.body.count)",
        ]
        if let response = outcome.response {
            var counts: [SyncResponse.ChangeResult.Outcome: Int] = [:]
            for result in response.results { counts[result.outcome, default: 0] += 1 }
            for outcome in SyncResponse.ChangeResult.Outcome.allCases where counts[outcome] != nil {
                metadata[outcome.name] = "\(counts[outcome]!)"
            }
            metadata["pulled"] = "\(response.records.count)"
            logger.info("sync", metadata: metadata)
        } else if let error = outcome.error {
            metadata["error"] = "\(error.code.name)"
            metadata["message"] = "\(error.message)"
            if outcome.status == .internalServerError {
                logger.error("sync failed", metadata: metadata)
            } else {
                logger.info("sync refused", metadata: metadata)
            }
        }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds * 1_000_000 + attoseconds / 1_000_000_000_000) / 1000
    }

    // MARK: GET /v1/health

    func health() async -> Response {
        let store = server.store
        let healthy = (try? await pool.runIfActive { () -> Bool in
            (try? store.read { (reader) throws(PierError) in try reader.currentVersion() }) != nil
        }) ?? false
        if !healthy { logger.warning("health check: the master store does not answer") }
        return json(healthy ? .ok : .serviceUnavailable, healthy ? #"{"status":"ok"}"# : #"{"status":"unavailable"}"#)
    }

    func json(_ status: HTTPResponse.Status, _ text: String, headers extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The request context of pier serve's routes: Hummingbird's basic context plus the
/// connection, which a request that overstays its deadline closes.
struct ServeRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
