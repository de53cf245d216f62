import CSQLite
import Foundation
import Pier
import Testing

/// I/O failures and a full disk on the local store's write and apply paths (issue 7,
/// part 6): the k-th write or fsync fails (once, or from then on), or the disk fills up,
/// while the store writes records or applies a sync. Afterwards the file passes
/// `PRAGMA integrity_check`, every write that was acknowledged is there, a failed write
/// left nothing behind, and every change that was pending before is still pending or,
/// when the sync's local commit went through, synced and on the server.
@Suite("I/O faults and a full disk", .serialized)
struct IOFaultTests {
    static let plans: [(String, @Sendable (Int) -> FaultVFS.Plan)] = [
        ("k-th write fails once", { .failWrite($0, sticky: false) }),
        ("writes fail from the k-th on", { .failWrite($0, sticky: true) }),
        ("k-th fsync fails once", { .failSync($0, sticky: false) }),
        ("fsyncs fail from the k-th on", { .failSync($0, sticky: true) }),
        ("disk full after k KiB", { .diskFull(afterBytes: $0 * 1024) }),
    ]

    /// A store at `path` holding the pending records `ids` (written normally), opened again
    /// through the fault VFS.
    func faultyStore(_ path: String, pending ids: [String], body: String) throws -> Database {
        do {
            let db = try Database(path: path)
            for id in ids { try db.put("jobs", id: id, body: body) }
            db.close()
        }
        #expect(FaultVFS.registered)
        var options = StoreOptions()
        options.vfs = FaultVFS.name
        return try Database(path: path, options: options)
    }

    func integrity(_ path: String) -> String {
        var db: OpaquePointer?
        defer { sqlite3_close(db) }
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else { return "cannot open" }
        var stmt: OpaquePointer?
        defer { sqlite3_finalize(stmt) }
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nil)
        var out: [String] = []
        while sqlite3_step(stmt) == SQLITE_ROW { out.append(String(cString: sqlite3_column_text(stmt, 0))) }
        return out.joined(separator: "; ")
    }

    /// The record ids that are pending (not yet acknowledged by a server).
    func pending(_ db: Database, _ ids: [String]) throws -> Set<String> {
        Set(try ids.filter { try db.find("jobs", id: $0) != nil && db.syncState("jobs", id: $0) == .pending })
    }

    @Test("writes under a failing disk: acknowledged ones survive, failed ones leave nothing, the file stays sound")
    func writePath() throws {
        let folder = NSTemporaryDirectory() + "pier-iofault-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var faults = 0
        for (number, (name, plan)) in Self.plans.enumerated() {
            for k in 1...12 {
                // Before the fault: pending changes the failure must not touch.
                let before = (0..<5).map { "before-\($0)" }
                let path = folder + "/w-\(number)-\(k).pier"
                let db = try faultyStore(path, pending: before, body: #"{"v":0}"#)
                FaultVFS.arm(plan(k))
                var acknowledged: [String: String] = [:]
                var batches: [[String]] = []
                // A write either succeeds or fails with PIER_EIO and a message, never another code.
                func succeeded(_ write: () throws(PierError) -> Void) -> Bool {
                    do throws(PierError) {
                        try write()
                        return true
                    } catch {
                        #expect(error.code == .io, "\(name), k=\(k): a failed write reported \(error.code): \(error.message)")
                        #expect(!error.message.isEmpty)
                        return false
                    }
                }
                for step in 0..<6 {
                    let body = #"{"v":\#(step),"pad":"\#(String(repeating: "x", count: 300 * (step + 1)))"}"#
                    if step % 2 == 0 {
                        let ids = (0..<20).map { "batch\(step)-\($0)" }
                        batches.append(ids)
                        if succeeded({ () throws(PierError) in try db.putMany("jobs", ids.map { (id: $0, body: body) }) }) {
                            for id in ids { acknowledged[id] = body }
                        }
                    } else if succeeded({ () throws(PierError) in try db.put("jobs", id: "single-\(step)", body: body) }) {
                        acknowledged["single-\(step)"] = body
                    }
                }
                faults += FaultVFS.disarm()
                // A fault that passed: the same open store writes again.
                try db.put("jobs", id: "after", body: #"{"after":true}"#)
                acknowledged["after"] = #"{"after":true}"#
                db.close()

                #expect(integrity(path) == "ok", "\(name), k=\(k)")
                let reopened = try Database(path: path)
                for (id, body) in acknowledged {
                    #expect(try reopened.find("jobs", id: id) == body, "\(name), k=\(k): acknowledged \(id) lost")
                }
                for ids in batches {
                    let present = try ids.filter { try reopened.find("jobs", id: $0) != nil }.count
                    #expect(present == 0 || present == ids.count, "\(name), k=\(k): a batch is half written (\(present) of \(ids.count))")
                }
                #expect(try pending(reopened, before) == Set(before), "\(name), k=\(k): a pending change was lost")
                #expect(try pending(reopened, Array(acknowledged.keys)) == Set(acknowledged.keys), "\(name), k=\(k)")
                reopened.close()
            }
        }
        #expect(faults > 40, "the plans injected only \(faults) failures")
    }

    @Test("a sync whose local apply hits a failing disk: pending changes stay pending or are synced, and a later sync converges")
    func applyPath() throws {
        let world = try World()
        var faults = 0
        var failedSyncs = 0
        var index = 0
        for (name, plan) in Self.plans {
            for k in 1...10 {
                index += 1
                let path = world.dir + "/apply-\(index).pier"
                let ids = (0..<15).map { "d\(index)-\($0)" }
                let db = try faultyStore(path, pending: ids, body: #"{"device":\#(index)}"#)
                FaultVFS.arm(plan(k))
                var options = SyncOptions()
                options.maxBatchChanges = 4
                do { _ = try world.sync(db, options: options) } catch let error as PierError {
                    failedSyncs += 1
                    #expect([PierError.Code.io, .busy].contains(error.code), "\(name), k=\(k): \(error)")
                }
                faults += FaultVFS.disarm()
                db.close()

                #expect(integrity(path) == "ok", "\(name), k=\(k)")
                let reopened = try Database(path: path)
                for id in ids {
                    let state = try reopened.syncState("jobs", id: id)
                    #expect(try reopened.find("jobs", id: id) == #"{"device":\#(index)}"#, "\(name), k=\(k): \(id) lost")
                    if state == .synced {
                        #expect(try world.serverBody("jobs", id)?["device"] as? Int == index, "\(name), k=\(k): \(id) synced but not on the server")
                    } else {
                        #expect(state == .pending, "\(name), k=\(k): \(id) is \(state)")
                    }
                }
                // The link and the disk are fine again: everything arrives, once.
                _ = try world.sync(reopened)
                for id in ids {
                    #expect(try reopened.syncState("jobs", id: id) == .synced)
                    #expect(try world.serverBody("jobs", id)?["device"] as? Int == index)
                }
                reopened.close()
            }
        }
        let log = try world.server.log(LogFilter(limit: 100_000))
        let applied = log.filter { $0.outcome == "applied" }
        let keys = applied.map { "\($0.clientID)|\($0.recordID)|\($0.clientHLC)" }
        #expect(Set(keys).count == keys.count, "a change was applied twice")
        #expect(applied.count == index * 15)
        #expect(faults > 30 && failedSyncs > 10, "faults \(faults), failed syncs \(failedSyncs)")
    }
}
