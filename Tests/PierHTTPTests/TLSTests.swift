import Foundation
import Pier
@testable import PierHTTP
import Testing

/// Runs a program and returns its standard output (nil when it fails).
func runProgram(_ path: String, _ arguments: [String]) throws -> String? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return process.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
}

let haveTLSTools = FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")

@Suite("TLS and RSA keys made by openssl")
struct TLSTests {
    @Test("with a certificate and key configured the server speaks HTTPS", .enabled(if: haveTLSTools, "needs openssl and curl"))
    func https() async throws {
        let folder = temporaryFolder()
        defer { removeFolder(folder) }
        let made = try await onThread {
            try runProgram("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                                "-keyout", folder + "/key.pem", "-out", folder + "/cert.pem", "-days", "1", "-subj", "/CN=localhost"])
        }
        try #require(made != nil)
        let server = try await TestServer.start { http in
            http.tls = TLSFiles(certificatePath: folder + "/cert.pem", privateKeyPath: folder + "/key.pem")
        }
        #expect(server.http.url.hasPrefix("https://127.0.0.1:"))
        let url = server.http.url
        let port = server.port
        let (secure, plain) = try await onThread {
            (try runProgram("/usr/bin/curl", ["-sk", "--max-time", "30", url + "/v1/health"]),
             try runProgram("/usr/bin/curl", ["-s", "--max-time", "30", "http://127.0.0.1:\(port)/v1/health"]))
        }
        #expect(secure == #"{"status":"ok"}"#)
        #expect(plain == nil || plain != #"{"status":"ok"}"#, "plain HTTP is not served")
        try await server.stop()
    }

    @Test("RS256: a token signed with the configured RSA key passes, one signed by another key is refused",
          .enabled(if: haveTLSTools, "needs openssl"))
    func rs256() async throws {
        let folder = temporaryFolder()
        defer { removeFolder(folder) }
        let made = try await onThread { () -> Bool in
            for name in ["a", "b"] {
                guard try runProgram("/usr/bin/openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                                                          "-out", folder + "/\(name).pem"]) != nil,
                      try runProgram("/usr/bin/openssl", ["pkey", "-in", folder + "/\(name).pem", "-pubout", "-out", folder + "/\(name).pub"]) != nil
                else { return false }
            }
            return true
        }
        try #require(made)
        let publicKey = try String(contentsOfFile: folder + "/a.pub", encoding: .utf8)
        let server = try await TestServer.start { http in http.auth.jwt = JWTConfiguration(rs256PublicKeyPEM: publicKey) }
        func mint(_ name: String) async throws -> String {
            try await TokenMinter.mint(key: .rs256(privateKeyPEM: try String(contentsOfFile: folder + "/\(name).pem", encoding: .utf8)),
                                       subject: "ana", readScopes: ["*"], writeScopes: ["*"], admin: false, ttlSeconds: 600,
                                       audience: nil, issuer: nil)
        }
        let good = try await mint("a")
        let forged = try await mint("b")
        let hs = try await token("ana")
        let port = server.port
        let frame = try requestFrame(pull: .init(cursor: 0))
        let statuses = try await onThread {
            [try postFrame(port: port, frame, credential: good).status, try postFrame(port: port, frame, credential: forged).status,
             try postFrame(port: port, frame, credential: hs).status]
        }
        #expect(statuses == [200, 401, 401])
        try await server.stop()
    }

    @Test("a missing certificate file is a clear error at start")
    func missingCertificate() async throws {
        let folder = temporaryFolder()
        defer { removeFolder(folder) }
        let sync = SyncServer(store: try SQLiteMasterStore(path: folder + "/m.pier"))
        let configuration = HTTPConfiguration(port: 0, tls: TLSFiles(certificatePath: folder + "/nope.pem", privateKeyPath: folder + "/nope.key"))
        do {
            let running = try await PierHTTPServer.start(server: sync, configuration: configuration)
            try await running.shutdown()
            Issue.record("started without a certificate")
        } catch let error as PierError {
            #expect(error.message.contains("nope.pem"))
        }
    }
}
