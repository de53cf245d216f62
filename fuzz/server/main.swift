// libFuzzer target: the sync server's request handler with structured inputs (issue 7,
// part 4). The input bytes choose a whole sync request (client, batch number, changes with
// their operations, collections, ids, scopes, base versions, clocks and bodies, the pull),
// an identity and the collection policies; it is encoded as a valid frame, so the fuzzer
// explores the handler's logic rather than the decoder's (scripts/fuzz wire does that).
// Each input runs against a fresh in-memory master store holding a few records, so a
// finding reproduces from its input alone.
//
// Crashes, hangs and these failures are findings: the handler answered with something
// that is not a frame, or with PIER_ERROR (a bug, never a refusal of bad input).
import PierServer
import PierStore
import PierWire

/// Reads choices from the fuzzer's bytes; past the end every choice is 0.
struct Choices {
    let bytes: UnsafeRawBufferPointer
    var at = 0

    mutating func byte() -> UInt8 {
        defer { at += 1 }
        return at < bytes.count ? bytes[at] : 0
    }
    mutating func pick<T>(_ options: [T]) -> T { options[Int(byte()) % options.count] }
    mutating func int64() -> Int64 {
        switch byte() % 4 {
        case 0: return Int64(byte()) - 8
        case 1: return Int64(byte()) << 8 | Int64(byte())
        case 2: return [Int64.min, Int64.max, -1, 0, 1 << 62][Int(byte()) % 5]
        default: return (0..<8).reduce(Int64(0)) { acc, _ in acc << 8 | Int64(byte()) }
        }
    }
    mutating func text(_ alphabet: [String]) -> String {
        if byte() % 8 == 0 {
            let n = Int(byte() % 40)
            return String(decoding: (0..<n).map { _ in byte() }, as: UTF8.self)
        }
        return pick(alphabet)
    }
    mutating func body() -> [UInt8]? {
        switch byte() % 6 {
        case 0: return nil
        case 1:
            let n = Int(byte())
            return (0..<n).map { _ in byte() }
        default:
            let fields = Int(byte() % 5)
            var out = "{"
            for i in 0..<fields {
                if i > 0 { out += "," }
                out += "\"\(pick(["a", "b", "c", "status", "n", ""]))\":"
                out += pick(["1", "\"x\"", "null", "{\"d\":2}", "[1,2]", "true", "1e999", "\"\\u0000\"", "{}"])
            }
            return Array((out + "}").utf8)
        }
    }
}

let collections = ["jobs", "notes", "prices", "merged", "manual", "first"]
let ids = ["a", "b", "c", "0190f3c8-7d5a-7c41-9a1e-7f0e2c3b4d5e", "x/y", ""]
let scopes = ["north", "south", "", "default"]
let clients = ["c1", "c2", "c3", ""]

func server() -> SyncServer {
    var config = ServerConfig()
    config.collections["merged"] = CollectionPolicy(.mergeFields, fieldPolicies: ["status": .manual])
    config.collections["manual"] = CollectionPolicy(.manual, updateDelete: .manual)
    config.collections["first"] = CollectionPolicy(.firstWriteWins, updateDelete: .deleteWins)
    config.collections["prices"] = CollectionPolicy(.lastWriteWins, readableByAll: true)
    let store = try! SQLiteMasterStore(path: ":memory:")
    let server = SyncServer(store: store, config: config)
    // A few records to conflict with.
    let seed = SyncRequest(clientID: "seed", batchSeq: 1, changes: collections.flatMap { collection in
        ids.prefix(3).enumerated().map { (n, id) in
            SyncRequest.Change(collection: collection, id: id, op: .upsert, baseVersion: 0, hlc: Int64(n + 1) << 16,
                               scope: scopes[n % 2], body: WireBytes(Array(#"{"a":1,"b":"two","c":{"d":3}}"#.utf8)))
        }
    })
    _ = try! server.handle(request: seed, identity: .trusted())
    return server
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var c = Choices(bytes: UnsafeRawBufferPointer(start: data, count: size))
    let identity = c.pick([
        Identity.trusted("seed"), Identity.trusted("other"),
        Identity(user: "ana", readScopes: ["north"], writeScopes: ["north"]),
        Identity(user: "ro", readScopes: [], writeScopes: []),
    ])
    var changes: [SyncRequest.Change] = []
    for _ in 0..<Int(c.byte() % 12) {
        let op = c.pick(SyncRequest.Change.Operation.allCases)
        let body = c.body()
        changes.append(SyncRequest.Change(
            collection: c.text(collections), id: c.text(ids), op: op, baseVersion: c.int64(), hlc: c.int64(),
            scope: c.text(scopes), body: op == .delete ? nil : body.map { WireBytes($0) },
            changedFields: (0..<Int(c.byte() % 3)).map { _ in c.text(["a", "b", "c", "status"]) }))
    }
    let pull: SyncRequest.PullRequest? = c.byte() % 3 == 0 ? nil
        : SyncRequest.PullRequest(cursor: c.int64(), maxRecords: UInt32(c.byte()), maxBytes: UInt32(c.byte()) << 4,
                                  collections: (0..<Int(c.byte() % 3)).map { _ in c.text(collections) })
    let request = SyncRequest(clientID: c.text(clients), batchSeq: UInt64(c.byte() % 4), changes: changes, pull: pull)
    guard let frame = try? Frame.encode(.syncRequest(request)) else { return 0 }  // unencodable: not the handler's input
    let s = server()
    for _ in 0..<Int(1 + c.byte() % 2) {  // sometimes twice: a replay
        let answer = s.handle(frame: frame, identity: identity)
        switch try? Frame.decode(answer) {
        case .error(let e)?:
            if e.code == PierError.Code.internalError.rawValue { fatalError("internal error: \(e.message)") }
        case .syncResponse?:
            break
        default:
            fatalError("the handler's answer is not a response or error frame")
        }
    }
    return 0
}
