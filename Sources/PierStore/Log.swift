import Synchronization

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
        target.sink(level, message())
    }
}
