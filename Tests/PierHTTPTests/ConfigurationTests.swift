import Foundation
import Pier
@testable import PierHTTP
import Testing

@Suite("pier serve configuration")
struct ConfigurationTests {
    func error(_ json: String) -> PierError? {
        do { _ = try ServeConfiguration.parse(json: json); return nil } catch { return error }
    }

    @Test("a full file parses: store, http, auth and the sync server's own keys")
    func fullFile() throws {
        let folder = temporaryFolder()
        defer { removeFolder(folder) }
        try "0123456789abcdef0123456789abcdef\n".write(toFile: folder + "/jwt.secret", atomically: true, encoding: .utf8)
        try #"[{"key": "abcdefghijklmnopqrstuvwxyz", "user": "ops", "admin": true}]"#.write(toFile: folder + "/keys.json", atomically: true, encoding: .utf8)
        let text = """
            { "store": "master.pier",
              "http": { "listen": "0.0.0.0:9000", "max_request_bytes": 1000000, "max_concurrent_syncs": 3, "retry_after_seconds": 2,
                        "idle_timeout_seconds": 30 },
              "auth": { "jwt": { "hs256_secret_file": "jwt.secret", "issuer": "me", "audience": "pier", "leeway_seconds": 5 },
                        "api_keys": [ { "key": "k-0123456789abcdef", "user": "svc", "read_scopes": ["*"], "write_scopes": ["north"] } ],
                        "api_keys_file": "keys.json" },
              "default_policy": "manual",
              "max_batch_changes": 100,
              "collections": { "prices": { "policy": "first_write_wins", "readable_by_all": true } } }
            """
        try text.write(toFile: folder + "/pier.json", atomically: true, encoding: .utf8)
        let config = try ServeConfiguration.load(path: folder + "/pier.json")
        #expect(config.store == folder + "/master.pier", "relative to the configuration file")
        #expect(config.http.host == "0.0.0.0" && config.http.port == 9000)
        #expect(config.http.maxRequestBytes == 1_000_000)
        #expect(config.http.maxConcurrentSyncs == 3)
        #expect(config.http.retryAfterSeconds == 2)
        #expect(config.http.idleTimeoutSeconds == 30)
        #expect(config.http.auth.jwt.hs256Secret == Array("0123456789abcdef0123456789abcdef".utf8), "the trailing newline is not part of the secret")
        #expect(config.http.auth.jwt.issuer == "me" && config.http.auth.jwt.audience == "pier" && config.http.auth.jwt.leewaySeconds == 5)
        #expect(config.http.auth.apiKeys.map(\.identity) == [
            Identity(user: "svc", readScopes: nil, writeScopes: ["north"], isAdmin: false),
            Identity(user: "ops", readScopes: [], writeScopes: [], isAdmin: true),
        ])
        #expect(config.server.defaultPolicy.policy == .manual)
        #expect(config.server.maxBatchChanges == 100)
        #expect(config.server.collections["prices"]?.readableByAll == true)
    }

    @Test("unknown keys, bad values and bad listen addresses are clear errors")
    func errors() {
        let cases: [(String, String)] = [
            (#"{"htp": {}}"#, "htp"),
            (#"{"http": {"lisen": "1:2"}}"#, "lisen"),
            (#"{"auth": {"jwt": {"secret": "x"}}}"#, "secret"),
            (#"{"auth": {"api_keys": [{"key": "abcdefghijklmnopq", "user": "u", "scopes": []}]}}"#, "scopes"),
            (#"{"http": {"listen": "localhost"}}"#, "HOST:PORT"),
            (#"{"http": {"listen": "127.0.0.1:99999"}}"#, "HOST:PORT"),
            (#"{"http": {"listen": ":80"}}"#, "HOST:PORT"),
            (#"{"http": {"max_concurrent_syncs": 0}}"#, "max_concurrent_syncs"),
            (#"{"http": {"tls": {"certificate_file": "a.pem"}}}"#, "private_key_file"),
            (#"{"auth": {"jwt": {"hs256_secret": "short"}}}"#, "32"),
            (#"{"collections": {"a": {"polcy": "manual"}}}"#, "polcy"),
            (#"{"store": 3}"#, "store"),
            ("{", "JSON"),
            ("[]", "object"),
        ]
        for (json, fragment) in cases {
            let failure = error(json)
            #expect(failure?.code == .invalid, "\(json)")
            #expect(failure?.message.contains(fragment) == true, "\(json): \(failure?.message ?? "no error")")
        }
    }

    @Test("listen addresses: IPv4, IPv6 in brackets, host names, port 0")
    func listen() throws {
        var http = HTTPConfiguration()
        try http.setListen("[::1]:8443")
        #expect(http.host == "::1" && http.port == 8443)
        try http.setListen("localhost:0")
        #expect(http.host == "localhost" && http.port == 0)
        #expect(throws: PierError.self) { try http.setListen("[::1]8443") }
        #expect(throws: PierError.self) { try http.setListen("::1:80") }
    }

    @Test("a missing file is named in the error")
    func missingFile() {
        #expect(throws: PierError.self) { try ServeConfiguration.load(path: "/nonexistent/pier.json") }
    }
}
