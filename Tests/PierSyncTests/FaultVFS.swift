import CSQLite
import Foundation
import Synchronization

/// A test VFS, "pier-fault", over SQLite's default one: it fails the k-th write or fsync,
/// or every write once a byte budget is spent (a full disk), on the files of stores opened
/// through it (`StoreOptions.vfs`). Everything else goes to the default VFS unchanged.
///
/// Each file opened through it is the default VFS's own file structure followed by a
/// pointer to that VFS's I/O methods; our methods count and fail, then call those.
enum FaultVFS {
    static let name = "pier-fault"

    enum Plan: Equatable, Sendable {
        case none
        /// Fail the k-th write (1-based) from arming; with `sticky`, every write after it too.
        case failWrite(Int, sticky: Bool)
        /// Fail the k-th fsync; with `sticky`, every fsync after it too.
        case failSync(Int, sticky: Bool)
        /// Writes beyond this many bytes from arming fail with SQLITE_FULL.
        case diskFull(afterBytes: Int)
    }

    struct State {
        var plan = Plan.none
        var writes = 0
        var syncs = 0
        var bytes = 0
        var failures = 0
    }

    static let state = Mutex(State())

    static func arm(_ plan: Plan) { state.withLock { $0 = State(plan: plan) } }

    /// Disarms and returns how many operations failed.
    @discardableResult
    static func disarm() -> Int { state.withLock { s in let n = s.failures; s = State(); return n } }

    /// Registers the VFS once.
    static let registered: Bool = {
        guard let parent = sqlite3_vfs_find(nil) else { return false }
        base = parent
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        vfs.initialize(to: parent.pointee)
        vfs.pointee.zName = UnsafePointer(strdup(name))
        vfs.pointee.pNext = nil
        vfs.pointee.szOsFile = parent.pointee.szOsFile + Int32(MemoryLayout<UnsafeRawPointer>.stride)
        vfs.pointee.xOpen = { _, path, file, flags, outFlags in
            let base = FaultVFS.base!
            let rc = base.pointee.xOpen(base, path, file, flags, outFlags)
            guard rc == SQLITE_OK, let file, let original = file.pointee.pMethods else { return rc }
            FaultVFS.originalSlot(file).pointee = original
            file.pointee.pMethods = FaultVFS.methods(for: original)
            return SQLITE_OK
        }
        return sqlite3_vfs_register(vfs, 0) == SQLITE_OK
    }()

    nonisolated(unsafe) private static var base: UnsafeMutablePointer<sqlite3_vfs>?
    /// Our method tables by the address of the original they wrap.
    private static let tables = Mutex<[UInt: UInt]>([:])

    private static func originalSlot(_ file: UnsafeMutablePointer<sqlite3_file>) -> UnsafeMutablePointer<UnsafePointer<sqlite3_io_methods>> {
        (UnsafeMutableRawPointer(file) + Int(base!.pointee.szOsFile)).assumingMemoryBound(to: UnsafePointer<sqlite3_io_methods>.self)
    }

    private static func original(_ file: UnsafeMutablePointer<sqlite3_file>?) -> sqlite3_io_methods {
        originalSlot(file!).pointee.pointee
    }

    /// Our copy of `original` with write, sync and truncate intercepted (one per original table).
    private static func methods(for original: UnsafePointer<sqlite3_io_methods>) -> UnsafePointer<sqlite3_io_methods> {
        let address = tables.withLock { tables -> UInt in
            let key = UInt(bitPattern: original)
            if let table = tables[key] { return table }
            var io = original.pointee
            io.xWrite = { file, buffer, amount, offset in
                if let failure = FaultVFS.write(Int(amount)) { return failure }
                return FaultVFS.original(file).xWrite(file, buffer, amount, offset)
            }
            io.xTruncate = { file, size in
                if let failure = FaultVFS.write(0) { return failure }
                return FaultVFS.original(file).xTruncate(file, size)
            }
            io.xSync = { file, flags in
                if let failure = FaultVFS.sync() { return failure }
                return FaultVFS.original(file).xSync(file, flags)
            }
            let table = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
            table.initialize(to: io)
            tables[key] = UInt(bitPattern: table)
            return UInt(bitPattern: table)
        }
        return UnsafePointer(bitPattern: address)!
    }

    private static func write(_ bytes: Int) -> Int32? {
        state.withLock { s in
            s.writes += 1
            s.bytes += bytes
            let fail: Int32?
            switch s.plan {
            case .failWrite(let k, let sticky): fail = (s.writes == k || (sticky && s.writes > k)) ? PIER_SQLITE_IOERR_WRITE : nil
            case .diskFull(let budget): fail = s.bytes > budget ? SQLITE_FULL : nil
            case .none, .failSync: fail = nil
            }
            if fail != nil { s.failures += 1 }
            return fail
        }
    }

    private static func sync() -> Int32? {
        state.withLock { s in
            s.syncs += 1
            guard case .failSync(let k, let sticky) = s.plan, s.syncs == k || (sticky && s.syncs > k) else { return nil }
            s.failures += 1
            return PIER_SQLITE_IOERR_FSYNC
        }
    }
}
