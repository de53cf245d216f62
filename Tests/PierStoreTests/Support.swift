import CSQLite
import Foundation
import Synchronization
@testable import PierStore

/// A wall clock the test sets by hand.
final class FakeClock: WallClock {
    private let now: Mutex<Int64>
    init(_ start: Int64) { now = Mutex(start) }
    func milliseconds() -> Int64 { now.withLock { $0 } }
    func set(_ value: Int64) { now.withLock { $0 = value } }
    func advance(_ delta: Int64) { now.withLock { $0 += delta } }
}

/// A fresh temporary folder, removed when the value is dropped at the end of a test.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "pier-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

/// Runs SQL on a store file through a separate raw SQLite connection (to simulate what the
/// sync engine or another program does to the file).
func rawSQL(_ path: String, _ sql: String) throws {
    var db: OpaquePointer?
    guard sqlite3_open(path, &db) == SQLITE_OK else { throw PierError(.io, "cannot open \(path)") }
    defer { sqlite3_close(db) }
    sqlite3_busy_timeout(db, 2000)
    var message: UnsafeMutablePointer<CChar>?
    if sqlite3_exec(db, sql, nil, nil, &message) != SQLITE_OK {
        let text = message.map { String(cString: $0) } ?? "?"
        sqlite3_free(message)
        throw PierError(.internalError, text)
    }
}

func fileBytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

/// Parses JSON text returned by the store (tests only; the library never parses bodies).
func json(_ text: String) -> Any { try! JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) }
func object(_ text: String) -> [String: Any] { json(text) as! [String: Any] }
func rows(_ text: String) -> [[String: Any]] { json(text) as! [[String: Any]] }

/// Makes a record look as if the server had acknowledged it at `version`.
func markSynced(_ path: String, _ collection: String, _ id: String, version: Int64) throws {
    try rawSQL(path, """
        UPDATE pier_records SET is_from_server = 1, is_modified = 0, sync_state = 0,
            server_body = body, server_version = \(version), base_version = \(version), changed_fields = NULL
        WHERE collection = '\(collection)' AND id = '\(id)'
        """)
}


/// The first column of the first row of `sql`, read through a raw SQLite connection.
func rawScalar(_ path: String, _ sql: String) throws -> String? {
    var db: OpaquePointer?
    guard sqlite3_open(path, &db) == SQLITE_OK else { throw PierError(.io, "cannot open \(path)") }
    defer { sqlite3_close(db) }
    var stmt: OpaquePointer?
    guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else { throw PierError(.internalError, String(cString: sqlite3_errmsg(db))) }
    defer { sqlite3_finalize(stmt) }
    guard sqlite3_step(stmt) == SQLITE_ROW, let text = sqlite3_column_text(stmt, 0) else { return nil }
    return String(cString: text)
}
