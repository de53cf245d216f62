import ArgumentParser
import Pier
import PierHTTP

/// `pier token`: mints a development JWT for `pier serve`.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mint a development JWT (HS256, ES256 or RS256) for pier serve.",
        discussion: """
            Scopes: --read and --write take scope names (repeat the option or separate with commas); \
            "*" means every scope; without --read the token reads only collections readable by all, \
            without --write it writes nothing. The secret may also come from PIER_JWT_SECRET.
            """)

    @Option(help: "The user (sub claim).") var sub: String
    @Option(name: .customLong("read"), help: "A scope the token may read (repeatable; \"*\" = all).") var read: [String] = []
    @Option(name: .customLong("write"), help: "A scope the token may write (repeatable; \"*\" = all).") var write: [String] = []
    @Flag(help: "Grant admin rights (the admin endpoints).") var admin = false
    @Option(help: "Lifetime in seconds.") var ttl = 3600
    @Option(help: "Audience (aud claim).") var aud: String?
    @Option(help: "Issuer (iss claim).") var iss: String?
    @Option(help: "HS256 secret.") var secret: String?
    @Option(help: "File holding the HS256 secret.") var secretFile: String?
    @Option(help: "PEM file of a private key to sign with (ES256: P-256; RS256: RSA); see --alg.") var key: String?
    @Option(help: "Algorithm for --key: ES256 or RS256.") var alg = "ES256"

    func run() async throws {
        do {
            let signingKey: TokenMinter.Key
            switch (secret, secretFile, key) {
            case (let secret?, nil, nil): signingKey = .hs256(secret: Array(secret.utf8))
            case (nil, let path?, nil): signingKey = .hs256(secret: try ServeConfiguration.readSecretFile(path))
            case (nil, nil, let path?):
                let pem = try ServeConfiguration.readText(path, what: "\(alg) private key")
                switch alg.uppercased() {
                case "ES256": signingKey = .es256(privateKeyPEM: pem)
                case "RS256": signingKey = .rs256(privateKeyPEM: pem)
                default: throw ValidationError("--alg must be ES256 or RS256 (HS256 tokens use --secret or --secret-file)")
                }
            case (nil, nil, nil):
                guard let secret = Environment.current["PIER_JWT_SECRET"] else {
                    throw ValidationError("give one of --secret, --secret-file or --key (or set PIER_JWT_SECRET)")
                }
                signingKey = .hs256(secret: Array(secret.utf8))
            default: throw ValidationError("give only one of --secret, --secret-file and --key")
            }
            if case .hs256(let bytes) = signingKey, bytes.count < 32 {
                throw ValidationError("the HS256 secret is \(bytes.count) bytes; pier serve requires at least 32")
            }
            guard ttl > 0 else { throw ValidationError("--ttl must be positive") }
            func scopes(_ values: [String]) -> [String]? {
                let list = values.flatMap { $0.split(separator: ",").map { String($0).trimmingPrefix(" ") }.map(String.init) }
                return list.isEmpty ? nil : list
            }
            let token = try await TokenMinter.mint(key: signingKey, subject: sub, readScopes: scopes(read), writeScopes: scopes(write),
                                                   admin: admin, ttlSeconds: ttl, audience: aud, issuer: iss)
            print(token)
        } catch let error as PierError { throw failure(error) }
    }
}
