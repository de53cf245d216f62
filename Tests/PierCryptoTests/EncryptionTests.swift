import CSQLite
import Foundation
import Testing
@testable import PierCrypto
import Pier

/// A fresh temporary folder, removed when the value is dropped.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "pier-crypto-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

/// Low iteration counts keep the tests fast; the default is OWASP's 600,000.
let testIterations = 1_000

func passphrase(_ text: String) -> Encryption { Encryption(.passphrase(text), iterations: testIterations) }
let rawKey = Encryption(.raw((0..<32).map { UInt8($0 * 7 & 0xff) }))

func options(_ encryption: Encryption?) -> StoreOptions {
    var options = StoreOptions()
    options.encryption = encryption
    return options
}

func bytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
    let n = Array(needle.utf8)
    guard !n.isEmpty, haystack.count >= n.count else { return false }
    return Data(haystack).range(of: Data(n)) != nil
}

func expectCode(_ code: PierError.Code, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected \(code.name), got success", sourceLocation: sourceLocation)
    } catch let error as PierError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}

/// A raw SQLite connection through the encrypting VFS (any journal mode).
func rawConnection(_ path: String, _ key: Encryption) throws -> Encryption.OpenFile {
    do { return try Encryption.open(path: path, key: key, readOnly: false) } catch { throw error.pierError(path) }
}

/// PRAGMA integrity_check through a private connection (the store's query API is read-only
/// SELECTs over its views).
func integrityCheck(_ path: String, _ key: Encryption) throws -> String {
    let file = try rawConnection(path, key)
    defer { file.close() }
    let statement = try file.connection.prepare("PRAGMA integrity_check")
    defer { statement.reset() }
    guard try statement.step() else { return "" }
    return sqlite3_column_text(statement.stmt, 0).map { String(cString: $0) } ?? ""
}

