/// A hybrid logical clock timestamp: wall-clock milliseconds and a logical counter,
/// packed into one `Int64` (48 bits of milliseconds, 16 bits of counter) so that integer
/// order is timestamp order. The writer's client id breaks ties and travels beside it.
public struct HLC: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int64

    public init(rawValue: Int64) { self.rawValue = rawValue }

    public init(milliseconds: Int64, counter: UInt16) {
        rawValue = (milliseconds << 16) | Int64(counter)
    }

    public static let zero = HLC(rawValue: 0)
    /// The largest wall-clock value an HLC can carry (year 10889).
    public static let maxMilliseconds: Int64 = (1 << 47) - 1

    public var milliseconds: Int64 { rawValue >> 16 }
    public var counter: UInt16 { UInt16(truncatingIfNeeded: rawValue & 0xffff) }

    public static func < (lhs: HLC, rhs: HLC) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "\(milliseconds).\(counter)" }
}

/// The source of wall-clock time, injected so that tests drive clocks deterministically.
public protocol WallClock: Sendable {
    /// Milliseconds since the Unix epoch.
    func milliseconds() -> Int64
}

/// The system's real-time clock.
public struct SystemClock: WallClock {
    public init() {}
    public func milliseconds() -> Int64 { currentTimeMilliseconds() }
}

/// Issues HLC timestamps that never go backwards, even when the wall clock does.
///
/// `now` is used for local events, `receive` merges a timestamp seen from elsewhere
/// (the server, another replica) so that later local events order after it.
public struct HybridLogicalClock: Sendable {
    public private(set) var last: HLC
    public let clock: any WallClock

    public init(clock: any WallClock = SystemClock(), last: HLC = .zero) {
        self.clock = clock
        self.last = last
    }

    /// A timestamp for a local event, strictly greater than every one issued or received before.
    public mutating func now() -> HLC {
        let wall = min(clock.milliseconds(), HLC.maxMilliseconds)
        if wall > last.milliseconds {
            last = HLC(milliseconds: wall, counter: 0)
        } else {
            last = Self.successor(of: last)
        }
        return last
    }

    /// Merges a remote timestamp; returns the new local time, greater than both.
    @discardableResult
    public mutating func receive(_ remote: HLC) -> HLC {
        let wall = min(clock.milliseconds(), HLC.maxMilliseconds)
        let top = max(last, remote)
        if wall > top.milliseconds {
            last = HLC(milliseconds: wall, counter: 0)
        } else {
            last = Self.successor(of: top)
        }
        return last
    }

    /// Raises the clock to at least `value` without issuing a timestamp (used when
    /// recovering the clock from a store).
    public mutating func observe(_ value: HLC) {
        if value > last { last = value }
    }

    private static func successor(of value: HLC) -> HLC {
        // Counter overflow borrows from the next millisecond: order is all that matters.
        if value.counter == UInt16.max {
            return HLC(milliseconds: value.milliseconds + 1, counter: 0)
        }
        return HLC(milliseconds: value.milliseconds, counter: value.counter + 1)
    }
}
