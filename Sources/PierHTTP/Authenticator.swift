import Crypto
public import Foundation
import JWTKit
public import PierServer
public import PierStore

/// Turns a bearer credential into a verified `Identity`: a JWT checked against the
/// configured keys and claims, or a static API key compared in constant time.
///
/// JWT claims: `sub` (the user, required), `exp` (required), `nbf`, `iss` and `aud`
/// (checked when configured), `read_scopes` and `write_scopes` (arrays of scope names;
/// `"*"` = every scope; absent = none, so only collections readable by all can be pulled
/// and nothing pushed), `admin` (bool, default false).
public final class Authenticator: Sendable {
    /// One key collection per allowed algorithm, so a token is only ever verified with a
    /// key of the algorithm its header names, and only if that algorithm is configured.
    private let keys: [String: JWTKeyCollection]
    /// The configured `kid` of each algorithm's key.
    private let keyIDs: [String: String]
    private let issuer: String?
    private let audience: String?
    private let leeway: TimeInterval
    /// SHA-256 digests of the API keys: comparing digests in constant time reveals nothing
    /// about a key's bytes, whatever its length.
    private let apiKeys: [(digest: [UInt8], identity: Identity)]

    /// Why a credential was refused (for the log; the client only hears "invalid credentials").
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// What was wrong with the credential.
        public var reason: String
        /// The reason.
        public var description: String { reason }
    }

    /// Loads the keys; a key that cannot be read is `PIER_EINVALID`.
    public init(_ configuration: AuthConfiguration) async throws(PierError) {
        var keys: [String: JWTKeyCollection] = [:]
        let jwt = configuration.jwt
        if let secret = jwt.hs256Secret {
            keys["HS256"] = await JWTKeyCollection().add(hmac: HMACKey(key: SymmetricKey(data: secret)), digestAlgorithm: .sha256)
        }
        if let pem = jwt.es256PublicKeyPEM {
            do {
                keys["ES256"] = await JWTKeyCollection().add(ecdsa: try ES256PublicKey(pem: pem))
            } catch {
                throw PierError(.invalid, "the ES256 public key is not a P-256 public key in PEM form: \(error)")
            }
        }
        if let pem = jwt.rs256PublicKeyPEM {
            do {
                keys["RS256"] = await JWTKeyCollection().add(rsa: try Insecure.RSA.PublicKey(pem: pem), digestAlgorithm: .sha256)
            } catch {
                throw PierError(.invalid, "the RS256 public key is not an RSA public key in PEM form: \(error)")
            }
        }
        self.keys = keys
        self.keyIDs = jwt.keyIDs
        self.issuer = jwt.issuer
        self.audience = jwt.audience
        self.leeway = TimeInterval(jwt.leewaySeconds)
        self.apiKeys = configuration.apiKeys.map { (Array(SHA256.hash(data: Array($0.key.utf8))), $0.identity) }
    }

    /// Verifies the value of an `Authorization` header.
    public func authenticate(authorization: String?) async -> Result<Identity, Failure> {
        guard let authorization else { return .failure(Failure(reason: "no Authorization header")) }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return .failure(Failure(reason: "the Authorization header is not a Bearer credential"))
        }
        let credential = String(parts[1]).trimmingCharacters(in: .whitespaces)
        if credential.split(separator: ".", omittingEmptySubsequences: false).count == 3 {
            return await verifyJWT(credential)
        }
        return verifyAPIKey(credential)
    }

    private func verifyAPIKey(_ credential: String) -> Result<Identity, Failure> {
        let digest = Array(SHA256.hash(data: Array(credential.utf8)))
        var found: Identity?
        // Look at every key, matching or not, so timing says nothing about which matched.
        for entry in apiKeys {
            var difference: UInt8 = 0
            for i in 0..<digest.count { difference |= digest[i] ^ entry.digest[i] }
            if difference == 0 && found == nil { found = entry.identity }
        }
        if let found { return .success(found) }
        return .failure(Failure(reason: apiKeys.isEmpty ? "not a JWT, and no API keys are configured" : "unknown API key"))
    }

    private func verifyJWT(_ token: String) async -> Result<Identity, Failure> {
        guard let (algorithm, keyID) = Self.header(of: token) else {
            return .failure(Failure(reason: "the JWT header cannot be read, or its alg or kid is not a string"))
        }
        guard let collection = keys[algorithm] else {
            let allowed = keys.keys.sorted().joined(separator: ", ")
            return .failure(Failure(reason: "JWT algorithm \(algorithm.debugDescription) is not allowed (allowed: \(allowed.isEmpty ? "none configured" : allowed))"))
        }
        // With a key id configured, a token naming another kid is refused (jwt-kit would
        // verify it with the default key). Without one, the kid is not checked: the one key
        // of the algorithm verifies the signature either way.
        if let keyID, let configured = keyIDs[algorithm], keyID != configured {
            return .failure(Failure(reason: "JWT key id \(keyID.debugDescription) is not the configured \(algorithm) key's (\(configured.debugDescription))"))
        }
        let claims: PierClaims
        do {
            claims = try await collection.verify(token, as: PierClaims.self)
        } catch {
            return .failure(Failure(reason: "JWT rejected: \(error)"))
        }
        let now = Date()
        guard let exp = claims.exp else { return .failure(Failure(reason: "JWT has no exp claim")) }
        if exp.value.addingTimeInterval(leeway) <= now {
            return .failure(Failure(reason: "JWT expired at \(exp.value)"))
        }
        if let nbf = claims.nbf, nbf.value.addingTimeInterval(-leeway) > now {
            return .failure(Failure(reason: "JWT not valid before \(nbf.value)"))
        }
        if let issuer, claims.iss?.value != issuer {
            return .failure(Failure(reason: "JWT issuer \(claims.iss?.value.debugDescription ?? "absent") is not \(issuer.debugDescription)"))
        }
        if let audience, !(claims.aud?.value.contains(audience) ?? false) {
            return .failure(Failure(reason: "JWT audience \(claims.aud?.value.description ?? "absent") does not include \(audience.debugDescription)"))
        }
        guard let subject = claims.sub?.value, !subject.isEmpty else {
            return .failure(Failure(reason: "JWT has no sub claim"))
        }
        return .success(Identity(user: subject, readScopes: ScopeList.scopes(claims.readScopes),
                                 writeScopes: ScopeList.scopes(claims.writeScopes), isAdmin: claims.admin ?? false))
    }

    /// The `alg` and the `kid` (nil when absent) of a JWT's header; nil when the header is
    /// unreadable, has no string `alg`, or has a `kid` that is not a string.
    static func header(of token: String) -> (algorithm: String, keyID: String?)? {
        guard let header = token.split(separator: ".", omittingEmptySubsequences: false).first,
              let data = Data(base64URL: String(header)),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let algorithm = object["alg"] as? String else { return nil }
        guard let kid = object["kid"] else { return (algorithm, nil) }
        guard let keyID = kid as? String else { return nil }
        return (algorithm, keyID)
    }
}

