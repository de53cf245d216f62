import Crypto
import Foundation
import Pier
@testable import PierHTTP
import PierWire
import Testing

@Suite("Authentication")
struct AuthTests {
    static func base64URL(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Expects a 401 with an error frame that says only "invalid credentials".
    func expectRefused(_ answer: HTTPAnswer, _ comment: Comment) {
        #expect(answer.status == 401, comment)
        #expect(answer.headers["www-authenticate"] == "Bearer", comment)
        #expect(answer.errorFrame?.code == PierError.Code.auth.rawValue, comment)
        #expect(answer.errorFrame?.message == "invalid credentials", comment)
    }

    @Test("missing, malformed, badly signed, expired, premature, wrong audience or issuer, and disallowed algorithms are 401")
    func refusedTokens() async throws {
        let server = try await TestServer.start { http in
            http.auth.jwt.audience = "pier"
            http.auth.jwt.issuer = "https://auth.example"
        }
        let port = server.port
        let good = try await token("ana", audience: "pier", issuer: "https://auth.example")
        let otherSecret = Array("another-secret-another-secret-another-secret".utf8)
        let cases: [(String?, Comment)] = [
            (nil, "no Authorization header"),
            ("garbage", "neither a JWT nor a known API key"),
            (try await token("ana", audience: "pier", issuer: "https://auth.example", secret: otherSecret), "bad signature"),
            (try await token("ana", ttl: -60, audience: "pier", issuer: "https://auth.example"), "expired"),
            (try await token("ana", audience: "pier", issuer: "https://auth.example", notBefore: Date().addingTimeInterval(3600)), "nbf in the future"),
            (try await token("ana", audience: "other", issuer: "https://auth.example"), "wrong audience"),
            (try await token("ana", audience: "pier", issuer: "https://evil.example"), "wrong issuer"),
            (try await token("ana", issuer: "https://auth.example"), "no audience"),
            (Self.base64URL(#"{"alg":"none","typ":"JWT"}"#) + "." + Self.base64URL(#"{"sub":"ana","exp":9999999999,"aud":"pier","iss":"https://auth.example"}"#) + ".",
             "alg none"),
            (good.split(separator: ".").prefix(2).joined(separator: ".") + ".AAAA", "truncated signature"),
        ]
        let frame = try requestFrame(pull: .init(cursor: 0))
        for (credential, comment) in cases {
            let answer = try await onThread { try postFrame(port: port, frame, credential: credential) }
            expectRefused(answer, comment)
        }
        let ok = try await onThread { try postFrame(port: port, frame, credential: good) }
        #expect(ok.status == 200)
        let metrics = try await onThread { try get(port: port, "/metrics") }
        #expect(metrics.text.contains("pier_auth_failures_total \(cases.count)"))
        try await server.stop()
    }

    @Test("with a configured key id, a token naming another kid is refused; the configured id and no id pass")
    func keyIDs() async throws {
        func signed(_ header: String, _ secret: [UInt8] = testSecret) -> String {
            let claims = #"{"sub":"ana","exp":\#(Int(Date().timeIntervalSince1970) + 600),"read_scopes":["*"],"write_scopes":["*"]}"#
            let input = Self.base64URL(header) + "." + Self.base64URL(claims)
            let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: secret))
            let signature = Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            return input + "." + signature
        }
        let frame = try requestFrame(pull: .init(cursor: 0))
        let unconfigured = try await TestServer.start()
        let configured = try await TestServer.start { $0.auth.jwt.keyIDs["HS256"] = "k1" }
        let cases: [(TestServer, String, Int, Comment)] = [
            (unconfigured, signed(#"{"alg":"HS256","typ":"JWT"}"#), 200, "no kid, no configured id"),
            (unconfigured, signed(#"{"alg":"HS256","kid":"idp-key-7"}"#), 200, "a kid when none is configured: not checked"),
            (configured, signed(#"{"alg":"HS256","kid":"k1"}"#), 200, "the configured kid"),
            (configured, signed(#"{"alg":"HS256"}"#), 200, "no kid"),
            (configured, signed(#"{"alg":"HS256","kid":"k2"}"#), 401, "another kid"),
            (configured, signed(#"{"alg":"HS256","kid":7}"#), 401, "a kid that is not a string"),
        ]
        for (server, credential, status, comment) in cases {
            let port = server.port
            let answer = try await onThread { try postFrame(port: port, frame, credential: credential) }
            if status == 401 { expectRefused(answer, comment) } else { #expect(answer.status == status, comment) }
        }
        try await unconfigured.stop()
        try await configured.stop()
    }

    @Test("a token without exp is refused")
    func missingExpiry() async throws {
        let server = try await TestServer.start()
        let claims = PierClaims(sub: .init(value: "ana"), readScopes: ["*"], writeScopes: ["*"])
        let keys = await JWTTestKeys.hs256(testSecret)
        let unexpiring = try await keys.sign(claims)
        let port = server.port
        let frame = try requestFrame(pull: .init(cursor: 0))
        let answer = try await onThread { try postFrame(port: port, frame, credential: unexpiring) }
        expectRefused(answer, "no exp")
        try await server.stop()
    }

    @Test("ES256: a token signed with the configured key passes; an HS256 token is refused when only ES256 is allowed")
    func es256AllowList() async throws {
        let privateKey = P256.Signing.PrivateKey()
        let server = try await TestServer.start { http in
            http.auth.jwt = JWTConfiguration(es256PublicKeyPEM: privateKey.publicKey.pemRepresentation)
        }
        let port = server.port
        let es = try await TokenMinter.mint(key: .es256(privateKeyPEM: privateKey.pemRepresentation), subject: "ana", readScopes: ["*"],
                                            writeScopes: ["*"], admin: false, ttlSeconds: 600, audience: nil, issuer: nil)
        let hs = try await token("ana")
        let otherKey = P256.Signing.PrivateKey()
        let forged = try await TokenMinter.mint(key: .es256(privateKeyPEM: otherKey.pemRepresentation), subject: "ana", readScopes: ["*"],
                                                writeScopes: ["*"], admin: false, ttlSeconds: 600, audience: nil, issuer: nil)
        let frame = try requestFrame(pull: .init(cursor: 0))
        let (good, wrongAlgorithm, wrongKey) = try await onThread {
            (try postFrame(port: port, frame, credential: es), try postFrame(port: port, frame, credential: hs),
             try postFrame(port: port, frame, credential: forged))
        }
        #expect(good.status == 200)
        expectRefused(wrongAlgorithm, "HS256 when only ES256 is configured")
        expectRefused(wrongKey, "ES256 signed by another key")
        try await server.stop()
    }

    @Test("API keys: a configured key maps to its identity; an unknown one is 401")
    func apiKeys() async throws {
        let key = "pk_live_0123456789abcdef"
        let server = try await TestServer.start { http in
            http.auth.apiKeys = [APIKey(key: key, identity: Identity(user: "backoffice", readScopes: ["north"], writeScopes: [], isAdmin: true))]
        }
        let port = server.port
        let push = try requestFrame(client: "bo", changes: [upsert("c", "x", "{}", scope: "north")])
        let (ok, bad, admin) = try await onThread {
            (try postFrame(port: port, push, credential: key), try postFrame(port: port, push, credential: key + "x"),
             try get(port: port, "/v1/admin/log", credential: key))
        }
        #expect(ok.status == 200)
        guard case .syncResponse(let response) = try Frame.decode(ok.body) else { Issue.record("not a response"); return }
        #expect(response.results.first?.outcome == .rejected, "the key may not write north")
        expectRefused(bad, "unknown API key")
        #expect(admin.status == 200, "the key has admin rights")
        #expect(try server.sync.record("c", "x") == nil)
        try await server.stop()
    }

    @Test("claims map onto an Identity: * is every scope, absent is none")
    func claimsToIdentity() async throws {
        let authenticator = try await Authenticator(AuthConfiguration(jwt: JWTConfiguration(hs256Secret: testSecret)))
        let all = try await authenticator.authenticate(authorization: "Bearer " + token("a", read: ["*"], write: ["n"], admin: true)).get()
        #expect(all == Identity(user: "a", readScopes: nil, writeScopes: ["n"], isAdmin: true))
        let none = try await authenticator.authenticate(authorization: "bearer " + token("b", read: nil, write: nil)).get()
        #expect(none == Identity(user: "b", readScopes: [], writeScopes: [], isAdmin: false))
        if case .success = await authenticator.authenticate(authorization: "Basic abc") { Issue.record("Basic accepted") }
    }
}

/// Signs arbitrary claims (for tokens `pier token` would never make).
enum JWTTestKeys {
    static func hs256(_ secret: [UInt8]) async -> TestSigner { TestSigner(secret: secret) }
}

struct TestSigner {
    let secret: [UInt8]
    func sign(_ claims: PierClaims) async throws -> String {
        let header = AuthTests.base64URL(#"{"alg":"HS256","typ":"JWT"}"#)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        let payload = try encoder.encode(claims).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let input = header + "." + payload
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: secret))
        let signature = Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return input + "." + signature
    }
}
