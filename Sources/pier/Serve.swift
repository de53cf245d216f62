import ArgumentParser
import Logging
import Pier
import PierHTTP
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// `pier serve`: the sync server over HTTP (docs/SERVER.md).
///
/// Settings come from, highest first: flags, environment variables (`PIER_*`), the
/// configuration file (`--config` or `PIER_CONFIG`), defaults.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a master store over HTTP (POST /v1/sync, health, metrics, admin).",
        discussion: """
            Settings come from, highest first: flags, environment variables (PIER_CONFIG, PIER_LISTEN, \
            PIER_STORE, PIER_JWT_SECRET, PIER_JWT_SECRET_FILE, PIER_API_KEY_FILE, PIER_MAX_CONCURRENT_SYNCS, \
            PIER_LOG_LEVEL), the configuration file, defaults. The first line on standard output is \
            "pier serve: listening on URL". SIGTERM or SIGINT stops accepting connections and lets the \
            syncs in flight finish. See docs/SERVER.md.
            """)

    @Option(help: "Configuration file (JSON): server policies plus \"store\", \"http\" and \"auth\" sections.") var config: String?
    @Option(help: "Address to listen on, HOST:PORT (port 0 = any free port). Default 127.0.0.1:8080.") var listen: String?
    @Option(help: "Master store: an SQLite file path (created if missing), or a postgres:// URL.") var store: String?
    @Option(help: "File holding the HS256 JWT secret (at least 32 bytes).") var jwtSecretFile: String?
    @Option(help: "PEM file of the ES256 public key that verifies JWTs.") var jwtEs256KeyFile: String?
    @Option(help: "Required JWT issuer (iss).") var jwtIssuer: String?
    @Option(help: "Required JWT audience (aud).") var jwtAudience: String?
    @Option(help: "JSON file of API keys: [{\"key\", \"user\", \"read_scopes\", \"write_scopes\", \"admin\"}].") var apiKeyFile: String?
    @Option(help: "Most syncs handled at once; more get 429.") var maxConcurrentSyncs: Int?
    @Option(help: "Largest request body in bytes; more gets 413.") var maxRequestBytes: Int?
    @Option(help: "TLS certificate chain (PEM); needs --tls-key.") var tlsCert: String?
    @Option(help: "TLS private key (PEM); needs --tls-cert.") var tlsKey: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String?
    @Option(help: "Seconds a graceful shutdown waits for syncs in flight before giving up on them.") var shutdownTimeout = 30

    func run() async throws {
        let environment = Environment.current
        let level = try Self.level(logLevel ?? environment["PIER_LOG_LEVEL"] ?? "info")
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "pier.serve")
        PierLog.setSink({ pierLevel, message in
            logger.log(level: Self.level(pierLevel), "\(message)")
        }, level: .info)

        let settings: ServeConfiguration
        do { settings = try resolve(environment) } catch { throw failure(error) }
        guard let storeSpec = settings.store else {
            throw failure(PierError(.invalid, "no master store: give --store PATH, PIER_STORE or \"store\" in the configuration file"))
        }
        let http: PierHTTPServer
        do {
            let master = try openMasterStore(storeSpec)
            let server = SyncServer(store: master, config: settings.server)
            http = try await PierHTTPServer(server: server, configuration: settings.http, logger: logger)
        } catch { throw failure(error) }

        let service = ServeService(http: http, logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // A sync stuck on a master store that never answers must not keep the process alive.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(max(1, shutdownTimeout))
        let group = ServiceGroup(configuration: groupConfiguration)
        do {
            try await group.run()
        } catch let error as PierError {
            throw failure(error)
        } catch {
            throw failure(PierError(.io, "the server stopped: \(error)"))
        }
        logger.info("pier serve: stopped")
    }

    /// Merges file, environment and flags, in that order of increasing precedence.
    func resolve(_ environment: Environment) throws(PierError) -> ServeConfiguration {
        var settings = ServeConfiguration()
        if let path = config ?? environment["PIER_CONFIG"] { settings = try ServeConfiguration.load(path: path) }

        func pick(_ flag: String?, _ variable: String) -> String? { flag ?? environment[variable] }
        if let listen = pick(listen, "PIER_LISTEN") { try settings.http.setListen(listen) }
        if let store = pick(store, "PIER_STORE") { settings.store = store }
        if let secret = environment["PIER_JWT_SECRET"], jwtSecretFile == nil { settings.http.auth.jwt.hs256Secret = Array(secret.utf8) }
        if let path = pick(jwtSecretFile, "PIER_JWT_SECRET_FILE"), jwtSecretFile != nil || environment["PIER_JWT_SECRET"] == nil {
            settings.http.auth.jwt.hs256Secret = try ServeConfiguration.readSecretFile(path)
        }
        if let secret = settings.http.auth.jwt.hs256Secret, secret.count < 32 {
            throw PierError(.invalid, "the HS256 secret is \(secret.count) bytes; use at least 32 random bytes")
        }
        if let path = jwtEs256KeyFile { settings.http.auth.jwt.es256PublicKeyPEM = try ServeConfiguration.readText(path, what: "ES256 public key") }
        if let issuer = jwtIssuer { settings.http.auth.jwt.issuer = issuer }
        if let audience = jwtAudience { settings.http.auth.jwt.audience = audience }
        if let path = pick(apiKeyFile, "PIER_API_KEY_FILE") { settings.http.auth.apiKeys += try ServeConfiguration.loadAPIKeys(path: path) }
        if let text = maxConcurrentSyncs.map(String.init) ?? environment["PIER_MAX_CONCURRENT_SYNCS"] {
            guard let value = Int(text), value >= 1 else { throw PierError(.invalid, "max concurrent syncs must be 1 or more, got \(text)") }
            settings.http.maxConcurrentSyncs = value
        }
        if let maxRequestBytes {
            guard maxRequestBytes >= 1 else { throw PierError(.invalid, "--max-request-bytes must be 1 or more") }
            settings.http.maxRequestBytes = maxRequestBytes
        }
        switch (tlsCert, tlsKey) {
        case (let cert?, let key?): settings.http.tls = TLSFiles(certificatePath: cert, privateKeyPath: key)
        case (nil, nil): break
        default: throw PierError(.invalid, "--tls-cert and --tls-key go together")
        }
        return settings
    }

    static func level(_ text: String) throws -> Logger.Level {
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw ValidationError("unknown log level \(text.debugDescription); use trace, debug, info, notice, warning, error or critical")
        }
        return level
    }

    static func level(_ level: LogLevel) -> Logger.Level {
        switch level {
        case .error: return .error
        case .warning: return .warning
        case .info: return .info
        default: return .debug
        }
    }
}

/// Runs the HTTP server and announces the address on standard output once it listens.
private struct ServeService: Service {
    let http: PierHTTPServer
    let logger: Logger

    func run() async throws {
        try await http.run(onListening: { address in
            print("pier serve: listening on \(address.url)")
            fflush(nil)
            logger.info("listening", metadata: ["url": "\(address.url)"])
        })
    }
}

/// The process environment.
struct Environment {
    let values: [String: String]

    static var current: Environment {
        var values: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                values[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return Environment(values: values)
    }

    subscript(_ name: String) -> String? {
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }
}
