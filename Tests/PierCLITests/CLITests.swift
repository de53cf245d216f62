import Foundation
import Pier
import Testing

/// Runs the `pier` command-line tool (built next to the tests) and checks what a user sees.
enum CLI {
    /// The built `pier` binary: $PIER_CLI, or the one beside this test bundle.
    static var path: String {
        if let env = ProcessInfo.processInfo.environment["PIER_CLI"] { return env }
        let bundle = Bundle.main.bundleURL.deletingLastPathComponent()
        let candidates = [bundle.appendingPathComponent("pier").path, ".build/debug/pier"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ arguments: [String]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// A server with a manual collection and two devices whose edits of jobs/j1 conflict.
struct ConflictedWorld {
    let folder = NSTemporaryDirectory() + "pier-cli-" + UUID().uuidString
    var serverPath: String { folder + "/server.pier" }
    var devicePath: String { folder + "/b.pier" }

    /// Removes the folder with the server's and the devices' stores.
    func remove() { try? FileManager.default.removeItem(atPath: folder) }

    init() throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var config = ServerConfig()
        config.collections = ["jobs": CollectionPolicy(.manual)]
        let server = SyncServer(store: try SQLiteMasterStore(path: serverPath), config: config)
        let a = try Database(path: folder + "/a.pier"), b = try Database(path: devicePath)
        defer { a.close(); b.close() }
        try a.put("jobs", id: "j1", body: #"{"status":"open","tech":"ana"}"#)
        _ = try a.sync(with: server)
        _ = try b.sync(with: server)
        try a.patch("jobs", id: "j1", patch: #"{"status":"done"}"#)
        _ = try a.sync(with: server)
        try b.patch("jobs", id: "j1", patch: #"{"status":"waiting for parts","eta":3}"#)
        _ = try b.sync(with: server)
    }
}

@Suite("pier command-line tool")
struct CLITests {
    @Test("conflicts list shows both copies side by side, marks differing fields, and --json gives the API's objects")
    func conflictsList() throws {
        let world = try ConflictedWorld()
        defer { world.remove() }
        let table = try CLI.run(["conflicts", "list", world.devicePath])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("jobs/j1"))
        let statusLine = try #require(table.stdout.split(separator: "\n").first { $0.contains("status") && $0.contains("done") })
        #expect(statusLine.contains("≠"))
        #expect(statusLine.contains("waiting for parts"))
        let techLine = try #require(table.stdout.split(separator: "\n").first { $0.contains("tech") })
        #expect(!techLine.contains("≠"))

        let json = try CLI.run(["conflicts", "list", "--json", world.devicePath])
        let array = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(array.count == 1)
        #expect((array[0]["server_body"] as? [String: Any])?["status"] as? String == "done")
        #expect((array[0]["local_body"] as? [String: Any])?["eta"] as? Int == 3)
    }

    @Test("conflicts resolve settles a conflict once; a wrong id or a missing choice is a clear error")
    func conflictsResolve() throws {
        let world = try ConflictedWorld()
        defer { world.remove() }
        let db = try Database(path: world.devicePath)
        let id = try #require(try db.conflicts().first?.conflictID)
        db.close()

        let neither = try CLI.run(["conflicts", "resolve", world.devicePath, id])
        #expect(neither.status != 0)
        #expect(neither.stderr.contains("--keep"))
        let bad = try CLI.run(["conflicts", "resolve", world.devicePath, id, "--merged", "{not json"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("PIER_EINVALID"))
        let resolved = try CLI.run(["conflicts", "resolve", world.devicePath, id, "--merged", #"{"status":"done","eta":3}"#])
        #expect(resolved.status == 0, "\(resolved.stderr)")
        let again = try CLI.run(["conflicts", "resolve", world.devicePath, id, "--keep", "local"])
        #expect(again.status != 0)
        #expect(again.stderr.contains("PIER_ENOTFOUND"))

        let reopened = try Database(path: world.devicePath)
        defer { reopened.close() }
        #expect(try reopened.conflicts().isEmpty)
        #expect(try reopened.get("jobs", id: "j1") == #"{"status":"done","eta":3}"#)
        #expect(try reopened.syncState("jobs", id: "j1") == .pending)
    }

    @Test("log filters the business log and pages; a missing master store is PIER_ENOTFOUND")
    func log() throws {
        let world = try ConflictedWorld()
        defer { world.remove() }
        let all = try CLI.run(["log", "--store", world.serverPath, "--json"])
        #expect(all.status == 0, "\(all.stderr)")
        let lines = all.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        let conflict = try CLI.run(["log", "--store", world.serverPath, "--outcome", "conflict", "--json"])
        let entry = try #require(try JSONSerialization.jsonObject(with: Data(conflict.stdout.utf8)) as? [String: Any])
        #expect(entry["record_id"] as? String == "j1")
        let page = try CLI.run(["log", "--store", world.serverPath, "--after", "2", "--json"])
        #expect(page.stdout.split(separator: "\n").count == 1)
        let table = try CLI.run(["log", "--store", world.serverPath, "--limit", "2"])
        #expect(table.stdout.contains("(more: --after 2)"))
        let missing = try CLI.run(["log", "--store", world.folder + "/nothing.pier"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("PIER_ENOTFOUND"))
    }

    @Test("inspect reports pending changes and conflicts")
    func inspect() throws {
        let world = try ConflictedWorld()
        defer { world.remove() }
        let out = try CLI.run(["inspect", world.devicePath])
        #expect(out.status == 0)
        #expect(out.stdout.contains("conflicts      1"))
        let missing = try CLI.run(["conflicts", "list", world.folder + "/none.pier"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("PIER_ENOTFOUND"))
    }

    @Test("inspect reports encryption without the key, and the contents with it; a wrong key is PIER_EKEY")
    func inspectEncrypted() throws {
        let folder = NSTemporaryDirectory() + "pier-cli-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/secret.pier"
        var options = StoreOptions()
        options.encryption = Encryption(.passphrase("hunter2"), iterations: 2_000)
        let db = try Database(path: path, options: options)
        try db.put("jobs", id: "j1", body: #"{"status":"open"}"#)
        db.close()

        let locked = try CLI.run(["inspect", path])
        #expect(locked.status == 0)
        #expect(locked.stdout.contains("encrypted      yes: AES-256-GCM"))
        #expect(locked.stdout.contains("PBKDF2-HMAC-SHA256 with 2000 iterations"))
        #expect(!locked.stdout.contains("jobs"))
        let json = try CLI.run(["inspect", path, "--json"])
        #expect(json.stdout.contains(#""encrypted":true"#) && json.stdout.contains(#""iterations":2000"#))

        setenv("PIER_TEST_PASSPHRASE", "hunter2", 1)
        setenv("PIER_TEST_WRONG", "nope", 1)
        let open = try CLI.run(["inspect", path, "--passphrase-env", "PIER_TEST_PASSPHRASE"])
        #expect(open.status == 0)
        #expect(open.stdout.contains("jobs"))
        let wrong = try CLI.run(["inspect", path, "--passphrase-env", "PIER_TEST_WRONG"])
        #expect(wrong.status != 0)
        #expect(wrong.stderr.contains("PIER_EKEY"))

        let plain = folder + "/plain.pier"
        try Database(path: plain).close()
        let out = try CLI.run(["inspect", plain])
        #expect(out.stdout.contains("encrypted      no"))
        let plainJSON = try CLI.run(["inspect", plain, "--json"])
        #expect(plainJSON.stdout.contains(#""encrypted":false}"#))
        let openJSON = try CLI.run(["inspect", path, "--json", "--passphrase-env", "PIER_TEST_PASSPHRASE"])
        #expect(openJSON.stdout.contains(#""collections""#) && openJSON.stdout.contains(#""encrypted":true"#))
    }

    @Test("pier key encrypts, changes the passphrase, rotates the data key and writes a plain copy; a wrong key is PIER_EKEY")
    func keyCommands() throws {
        let folder = NSTemporaryDirectory() + "pier-cli-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/field.pier"
        let db = try Database(path: path)
        try db.put("jobs", id: "j1", body: #"{"status":"open"}"#)
        db.close()
        let keyFile = folder + "/raw.key"
        FileManager.default.createFile(atPath: keyFile, contents: Data((0..<32).map { UInt8($0) }))
        setenv("PIER_KEY_A", "first passphrase", 1)
        setenv("PIER_KEY_B", "second passphrase", 1)

        var out = try CLI.run(["key", "encrypt", path, "--new-passphrase-env", "PIER_KEY_A", "--iterations", "2000"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(isEncryptedFile(path))
        out = try CLI.run(["key", "change", path, "--passphrase-env", "PIER_KEY_A", "--new-passphrase-env", "PIER_KEY_B", "--iterations", "2000"])
        #expect(out.status == 0, "\(out.stderr)")
        out = try CLI.run(["key", "change", path, "--passphrase-env", "PIER_KEY_A", "--new-key-file", keyFile])
        #expect(out.status != 0 && out.stderr.contains("PIER_EKEY"))
        out = try CLI.run(["key", "rekey", path, "--passphrase-env", "PIER_KEY_B", "--new-key-file", keyFile])
        #expect(out.status == 0, "\(out.stderr)")
        var options = StoreOptions()
        options.encryption = Encryption(.raw((0..<32).map { UInt8($0) }))
        let reopened = try Database(path: path, options: options)
        #expect(try reopened.get("jobs", id: "j1") == #"{"status":"open"}"#)
        reopened.close()
        let plain = folder + "/plain.pier"
        out = try CLI.run(["key", "decrypt", path, "--to", plain, "--key-file", keyFile])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(!isEncryptedFile(plain))
        let copy = try Database(path: plain)
        #expect(try copy.get("jobs", id: "j1") == #"{"status":"open"}"#)
        copy.close()
        out = try CLI.run(["key", "encrypt", plain])
        #expect(out.status != 0 && out.stderr.contains("--new-passphrase-env"))
    }

    @Test("the demo tells the whole story over loopback HTTP and ends with both technicians agreeing")
    func demo() throws {
        let folder = NSTemporaryDirectory() + "pier-demo-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let out = try CLI.run(["demo", "--directory", folder])
        #expect(out.status == 0, "\(out.stderr)")
        for line in ["listens on http://127.0.0.1:", "Ben's later edit stands", "both edits kept", "readings reached the server",
                     "blocked until he decides: PIER_ECONFLICT", "Ana now sees job-17 as \"done\"", "are identical", "conflict "] {
            #expect(out.stdout.contains(line), "the demo should say \(line.debugDescription)")
        }
        let log = try CLI.run(["log", "--store", folder + "/server.pier", "--outcome", "merged", "--json"])
        #expect(log.stdout.contains(#""record_id":"rep-17""#))
    }
}
