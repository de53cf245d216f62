// libFuzzer target: JSON merge patches (RFC 7396) and the server's field merge (issue 7,
// part 4). The input is three JSON texts separated by 0xFF bytes: a base body, an edit A
// and an edit B.
//
// Merge patch: when the base and A parse as objects, applying A to the base must give a
// JSON object that parses again, in which every member of A that is not null has A's value
// (objects merged recursively) and every null member of A is gone, and applying A a second
// time changes nothing (a merge patch is idempotent).
//
// Field merge: a fresh in-memory server with a merge_fields collection gets the base from
// device 1, then edit B from device 2 and edit A from device 1, both based on the base's
// version, each naming the fields it changed (as a device's changed_fields do). The merged
// record must be a JSON object; a field only A changed has A's value (absent when A removed
// it), a field only B changed has B's. Anything else, a crash or PIER_ERROR is a finding.
@testable import PierServer
import PierStore
import PierWire

func parts(_ data: UnsafeRawBufferPointer) -> [[UInt8]] {
    var out: [[UInt8]] = [[]]
    for byte in data {
        if byte == 0xFF { out.append([]) } else { out[out.count - 1].append(byte) }
    }
    while out.count < 3 { out.append(Array("{}".utf8)) }
    return Array(out.prefix(3))
}

func checkPatch(base: [UInt8], patch: [UInt8]) {
    guard var target = try? JSONObject(parsing: base), let edit = try? JSONObject(parsing: patch) else { return }
    do {
        try target.apply(patch: edit)
    } catch {
        return  // a nested value that is not valid JSON: refused, fine
    }
    guard let reparsed = try? JSONObject(parsing: target.bytes) else { fatalError("a patched object does not parse again") }
    for member in edit.members {
        let value = reparsed[member.key]
        if member.value == Array("null".utf8) {
            if value != nil { fatalError("a null member of the patch was not removed: \(member.key)") }
        } else if member.value.first != UInt8(ascii: "{") {
            if !JSONObject.sameValue(value, member.value) { fatalError("member \(member.key) does not have the patch's value") }
        } else if value?.first != UInt8(ascii: "{") {
            fatalError("member \(member.key) should be an object after an object patch")
        }
    }
    var twice = reparsed
    do { try twice.apply(patch: edit) } catch { fatalError("a patch that applied once fails the second time") }
    if !JSONObject.sameValue(twice.bytes, reparsed.bytes) { fatalError("a merge patch applied twice changed the result") }
}

/// The top-level fields whose values differ between two objects (what a device reports
/// as changed_fields when it pushes an edit of `base`).
func changed(_ edit: JSONObject, from base: JSONObject) -> [String] {
    Set(edit.keys).union(base.keys).filter { !JSONObject.sameValue(edit[$0], base[$0]) }.sorted()
}

func change(_ id: String, _ body: [UInt8], base: Int64, hlc: Int64, fields: [String] = []) -> SyncRequest.Change {
    SyncRequest.Change(collection: "m", id: id, op: .upsert, baseVersion: base, hlc: hlc, scope: "s", body: WireBytes(body),
                       changedFields: fields)
}

func checkFieldMerge(base: [UInt8], a: [UInt8], b: [UInt8]) {
    guard let baseObject = try? JSONObject(parsing: base), let aObject = try? JSONObject(parsing: a),
          let bObject = try? JSONObject(parsing: b) else { return }
    var config = ServerConfig()
    config.collections["m"] = CollectionPolicy(.mergeFields)
    let server = SyncServer(store: try! SQLiteMasterStore(path: ":memory:"), config: config)
    func push(_ client: String, _ seq: UInt64, _ c: SyncRequest.Change) -> SyncResponse.ChangeResult? {
        do {
            let response = try server.handle(request: SyncRequest(clientID: client, batchSeq: seq, changes: [c]), identity: .trusted())
            return response.results.first
        } catch {
            if error.code == .internalError { fatalError("internal error: \(error)") }
            return nil
        }
    }
    guard let first = push("d1", 1, change("r", base, base: 0, hlc: 1 << 16)), first.outcome == .applied else { return }
    guard push("d2", 1, change("r", b, base: first.version, hlc: 2 << 16, fields: changed(bObject, from: baseObject))) != nil else { return }
    guard push("d1", 2, change("r", a, base: first.version, hlc: 3 << 16, fields: changed(aObject, from: baseObject))) != nil else { return }
    guard let record = try? server.record("m", "r"), let body = record.body else { fatalError("the merged record is missing") }
    guard let merged = try? JSONObject(parsing: body) else { fatalError("the merged record is not a JSON object") }
    let keys = Set(baseObject.keys).union(aObject.keys).union(bObject.keys)
    for key in keys {
        let aChanged = !JSONObject.sameValue(aObject[key], baseObject[key])
        let bChanged = !JSONObject.sameValue(bObject[key], baseObject[key])
        if aChanged && !bChanged && !JSONObject.sameValue(merged[key], aObject[key]) {
            fatalError("field \(key) changed only by A lost A's value")
        }
        if bChanged && !aChanged && !JSONObject.sameValue(merged[key], bObject[key]) {
            fatalError("field \(key) changed only by B lost B's value")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let p = parts(UnsafeRawBufferPointer(start: data, count: size))
    checkPatch(base: p[0], patch: p[1])
    checkPatch(base: p[0], patch: p[2])
    checkFieldMerge(base: p[0], a: p[1], b: p[2])
    return 0
}
