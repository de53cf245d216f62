import Synchronization

/// Time-ordered identifiers (RFC 9562 UUID version 7).
///
/// 48 bits of Unix milliseconds, then a 12-bit counter seeded at random each millisecond
/// (RFC 9562 section 6.2, method 1) so that ids made in the same process sort in creation
/// order, then 62 random bits. Ids made on different devices never collide in practice,
/// so a record keeps the id its device gave it: no remapping after sync.
public enum UUIDv7 {
    private struct State {
        var milliseconds: Int64 = 0
        var counter: UInt16 = 0
    }

    private static let state = Mutex(State())

    /// A new id in canonical text form (36 characters, lowercase).
    public static func make(clock: any WallClock = SystemClock()) -> String {
        var generator = SystemRandomNumberGenerator()
        let random = generator.next() as UInt64
        let (ms, counter): (Int64, UInt16) = state.withLock { state in
            let now = max(0, clock.milliseconds())
            if now > state.milliseconds {
                state.milliseconds = now
                state.counter = UInt16(truncatingIfNeeded: generator.next() as UInt64) & 0x07ff
            } else if state.counter < 0x0fff {
                state.counter += 1
            } else {
                // 4096 ids in one millisecond: borrow the next millisecond to stay ordered.
                state.milliseconds += 1
                state.counter = 0
            }
            return (state.milliseconds, state.counter)
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: ms >> (40 - 8 * i)) }
        bytes[6] = 0x70 | UInt8(counter >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: counter)
        for i in 8..<16 { bytes[i] = UInt8(truncatingIfNeeded: random >> (8 * (15 - i))) }
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        return format(bytes)
    }

    static func format(_ bytes: [UInt8]) -> String {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (i, byte) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
