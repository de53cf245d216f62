import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PierStore
import PostgresNIO
import Synchronization

/// A connection borrowed from the pool for one `read` or `write`, with synchronous
/// queries. It remembers what its failures mean for the connection (lost: do not reuse)
/// and the transaction (retryable: the server rolled it back after a deadlock or a
/// serialisation failure).
///
/// Not `Sendable`: it belongs to the one thread running the store call.
final class Session {
    let connection: PostgresConnection
    let logger: Logger
    /// How long one statement may go unanswered before the connection is given up.
    let timeoutSeconds: Int
    private(set) var lost = false
    private(set) var retryable = false

    init(_ connection: PostgresConnection, logger: Logger, timeoutSeconds: Int) {
        self.connection = connection
        self.logger = logger
        self.timeoutSeconds = timeoutSeconds
    }

    /// Runs one statement and returns all its rows. Blocks the calling thread, which must
    /// not be one of NIO's event-loop threads.
    @discardableResult
    func rows(_ query: PostgresQuery, _ doing: @autoclosure () -> String) throws(PierError) -> [PostgresRow] {
        if connection.isClosed {
            lost = true
            throw PierError(.network, "the PostgreSQL connection was closed before \(doing())")
        }
        do {
            return try wait(connection.query(query, logger: logger)).rows
        } catch {
            let failure = PostgresFailure(error, doing: doing())
            if failure.connectionLost || connection.isClosed { lost = true }
            if failure.retryable { retryable = true }
            throw failure.error
        }
    }

    /// `future.wait()` with a deadline. A connection the server dropped in the middle of a
    /// transaction can leave a query unanswered (seen with postgres-nio 1.33 after
    /// `pg_terminate_backend`); past the deadline the connection is closed and the call
    /// fails with `.network` instead of hanging its thread for ever.
    private func wait<T: Sendable>(_ future: EventLoopFuture<T>) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let outcome = NIOLockedValueBox<Result<T, any Error>?>(nil)
        future.whenComplete { result in
            outcome.withLockedValue { $0 = result }
            done.signal()
        }
        if done.wait(timeout: .now() + .seconds(timeoutSeconds)) == .timedOut {
            lost = true
            connection.close().whenComplete { [connection] _ in withExtendedLifetime(connection) {} }
            throw PierError(.network, "PostgreSQL did not answer within \(timeoutSeconds) s (query_timeout in the URL); the connection was closed")
        }
        return try outcome.withLockedValue { $0! }.get()
    }

    func markLost() { lost = true }
}

/// A bounded pool of `PostgresConnection`s on NIO's shared event-loop group.
///
/// A caller takes a permit (waiting at most `waitSeconds` when every connection is in
/// use), then an idle connection or a new one. Connections that failed are closed
/// instead of returned.
final class ConnectionPool: Sendable {
    let url: PostgresURL
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let permits: DispatchSemaphore
    private let state = Mutex(State())
    private let waitSeconds = 30

    private struct State {
        var idle: [PostgresConnection] = []
        var closed = false
        var nextID = 1
    }

    init(url: PostgresURL) throws(PierError) {
        self.url = url
        var logger = Logger(label: "pier.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
        logger.logLevel = .critical
        self.logger = logger
        permits = DispatchSemaphore(value: url.poolSize)

        var configuration: PostgresConnection.Configuration
        if let socket = url.unixSocketPath {
            configuration = .init(unixSocketPath: socket, username: url.user, password: url.password, database: url.database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch url.tls {
            case .disable:
                tls = .disable
            case .allow, .prefer, .require:
                // libpq's meaning: encrypt, but do not check the certificate.
                var settings = TLSConfiguration.makeClientConfiguration()
                settings.certificateVerification = .none
                let context: NIOSSLContext
                do { context = try NIOSSLContext(configuration: settings) } catch {
                    throw PierError(.internalError, "cannot set up TLS for PostgreSQL: \(error)")
                }
                tls = url.tls == .require ? .require(context) : .prefer(context)
            case .verifyCA, .verifyFull:
                var settings = TLSConfiguration.makeClientConfiguration()
                settings.certificateVerification = url.tls == .verifyFull ? .fullVerification : .noHostnameVerification
                let context: NIOSSLContext
                do { context = try NIOSSLContext(configuration: settings) } catch {
                    throw PierError(.internalError, "cannot set up TLS for PostgreSQL: \(error)")
                }
                tls = .require(context)
            }
            configuration = .init(host: url.host, port: url.port, username: url.user, password: url.password,
                                  database: url.database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(Int64(url.connectTimeoutSeconds))
        configuration.options.additionalStartupParameters = [("application_name", url.applicationName)]
        self.configuration = configuration
    }

    /// A connection for one store call; give it back with `release`.
    func acquire() throws(PierError) -> Session {
        if state.withLock({ $0.closed }) { throw PierError(.closed, "the PostgreSQL master store is closed") }
        guard permits.wait(timeout: .now() + .seconds(waitSeconds)) == .success else {
            throw PierError(.busy, "all \(url.poolSize) PostgreSQL connections of this store stayed busy for \(waitSeconds) s; raise pool_size in the URL or lower the load")
        }
        enum Next { case closed, reuse(PostgresConnection), open(Int) }
        while true {
            let next: Next = state.withLock { state in
                if state.closed { return .closed }
                if let connection = state.idle.popLast() { return .reuse(connection) }
                defer { state.nextID += 1 }
                return .open(state.nextID)
            }
            switch next {
            case .closed:
                permits.signal()
                throw PierError(.closed, "the PostgreSQL master store is closed")
            case .reuse(let connection):
                if connection.isClosed { continue }
                return Session(connection, logger: logger, timeoutSeconds: url.queryTimeoutSeconds)
            case .open(let id):
                do throws(PierError) {
                    return Session(try connect(id: id), logger: logger, timeoutSeconds: url.queryTimeoutSeconds)
                } catch {
                    permits.signal()
                    throw error
                }
            }
        }
    }

    /// Returns a session's connection to the pool, or closes it when it failed.
    func release(_ session: Session) {
        let connection = session.connection
        let kept = !session.lost && !connection.isClosed && state.withLock { state in
            guard !state.closed else { return false }
            state.idle.append(connection)
            return true
        }
        if !kept { Self.close(connection) }
        permits.signal()
    }

    /// Closes the idle connections and refuses new calls; connections in use are closed
    /// when they come back. With `wait`, blocks until the idle ones are closed (at most
    /// 10 s in all).
    func close(wait: Bool) {
        let idle = state.withLock { state in
            state.closed = true
            defer { state.idle = [] }
            return state.idle
        }
        let closed = DispatchSemaphore(value: 0)
        for connection in idle {
            Self.close(connection).whenComplete { _ in closed.signal() }
        }
        guard wait else { return }
        let deadline = DispatchTime.now() + .seconds(10)
        for _ in idle {
            if closed.wait(timeout: deadline) == .timedOut { return }
        }
    }

    /// Closes a connection and keeps it alive until it is closed (postgres-nio requires a
    /// connection to be closed before it is deallocated).
    @discardableResult
    private static func close(_ connection: PostgresConnection) -> EventLoopFuture<Void> {
        let done: EventLoopFuture<Void> = connection.close()
        done.whenComplete { _ in withExtendedLifetime(connection) {} }
        return done
    }

    private func connect(id: Int) throws(PierError) -> PostgresConnection {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        do {
            return try PostgresConnection.connect(on: loop, configuration: configuration, id: id, logger: logger).wait()
        } catch {
            throw PostgresFailure(error, doing: "connecting to \(url.location)").error
        }
    }
}
