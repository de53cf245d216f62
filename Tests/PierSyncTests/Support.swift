import Foundation
import Pier
import PierWire
import Synchronization

/// A server and any number of client stores in one temporary folder.
final class World {
    let dir: String
    let server: SyncServer
    let clock: TestClock
    private var counter = 0

    init(_ configure: (inout ServerConfig) -> Void = { _ in }, clock: TestClock = TestClock()) throws {
        dir = NSTemporaryDirectory() + "pier-sync-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var config = ServerConfig()
        configure(&config)
        self.clock = clock
        server = SyncServer(store: try SQLiteMasterStore(path: dir + "/server.pier"), config: config, clock: clock)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// A new client store; `clock` lets a test give one device a wrong clock.
    func client(_ name: String, clock: (any WallClock)? = nil) throws -> Database {
        var options = StoreOptions()
        options.clock = clock ?? self.clock
        return try Database(path: dir + "/\(name).pier", options: options)
    }

    @discardableResult
    func sync(_ db: Database, as identity: Identity = .trusted(), options: SyncOptions = SyncOptions(),
              resolver: ConflictResolver? = nil) throws -> SyncReport {
        try db.sync(with: server, as: identity, options: options, resolver: resolver)
    }

    /// The server copy's body as a dictionary, nil when missing or deleted.
    func serverBody(_ collection: String, _ id: String) throws -> [String: Any]? {
        guard let record = try server.record(collection, id), !record.deleted, let body = record.body else { return nil }
        return object(String(decoding: body, as: UTF8.self))
    }
}

/// A shared wall clock tests move by hand (every device agrees unless given its own).
final class TestClock: WallClock {
    private let now: Mutex<Int64>
    init(_ start: Int64 = 1_800_000_000_000) { now = Mutex(start) }
    func milliseconds() -> Int64 { now.withLock { $0 } }
    func advance(_ delta: Int64) { now.withLock { $0 += delta } }
}

/// A device whose clock is off by a fixed amount from another clock.
struct SkewedClock: WallClock {
    let base: TestClock
    let skew: Int64
    func milliseconds() -> Int64 { base.milliseconds() + skew }
}

func object(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

func body(_ db: Database, _ collection: String, _ id: String) throws -> [String: Any]? {
    try db.find(collection, id: id).map(object)
}

/// All live records of a store as (collection/id -> canonical body text), for comparing replicas.
func snapshot(_ db: Database) throws -> [String: String] {
    let rows = try JSONSerialization.jsonObject(with: Data(try db.query("SELECT collection, id, body FROM records ORDER BY collection, id").utf8)) as! [[String: Any]]
    var out: [String: String] = [:]
    for row in rows {
        let body = try JSONSerialization.data(withJSONObject: row["body"]!, options: [.sortedKeys])
        out["\(row["collection"]!)/\(row["id"]!)"] = String(decoding: body, as: UTF8.self)
    }
    return out
}

/// The server's live records in the same form.
func snapshot(_ server: SyncServer) throws -> [String: String] {
    var out: [String: String] = [:]
    var cursor: Int64 = 0
    while true {
        let response = try server.handle(request: SyncRequest(clientID: "snapshot-reader", batchSeq: 0,
                                                              pull: .init(cursor: cursor, maxRecords: 10_000, maxBytes: 64 << 20)),
                                         identity: Identity(user: "snapshot-reader"))
        for record in response.records {
            let key = "\(record.collection)/\(record.id)"
            if record.deleted { out[key] = nil; continue }
            let value = try JSONSerialization.jsonObject(with: Data(record.body ?? []))
            out[key] = String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
        }
        cursor = response.cursor
        if !response.hasMore { return out }
    }
}

/// A transport that can fail on purpose: before the server sees a request, or after the
/// server processed it (the reply is lost).
final class FlakyTransport: SyncTransport {
    enum Fault { case dropRequest, dropReply }
    let inner: InProcessTransport
    var faults: [Int: Fault] = [:]
    private(set) var calls = 0

    init(server: SyncServer, identity: Identity = .trusted()) {
        inner = InProcessTransport(server: server, identity: identity)
    }

    func roundTrip(_ request: [UInt8]) throws(PierError) -> [UInt8] {
        calls += 1
        switch faults[calls] {
        case .dropRequest: throw PierError(.network, "connection reset before the request arrived")
        case .dropReply:
            _ = try inner.roundTrip(request)
            throw PierError(.network, "connection reset before the reply arrived")
        case nil: return try inner.roundTrip(request)
        }
    }
}

/// Hands values to worker threads in tests that give each thread its own Database.
/// `@unchecked` because each thread touches only its own element; the server they share
/// is `Sendable` (its master store serialises access).
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