@Suite("Encryption at rest")
struct EncryptionTests {
    @Test("round trip in WAL mode with a passphrase and with a raw key")
    func roundTrip() throws {
        let dir = TempDir()
        for (name, key) in [("pass.pier", passphrase("s3cret")), ("raw.pier", rawKey)] {
            let path = dir.file(name)
            do {
                let db = try Database(path: path, options: options(key))
                for i in 0..<500 {
                    try db.put("customers", id: "c\(i)", body: #"{"name":"Customer \#(i)","note":"\#(String(repeating: "x", count: i % 50))"}"#)
                }
                try db.delete("customers", id: "c7")
                db.close()
            }
            let db = try Database(path: path, options: options(key))
            #expect(try db.get("customers", id: "c42").contains("Customer 42"))
            #expect(try db.find("customers", id: "c7") == nil)
            #expect(try db.list("customers", limit: 1000).count == 499)
            db.close()
            #expect(try integrityCheck(path, key) == "ok")
            let info = try #require(try Encryption.info(path: path))
            #expect(info.cipher == "AES-256-GCM")
            #expect(info.reserveBytes == 28 && info.pageSize == 4096)
            #expect(info.kdf == (name == "raw.pier" ? .rawKey : .pbkdf2SHA256))
            #expect(info.iterations == (name == "raw.pier" ? 0 : testIterations))
        }
    }

    @Test("round trip in rollback-journal mode, including a rolled-back transaction")
    func rollbackMode() throws {
        let dir = TempDir()
        let path = dir.file("journal.db")
        let key = passphrase("journal")
        try Encryption.createHeader(path: path, key: key.key, iterations: key.iterations, pageSize: 4096)
        do {
            let file = try rawConnection(path, key)
            defer { file.close() }
            let c = file.connection
            var reserve: Int32 = 28
            _ = sqlite3_file_control(c.db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve)
            try c.execute("PRAGMA journal_mode=DELETE; PRAGMA cache_size=2; CREATE TABLE t(k TEXT PRIMARY KEY, v TEXT)")
            try c.execute("BEGIN")
            for i in 0..<400 { try c.execute("INSERT INTO t VALUES ('k\(i)', '\(String(repeating: "v", count: 200))')") }
            try c.execute("COMMIT")
            // A transaction that spills pages (cache_size=2) and then rolls back.
            try c.execute("BEGIN")
            for i in 0..<400 { try c.execute("UPDATE t SET v='changed' WHERE k='k\(i)'") }
            #expect(fileSize(path + "-journal") != nil)
            try c.execute("ROLLBACK")
        }
        let file = try rawConnection(path, key)
        defer { file.close() }
        let statement = try file.connection.prepare("SELECT count(*), sum(v='changed') FROM t")
        #expect(try statement.step())
        #expect(statement.int64(0) == 400 && statement.int64(1) == 0)
        statement.reset()
    }

    @Test("a hot journal left by a crash rolls back under encryption; a flipped byte in it is PIER_ECORRUPT")
    func hotJournal() throws {
        let dir = TempDir()
        let path = dir.file("hot.db")
        let key = rawKey
        try Encryption.createHeader(path: path, key: key.key, iterations: key.iterations, pageSize: 4096)
        let file = try rawConnection(path, key)
        let c = file.connection
        var reserve: Int32 = 28
        _ = sqlite3_file_control(c.db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve)
        try c.execute("PRAGMA journal_mode=DELETE; PRAGMA cache_size=2; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)")
        try c.execute("BEGIN")
        for i in 0..<300 { try c.execute("INSERT INTO t VALUES (\(i), 'original \(i)')") }
        try c.execute("COMMIT")
        try c.execute("BEGIN")
        for i in 0..<300 { try c.execute("UPDATE t SET v='uncommitted' WHERE k=\(i)") }
        // The files as a crash at this moment leaves them: spilled pages in the database,
        // their originals in the journal.
        let crashed = dir.file("crashed.db")
        FileManager.default.createFile(atPath: crashed, contents: Data(bytes(path)))
        FileManager.default.createFile(atPath: crashed + "-journal", contents: Data(bytes(path + "-journal")))
        try c.execute("ROLLBACK")
        file.close()
        // Neither the journal nor the database shows the content of either version.
        for name in [crashed, crashed + "-journal"] {
            let content = bytes(name)
            #expect(!contains(content, "original 12") && !contains(content, "uncommitted"), "plaintext in \(name)")
        }

        let tampered = dir.file("tampered.db")
        FileManager.default.createFile(atPath: tampered, contents: Data(bytes(crashed)))
        var journal = bytes(crashed + "-journal")
        #expect(journal.count > 512 + 4104)
        // Flip a byte inside the first page record: after the header's sector comes the
        // record's page number, then the page.
        let sector = Int(journal[20]) << 24 | Int(journal[21]) << 16 | Int(journal[22]) << 8 | Int(journal[23])
        #expect(sector >= 512)
        journal[sector + 4 + 1000] ^= 0x20
        FileManager.default.createFile(atPath: tampered + "-journal", contents: Data(journal))

        let recovered = try rawConnection(crashed, key)
        let statement = try recovered.connection.prepare("SELECT count(*), sum(v='uncommitted') FROM t")
        #expect(try statement.step())
        #expect(statement.int64(0) == 300 && statement.int64(1) == 0)
        statement.reset()
        recovered.close()

        let before = bytes(tampered)
        let broken = try rawConnection(tampered, key)
        expectCode(.corrupt) { try broken.connection.execute("SELECT count(*) FROM t") }
        broken.close()
        #expect(bytes(tampered) == before ? true : false, "a failed rollback must not modify the database")
    }

    @Test("wrong passphrase, wrong raw key, no key, key on a plain file: PIER_EKEY, file untouched")
    func wrongKeys() throws {
        let dir = TempDir()
        let path = dir.file("locked.pier")
        do {
            let db = try Database(path: path, options: options(passphrase("right")))
            try db.put("notes", id: "n1", body: #"{"text":"hello"}"#)
            db.close()
        }
        let before = bytes(path)
        expectCode(.key) { _ = try Database(path: path, options: options(passphrase("wrong"))) }
        expectCode(.key) { _ = try Database(path: path, options: options(rawKey)) }
        do {
            _ = try Database(path: path)
            Issue.record("opened an encrypted store without a key")
        } catch {
            #expect(error.code == .key)
            #expect(error.message.contains("encrypted"))
        }
        expectCode(.key) { _ = try Database(path: path, options: StoreOptions().with { $0.readOnly = true }) }
        #expect(bytes(path) == before ? true : false)

        let plain = dir.file("plain.pier")
        do { let db = try Database(path: plain); try db.put("a", id: "1", body: "{}"); db.close() }
        let plainBefore = bytes(plain)
        do {
            _ = try Database(path: plain, options: options(passphrase("x")))
            Issue.record("opened a plain store with a key")
        } catch {
            #expect(error.code == .key)
            #expect(error.message.contains("not encrypted"))
        }
        #expect(bytes(plain) == plainBefore ? true : false)
        expectCode(.invalid) { _ = try Database(path: dir.file("new.pier"), options: options(Encryption(.raw([1, 2, 3])))) }
        expectCode(.invalid) { _ = try Database(path: dir.file("new2.pier"), options: options(Encryption(.passphrase("")))) }
        expectCode(.invalid) { _ = try Database(path: dir.file("new3.pier"), options: options(Encryption(.passphrase("p"), iterations: 10))) }
    }

    @Test("a flipped byte on sampled pages of the database and the WAL is PIER_ECORRUPT, never wrong data")
    func tamperDatabaseAndWAL() throws {
        let dir = TempDir()
        let path = dir.file("tamper.pier")
        let key = rawKey
        do {
            let db = try Database(path: path, options: options(key))
            for i in 0..<300 { try db.put("orders", id: "o\(i)", body: #"{"total":\#(i),"item":"widget \#(i)"}"#) }
            db.close()
        }
        let clean = bytes(path)
        // Pages in use (free pages are never read, so a change there changes nothing).
        var used: [Int] = []
        do {
            let file = try rawConnection(path, key)
            let statement = try file.connection.prepare("SELECT DISTINCT pageno FROM dbstat")
            while try statement.step() { used.append(Int(statement.int64(0)) - 1) }
            statement.reset()
            file.close()
        }
        #expect(used.count > 5)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<12 {
            let page = used.randomElement(using: &generator)!
            let within = Int.random(in: 0..<4096, using: &generator)
            var copy = clean
            copy[4096 + page * 4096 + within] ^= UInt8(1 << Int.random(in: 0..<8, using: &generator))
            let target = dir.file("t.pier")
            try? FileManager.default.removeItem(atPath: target)
            try? FileManager.default.removeItem(atPath: target + "-wal")
            try? FileManager.default.removeItem(atPath: target + "-shm")
            FileManager.default.createFile(atPath: target, contents: Data(copy))
            do {
                let db = try Database(path: target, options: options(key))
                // Touch every page: the flipped one must fail.
                _ = try db.store.query("SELECT count(*), sum(length(body)) FROM records")
                db.close()
                // integrity_check reports unreadable pages as rows (8202 = SQLITE_IOERR_DATA).
                let report = try integrityCheck(target, key)
                #expect(report.contains("error code=8202"), "page \(page + 1) byte \(within): \(report)")
            } catch let error as PierError {
                #expect(error.code == .corrupt, "page \(page + 1) byte \(within): \(error)")
            }
        }

        // The WAL: copy the files while the writer is still open (nothing checkpointed).
        let walPath = dir.file("wal.pier")
        let db = try Database(path: walPath, options: options(key))
        // 50 small writes stay far below the 1000-page autocheckpoint: all in the WAL.
        for i in 0..<50 { try db.put("orders", id: "w\(i)", body: #"{"total":\#(i)}"#) }
        let wal = bytes(walPath + "-wal")
        let db0 = bytes(walPath)
        #expect(wal.count > 32 + 4120 * 3)
        let frames = (wal.count - 32) / 4120
        // A flipped byte in a committed frame's page, and a frame header relabelled to
        // another page number: both PIER_ECORRUPT.
        var cases: [(String, [UInt8])] = []
        for frame in [0, frames / 2] {
            var copy = wal
            copy[32 + frame * 4120 + 24 + 1234] ^= 0x01
            cases.append(("page of frame \(frame)", copy))
        }
        var relabelled = wal
        relabelled[32 + 3] ^= 0x01  // frame 0's page number (big-endian, low byte)
        cases.append(("page number of frame 0", relabelled))
        for (index, (what, copy)) in cases.enumerated() {
            let target = dir.file("w\(index).pier")
            FileManager.default.createFile(atPath: target, contents: Data(db0))
            FileManager.default.createFile(atPath: target + "-wal", contents: Data(copy))
            do {
                let opened = try Database(path: target, options: options(key))
                _ = try opened.store.query("SELECT count(*), sum(length(body)) FROM records")
                opened.close()
                Issue.record("WAL \(what): no error")
            } catch {
                #expect(error.code == .corrupt, "WAL \(what): \(error)")
            }
        }
        // The last frame is the commit frame of the last transaction: damage there looks
        // exactly like a frame torn by a power cut while it was written, and recovery drops
        // that transaction, as SQLite drops a torn frame (never wrong data).
        var torn = wal
        for i in 0..<2000 { torn[32 + (frames - 1) * 4120 + 24 + 100 + i] = UInt8(i & 0xff) }
        let target = dir.file("torn.pier")
        FileManager.default.createFile(atPath: target, contents: Data(db0))
        FileManager.default.createFile(atPath: target + "-wal", contents: Data(torn))
        let recovered = try Database(path: target, options: options(key))
        #expect(try recovered.find("orders", id: "w49") == nil)
        #expect(try recovered.get("orders", id: "w48") == #"{"total":48}"#)
        #expect(try recovered.list("orders", limit: 1000).count == 49)
        recovered.close()
        db.close()
    }

    @Test("changing the passphrase rewraps the data key without touching a page")
    func changePassphrase() throws {
        let dir = TempDir()
        let path = dir.file("change.pier")
        do {
            let db = try Database(path: path, options: options(passphrase("old")))
            for i in 0..<100 { try db.put("c", id: "\(i)", body: #"{"i":\#(i)}"#) }
            db.close()
        }
        let pagesBefore = Array(bytes(path)[4096...])
        try Encryption.changeKey(path: path, from: passphrase("old"), to: passphrase("new"))
        #expect(Array(bytes(path)[4096...]) == pagesBefore ? true : false)
        expectCode(.key) { _ = try Database(path: path, options: options(passphrase("old"))) }
        let db = try Database(path: path, options: options(passphrase("new")))
        #expect(try db.get("c", id: "42") == #"{"i":42}"#)
        db.close()
        #expect(try Encryption.info(path: path)?.keyGeneration == 2)
        // To a raw key and back while another connection stays open.
        let open = try Database(path: path, options: options(passphrase("new")))
        try Encryption.changeKey(path: path, from: passphrase("new"), to: rawKey)
        try open.put("c", id: "after", body: "{}")
        open.close()
        let reopened = try Database(path: path, options: options(rawKey))
        #expect(try reopened.get("c", id: "after") == "{}")
        reopened.close()
        expectCode(.key) { try Encryption.changeKey(path: path, from: passphrase("new"), to: rawKey) }
    }

    @Test("a passphrase change interrupted after the first slot: new passphrase works, the old one does not; finished on open")
    func interruptedChange() throws {
        let dir = TempDir()
        let path = dir.file("interrupted.pier")
        do { let db = try Database(path: path, options: options(passphrase("old"))); try db.put("c", id: "1", body: "{}"); db.close() }
        // Do what changeKey does, but stop after the first slot (a crash at that moment).
        var (header, dataKey) = try Encryption.unlock(path: path, key: .passphrase("old"))
        header.slot = try header.makeSlot(wrapping: dataKey, with: .passphrase("new"), iterations: testIterations, generation: header.generation + 1)
        try Encryption.writeSlots(path: path, header: header, order: [1])
        #expect(try Encryption.info(path: path)?.interruptedKeyChange == true)
        expectCode(.key) { _ = try Database(path: path, options: options(passphrase("old"))) }
        let db = try Database(path: path, options: options(passphrase("new")))
        #expect(try db.get("c", id: "1") == "{}")
        db.close()
        let info = try #require(try Encryption.info(path: path))
        #expect(!info.interruptedKeyChange && info.keyGeneration == 2)

        // A crash in the middle of writing a slot (torn slot): the other slot still works.
        var raw = bytes(path)
        raw[512 + 70] ^= 0xff
        FileManager.default.createFile(atPath: path, contents: Data(raw))
        let again = try Database(path: path, options: options(passphrase("new")))
        again.close()
        // Damage to both slots is corruption, not a wrong key.
        raw = bytes(path)
        raw[512 + 70] ^= 0xff
        raw[1024 + 70] ^= 0xff
        FileManager.default.createFile(atPath: path, contents: Data(raw))
        expectCode(.corrupt) { _ = try Database(path: path, options: options(passphrase("new"))) }
    }

    @Test("rekey rotates the data key and rewrites every page; refused while another connection is open")
    func rekey() throws {
        let dir = TempDir()
        let path = dir.file("rekey.pier")
        let db = try Database(path: path, options: options(passphrase("p")))
        for i in 0..<200 { try db.put("c", id: "\(i)", body: #"{"i":\#(i)}"#) }
        let other = try Database(path: path, options: options(passphrase("p")))
        db.close()
        expectCode(.busy) { try Encryption.rekey(path: path, key: passphrase("p")) }
        other.close()
        let before = bytes(path)
        try Encryption.rekey(path: path, key: passphrase("p"))
        let after = bytes(path)
        #expect(Array(before[24..<40]) != Array(after[24..<40]) ? true : false, "a new file id")
        #expect(fileSize(path + ".pier-rewrite") == nil)
        // No page survives unchanged.
        let count = min(before.count, after.count) / 4096
        for page in 1..<count {
            #expect(Array(before[(page * 4096)..<(page * 4096 + 4096)]) != Array(after[(page * 4096)..<(page * 4096 + 4096)]) ? true : false, "page \(page) unchanged")
        }
        var reopened = try Database(path: path, options: options(passphrase("p")))
        #expect(try reopened.get("c", id: "150") == #"{"i":150}"#)
        reopened.close()
        try Encryption.rekey(path: path, key: passphrase("p"), newKey: rawKey)
        expectCode(.key) { _ = try Database(path: path, options: options(passphrase("p"))) }
        reopened = try Database(path: path, options: options(rawKey))
        #expect(try reopened.list("c", limit: 500).count == 200)
        reopened.close()
    }

    @Test("encrypting a plain store in place and to a copy; decrypting to a plain copy")
    func encryptDecrypt() throws {
        let dir = TempDir()
        let plain = dir.file("plain.pier")
        do {
            let db = try Database(path: plain)
            for i in 0..<150 { try db.put("items", id: "i\(i)", body: #"{"label":"item \#(i)"}"#) }
            db.close()
        }
        let copy = dir.file("copy.pier")
        try Encryption.encrypt(path: plain, to: copy, key: passphrase("c"))
        #expect(!contains(bytes(copy), "item 42"))
        var db = try Database(path: copy, options: options(passphrase("c")))
        #expect(try db.get("items", id: "i42") == #"{"label":"item 42"}"#)
        db.close()
        expectCode(.invalid) { try Encryption.encrypt(path: plain, to: copy, key: passphrase("c")) }

        try Encryption.encrypt(path: plain, key: rawKey)
        #expect(isEncryptedFile(plain))
        expectCode(.key) { _ = try Database(path: plain) }
        db = try Database(path: plain, options: options(rawKey))
        #expect(try db.list("items", limit: 500).count == 150)
        let client = db.clientID
        db.close()

        let back = dir.file("back.pier")
        try Encryption.decrypt(path: plain, key: rawKey, to: back)
        #expect(!isEncryptedFile(back))
        #expect(contains(bytes(back), "item 42"))
        db = try Database(path: back)
        #expect(try db.get("items", id: "i99") == #"{"label":"item 99"}"#)
        #expect(db.clientID == client)
        db.close()
        expectCode(.invalid) { try Encryption.decrypt(path: plain, key: rawKey, to: back) }
        expectCode(.key) { try Encryption.decrypt(path: plain, key: passphrase("nope"), to: dir.file("x.pier")) }
        #expect(fileSize(dir.file("x.pier")) == nil)
    }

    @Test("the VFS is not the default: other SQLite users in the process open plain files as before")
    func otherUsersUnaffected() throws {
        let dir = TempDir()
        let encrypted = try Database(path: dir.file("e.pier"), options: options(rawKey))
        defer { encrypted.close() }
        #expect(String(cString: sqlite3_vfs_find(nil).pointee.zName) != CipherVFS.name)
        var db: OpaquePointer?
        #expect(sqlite3_open(dir.file("plain.sqlite"), &db) == SQLITE_OK)
        #expect(sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES ('visible text')", nil, nil, nil) == SQLITE_OK)
        sqlite3_close(db)
        #expect(contains(bytes(dir.file("plain.sqlite")), "visible text"))
    }

    @Test("no record content, id or collection name in any file, through writes, an interrupted transaction, a sort and a sync")
    func noPlaintext() throws {
        let dir = TempDir()
        let path = dir.file("secret.pier")
        let server = try SyncServer(store: SQLiteMasterStore(path: dir.file("server.db")))
        let db = try Database(path: path, options: options(passphrase("no plaintext")))
        var secrets: [String] = ["patients_2026", "invoices_zeta"]
        for i in 0..<120 {
            let id = "rec-\(UUID().uuidString)"
            let content = "Secret\(i)Content\(UUID().uuidString.prefix(8))"
            secrets += [id, content]
            try db.put(i % 2 == 0 ? "patients_2026" : "invoices_zeta", id: id, body: #"{"diagnosis":"\#(content)","n":\#(i)}"#)
        }
        // A transaction that is interrupted (rolled back) after writing.
        try db.store.begin()
        let abandoned = "AbandonedContent\(UUID().uuidString.prefix(8))"
        secrets.append(abandoned)
        for i in 0..<50 { try db.put("patients_2026", id: "abandoned-\(i)", body: #"{"x":"\#(abandoned)"}"#) }
        try db.store.rollback()
        // A large sort (temporary b-trees stay in memory).
        _ = try db.store.query("SELECT body FROM records ORDER BY body DESC")
        // A sync: pulled changes land in the store too.
        let report = try db.sync(with: server)
        #expect(report.pushed == 120)
        let files = [path, path + "-wal", path + "-shm", path + "-journal"]
        func scan(_ moment: String) {
            for file in files where fileSize(file) != nil {
                let content = bytes(file)
                for secret in secrets where contains(content, secret) {
                    Issue.record("\(moment): \(secret) found in \((file as NSString).lastPathComponent)")
                }
            }
        }
        scan("while open")
        db.close()
        scan("after close")
        #expect(fileSize(path)! > 4096 * 4)
    }
}

extension StoreOptions {
    func with(_ change: (inout StoreOptions) -> Void) -> StoreOptions {
        var copy = self
        change(&copy)
        return copy
    }
}

@Suite("Encryption through Database")
struct DatabaseEncryptionTests {
    @Test("Database.changeKey and Database.rekey keep the handle usable")
    func databaseAPI() throws {
        let dir = TempDir()
        let path = dir.file("db.pier")
        let db = try Database(path: path, options: options(passphrase("one")))
        try db.put("c", id: "1", body: #"{"v":1}"#)
        try db.changeKey(to: passphrase("two"))
        try db.put("c", id: "2", body: #"{"v":2}"#)
        try db.rekey()
        #expect(try db.get("c", id: "1") == #"{"v":1}"#)
        try db.rekey(to: rawKey)
        try db.put("c", id: "3", body: #"{"v":3}"#)
        db.close()
        expectCode(.key) { _ = try Database(path: path, options: options(passphrase("two"))) }
        let reopened = try Database(path: path, options: options(rawKey))
        #expect(try reopened.list("c").count == 3)
        // A failed rekey (another handle open) leaves the handle working.
        let other = try Database(path: path, options: options(rawKey))
        expectCode(.busy) { try reopened.rekey() }
        try reopened.put("c", id: "4", body: "{}")
        other.close()
        reopened.close()
        let plain = try Database(path: dir.file("plain.pier"))
        expectCode(.state) { try plain.rekey() }
        expectCode(.state) { try plain.changeKey(to: rawKey) }
        plain.close()
    }
}
