import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `pier` executable next to the test bundle (`swift build --build-tests` builds it).
let pierExecutable: String? = {
    let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [folder, folder.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("pier").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}()

/// A finished run of a program.
struct ProgramRun: Sendable {
    var status: Int32
    var output: String
    var errors: String
}

func runToEnd(_ path: String, _ arguments: [String], environment: [String: String] = [:]) throws -> ProgramRun {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProgramRun(status: process.terminationStatus, output: String(decoding: out, as: UTF8.self), errors: String(decoding: err, as: UTF8.self))
}

@Suite("pier serve and pier token (the executable)", .enabled(if: pierExecutable != nil, "the pier executable is not built"))
struct ServeCommandTests {
    @Test("configuration errors are named clearly and exit 1")
    func configurationErrors() async throws {
        let pier = try #require(pierExecutable)
        let folder = temporaryFolder()
        defer { removeFolder(folder) }
        try #"{"http": {"lisen": "127.0.0.1:0"}}"#.write(toFile: folder + "/typo.json", atomically: true, encoding: .utf8)
        let runs = try await onThread {
            [try runToEnd(pier, ["serve", "--config", folder + "/typo.json", "--store", folder + "/m.pier"]),
             try runToEnd(pier, ["serve", "--listen", "localhost", "--store", folder + "/m.pier"]),
             try runToEnd(pier, ["serve", "--store", folder + "/m.pier"], environment: ["PIER_LISTEN": "127.0.0.1:http"]),
             try runToEnd(pier, ["serve", "--listen", "127.0.0.1:0"]),
             try runToEnd(pier, ["serve", "--listen", "127.0.0.1:0", "--store", "postgres://pier@127.0.0.1:9/pier?connect_timeout=5"])]
        }
        #expect(runs.allSatisfy { $0.status == 1 })
        #expect(runs[0].errors.contains(#"unknown key "lisen" in http"#), "\(runs[0].errors)")
        #expect(runs[1].errors.contains("HOST:PORT"), "\(runs[1].errors)")
        #expect(runs[2].errors.contains("HOST:PORT"), "the environment is read: \(runs[2].errors)")
        #expect(runs[3].errors.contains("no master store"), "\(runs[3].errors)")
        #expect(runs[4].errors.contains("PIER_ENETWORK") && runs[4].errors.contains("127.0.0.1:9"), "a PostgreSQL store that is not there: \(runs[4].errors)")
    }

    @Test("pier serve announces its URL first, serves a token from pier token, and exits 0 on SIGTERM")
    func serveAndStop() async throws {
        let pier = try #require(pierExecutable)
        let folder = temporaryFolder()
        defer { removeFolder(folder) }
        let secret = "0123456789abcdef0123456789abcdef"
        let minted = try await onThread { try runToEnd(pier, ["token", "--secret", secret, "--sub", "root", "--admin", "--ttl", "60"]) }
        #expect(minted.status == 0)
        let token = minted.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.split(separator: ".").count == 3)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: pier)
        process.arguments = ["serve", "--listen", "127.0.0.1:0", "--store", folder + "/m.pier"]
        process.environment = ProcessInfo.processInfo.environment.merging(["PIER_JWT_SECRET": secret]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let handle = output.fileHandleForReading
        let firstLine = try await onThread { () -> String in
            var bytes: [UInt8] = []
            while true {
                let byte = handle.readData(ofLength: 1)
                if byte.isEmpty || byte.first == UInt8(ascii: "\n") { break }
                bytes.append(byte.first!)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        #expect(firstLine.hasPrefix("pier serve: listening on http://127.0.0.1:"))
        let port = Int(firstLine.split(separator: ":").last ?? "") ?? 0
        let (health, log) = try await onThread {
            (try get(port: port, "/v1/health"), try get(port: port, "/v1/admin/log", credential: token))
        }
        #expect(health.status == 200)
        #expect(log.status == 200, "a token minted by pier token is accepted")
        kill(process.processIdentifier, SIGTERM)
        try await onThread { process.waitUntilExit() }
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
    }
}
