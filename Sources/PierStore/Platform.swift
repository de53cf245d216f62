#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Milliseconds since the Unix epoch from the real-time clock.
func currentTimeMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Nanoseconds from a monotonic clock, for durations.
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

package func fileSize(_ path: String) -> Int64? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return Int64(st.st_size)
}

func sleepMicroseconds(_ microseconds: UInt32) {
    usleep(microseconds)
}


/// A joinable POSIX thread (libpier has no Foundation `Thread`). Join or detach it once.
package struct PosixThread: @unchecked Sendable {
    private let id: pthread_t

    /// pthread_create's error number when no thread could be started.
    package struct StartError: Error {
        package let code: Int32
    }

    /// Runs `body` on a new thread.
    package static func start(_ body: @escaping @Sendable () -> Void) throws(StartError) -> PosixThread {
        let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        #if canImport(Darwin)
        var thread: pthread_t?
        let status = pthread_create(&thread, nil, { context in
            Unmanaged<ThreadBody>.fromOpaque(context).takeRetainedValue().run()
            return nil
        }, context)
        #else
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<ThreadBody>.fromOpaque(context).takeRetainedValue().run()
            return nil
        }, context)
        #endif
        guard status == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(context).release()
            throw StartError(code: status)
        }
        #if canImport(Darwin)
        return PosixThread(id: thread!)
        #else
        return PosixThread(id: thread)
        #endif
    }

    /// Whether this is the calling thread (which can neither join nor wait for itself).
    package var isCurrent: Bool { pthread_equal(id, pthread_self()) != 0 }

    package func join() { pthread_join(id, nil) }

    package func detach() { pthread_detach(id) }
}

private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}
