import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Named places where the reliability harness (docs/RELIABILITY.md) kills the process.
///
/// Set `PIER_TEST_CRASH_POINT=name` or `name:n` in a process's environment and it sends
/// itself SIGKILL the n-th time (default: the first) it reaches that point, exactly as a
/// power cut or an OOM kill would stop it there. Without the variable a point is one
/// load of a lazily read global: nothing is ever armed in normal use.
package enum CrashPoint: String, CaseIterable, Sendable {
    /// A local write transaction has just committed (a put, a host transaction, a sync apply).
    case afterLocalCommit = "client.after_local_commit"
    /// A request is built (a push batch is saved as in flight); nothing has been sent.
    case afterBatchBuilt = "client.after_batch_built"
    /// The server has answered (a push batch: it has applied it); the answer is not yet looked at.
    case afterSend = "client.after_send"
    /// The reply's results and pulled records are written but the local transaction has
    /// not committed (not reached by a resync_required reply).
    case beforeApplyCommit = "client.before_apply_commit"
    /// The server has applied a batch but not yet committed it.
    case serverBeforeCommit = "server.before_commit"
    /// The server has committed a batch but not yet answered.
    case serverAfterCommit = "server.after_commit"

    private struct Armed: Sendable {
        let point: String
        let hit: Int
    }

    private static let armed: Armed? = {
        guard let raw = getenv("PIER_TEST_CRASH_POINT").map({ String(cString: $0) }), !raw.isEmpty else { return nil }
        let parts = raw.split(separator: ":", maxSplits: 1)
        let hit = parts.count == 2 ? max(1, Int(parts[1]) ?? 1) : 1
        return Armed(point: String(parts[0]), hit: hit)
    }()
    private static let reached = Atomic<Int>(0)

    /// Kills the process here when this point is armed and reached for the armed time.
    @inline(__always)
    package func reach() {
        guard let armed = Self.armed else { return }
        Self.trip(self, armed)
    }

    private static func trip(_ point: CrashPoint, _ armed: Armed) {
        guard armed.point == point.rawValue else { return }
        let count = reached.wrappingAdd(1, ordering: .relaxed).newValue
        if count == armed.hit {
            kill(getpid(), SIGKILL)
            // SIGKILL cannot be caught; the process ends before this line.
            while true { pause() }
        }
    }
}
