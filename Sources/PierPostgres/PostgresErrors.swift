import PierStore
import PostgresNIO

/// How a PostgreSQL failure maps onto `PierError`, and what it means for the connection
/// and the transaction it happened in.
struct PostgresFailure {
    var error: PierError
    /// The connection can no longer be trusted (closed, protocol out of step): drop it.
    var connectionLost: Bool
    /// The transaction was rolled back by the server because of a deadlock or a
    /// serialisation failure: running it again may succeed.
    var retryable: Bool

    /// Maps any error from postgres-nio. `doing` says what Pier was doing ("reading",
    /// "connecting to 127.0.0.1:5432 as pier").
    init(_ error: any Error, doing: String) {
        connectionLost = false
        retryable = false
        guard let psql = error as? PSQLError else {
            if let pier = error as? PierError {
                self.error = pier
                return
            }
            if error is PostgresDecodingError {
                self.error = PierError(.internalError, "PostgreSQL returned a value Pier cannot decode while \(doing)",
                                       underlying: String(reflecting: error))
                return
            }
            // NIO channel and socket errors: the connection is gone.
            connectionLost = true
            self.error = PierError(.network, "PostgreSQL connection failed while \(doing): \(error)")
            return
        }
        switch psql.code {
        case .server:
            let state = psql.serverInfo?[.sqlState] ?? ""
            let message = psql.serverInfo?[.message] ?? "(no message)"
            let detail = psql.serverInfo?[.detail]
            let underlying = "SQLSTATE \(state)" + (detail.map { ": \($0)" } ?? "")
            switch state {
            case "40001", "40P01":
                retryable = true
                self.error = PierError(.busy, "PostgreSQL aborted the transaction (\(message)) while \(doing); try again",
                                       underlying: underlying)
            case "28P01", "28000":
                connectionLost = true
                self.error = PierError(.auth, "PostgreSQL refused the login while \(doing): \(message); check the user and password in the URL",
                                       underlying: underlying)
            case "3D000":
                connectionLost = true
                self.error = PierError(.notFound, "PostgreSQL has no such database while \(doing): \(message)", underlying: underlying)
            case "53300", "55P03", "57P03":
                connectionLost = state != "55P03"
                self.error = PierError(.busy, "PostgreSQL is busy while \(doing): \(message)", underlying: underlying)
            case "57014":
                self.error = PierError(.cancelled, "PostgreSQL cancelled the statement while \(doing): \(message)", underlying: underlying)
            case "42501":
                self.error = PierError(.forbidden, "PostgreSQL denied the permission while \(doing): \(message)", underlying: underlying)
            case _ where state.hasPrefix("08") || state.hasPrefix("57P"):
                connectionLost = true
                self.error = PierError(.network, "PostgreSQL connection failed while \(doing): \(message)", underlying: underlying)
            case _ where state.hasPrefix("53") || state.hasPrefix("58"):
                self.error = PierError(.io, "PostgreSQL ran out of a resource while \(doing): \(message)", underlying: underlying)
            case _ where state.hasPrefix("42") || state.hasPrefix("22") || state.hasPrefix("23"):
                self.error = PierError(.internalError, "PostgreSQL refused a statement while \(doing): \(message)", underlying: underlying)
            default:
                self.error = PierError(.io, "PostgreSQL failed while \(doing): \(message)", underlying: underlying)
            }
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
            connectionLost = true
            let cause = psql.underlying.map { "\($0)" } ?? "\(psql.code)"
            self.error = PierError(.network, "PostgreSQL connection failed while \(doing): \(cause)")
        case .sslUnsupported:
            connectionLost = true
            self.error = PierError(.network, "the PostgreSQL server does not support TLS, which the URL's sslmode requires (while \(doing))")
        case .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
            connectionLost = true
            self.error = PierError(.auth, "PostgreSQL login failed while \(doing): \(psql.code); check the password in the URL",
                                   underlying: psql.underlying.map { "\($0)" })
        case .queryCancelled:
            self.error = PierError(.cancelled, "PostgreSQL query cancelled while \(doing)")
        default:
            connectionLost = true
            self.error = PierError(.io, "PostgreSQL failed while \(doing): \(psql.code)", underlying: String(reflecting: psql))
        }
    }
}
