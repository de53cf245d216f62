import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Severity of a log line; raw values match `PIER_LOG_*` in pier.h.
public enum LogLevel: Int32, Sendable, Comparable {
    case debug = 0, info = 1, warning = 2, error = 3

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Where Pier's log lines go. The library keeps no logging framework of its own inside
/// libpier.so: a host installs a sink (the C API's log callback, a swift-log bridge, a
/// test recorder) and Pier calls it for every line at or above the sink's level.
public enum PierLog {
    public typealias Sink = @Sendable (LogLevel, String) -> Void

    private struct Installed: Sendable {
        var level: LogLevel
        var sink: Sink
    }

    private static let installed = Mutex<Installed?>(nil)

    /// Installs a sink (nil removes it). Lines below `level` are dropped before they are formatted.
    public static func setSink(_ sink: Sink?, level: LogLevel = .info) {
        installed.withLock { $0 = sink.map { Installed(level: level, sink: $0) } }
    }

    /// Logs a line; the message is only built when a sink wants it.
    public static func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        guard let target = installed.withLock({ $0 }), level >= target.level else { return }
        if let held = pthread_getspecific(heldKey) {
            Unmanaged<HeldLines>.fromOpaque(held).takeUnretainedValue().lines.append((level, message()))
            return
        }
        target.sink(level, message())
    }

    /// Lines a helper thread logged, kept for the thread it works for (see `holding`).
    package final class HeldLines: @unchecked Sendable {
        // Appended to by the holding thread only; read by `deliver` after that thread
        // has been joined.
        fileprivate var lines: [(LogLevel, String)] = []
        package init() {}
    }

    private static let heldKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "no thread-specific key for the log")
        return key
    }()

    /// Runs `body` with the lines this thread logs kept in `held` instead of delivered, so
    /// that a thread Pier starts never calls the host's sink: the thread it works for
    /// delivers them with `deliver(_:)` once it has joined it.
    package static func holding<T, E: Error>(_ held: HeldLines, _ body: () throws(E) -> T) throws(E) -> T {
        let outer = pthread_getspecific(heldKey)
        pthread_setspecific(heldKey, Unmanaged.passUnretained(held).toOpaque())
        defer { pthread_setspecific(heldKey, outer) }
        return try body()
    }

    /// Delivers held lines on the calling thread, in the order they were logged.
    package static func deliver(_ held: HeldLines) {
        let lines = held.lines
        held.lines = []
        guard let target = installed.withLock({ $0 }) else { return }
        for (level, message) in lines where level >= target.level { target.sink(level, message) }
    }
}