/// The claims Pier reads from a token.
struct PierClaims: JWTPayload {
    var sub: SubjectClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var readScopes: [String]?
    var writeScopes: [String]?
    var admin: Bool?

    enum CodingKeys: String, CodingKey {
        case sub, exp, nbf, iat, iss, aud, admin
        case readScopes = "read_scopes"
        case writeScopes = "write_scopes"
    }

    /// Claims are checked by `Authenticator`, which knows the configuration and names
    /// the reason in the log.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

extension Data {
    init?(base64URL text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        self.init(base64Encoded: base64)
    }
}

/// Mints development tokens (`pier token`).
public enum TokenMinter {
    /// The signing key of a token.
    public enum Key: Sendable {
        case hs256(secret: [UInt8])
        /// An ES256 private key, PEM.
        case es256(privateKeyPEM: String)
        /// An RS256 private key, PEM (2048 bits or more).
        case rs256(privateKeyPEM: String)
    }

    /// Signs a token with the given claims.
    public static func mint(key: Key, subject: String, readScopes: [String]?, writeScopes: [String]?, admin: Bool,
                            ttlSeconds: Int, audience: String?, issuer: String?, notBefore: Date? = nil,
                            now: Date = Date()) async throws(PierError) -> String {
        let collection = JWTKeyCollection()
        switch key {
        case .hs256(let secret):
            await collection.add(hmac: HMACKey(key: SymmetricKey(data: secret)), digestAlgorithm: .sha256)
        case .es256(let pem):
            do { await collection.add(ecdsa: try ES256PrivateKey(pem: pem)) } catch {
                throw PierError(.invalid, "the ES256 key is not a P-256 private key in PEM form: \(error)")
            }
        case .rs256(let pem):
            do { await collection.add(rsa: try Insecure.RSA.PrivateKey(pem: pem), digestAlgorithm: .sha256) } catch {
                throw PierError(.invalid, "the RS256 key is not an RSA private key in PEM form: \(error)")
            }
        }
        let claims = PierClaims(sub: SubjectClaim(value: subject), exp: ExpirationClaim(value: now.addingTimeInterval(TimeInterval(ttlSeconds))),
                                nbf: notBefore.map { NotBeforeClaim(value: $0) }, iat: IssuedAtClaim(value: now),
                                iss: issuer.map { IssuerClaim(value: $0) }, aud: audience.map { AudienceClaim(value: [$0]) },
                                readScopes: readScopes, writeScopes: writeScopes, admin: admin ? true : nil)
        do { return try await collection.sign(claims) } catch {
            throw PierError(.internalError, "cannot sign the token: \(error)")
        }
    }
}
