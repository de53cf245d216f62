import Testing
@testable import PierStore

@Suite("Hybrid logical clock")
struct ClockTests {
    @Test("timestamps follow the wall clock when it moves forward")
    func followsWallClock() {
        let wall = FakeClock(1_000)
        var clock = HybridLogicalClock(clock: wall)
        let a = clock.now()
        wall.set(2_000)
        let b = clock.now()
        #expect(a == HLC(milliseconds: 1_000, counter: 0))
        #expect(b == HLC(milliseconds: 2_000, counter: 0))
    }

    @Test("timestamps stay monotonic when the wall clock jumps backwards")
    func monotonicWhenWallClockJumpsBack() {
        let wall = FakeClock(10_000)
        var clock = HybridLogicalClock(clock: wall)
        var previous = clock.now()
        wall.set(5_000)  // the device's clock was corrected by 5 s
        for _ in 0..<1_000 {
            let next = clock.now()
            #expect(next > previous)
            #expect(next.milliseconds == 10_000)
            previous = next
        }
        wall.set(20_000)
        #expect(clock.now() == HLC(milliseconds: 20_000, counter: 0))
    }

    @Test("receiving a remote timestamp from the future moves local time past it")
    func mergesRemote() {
        let wall = FakeClock(1_000)
        var clock = HybridLogicalClock(clock: wall)
        _ = clock.now()
        let remote = HLC(milliseconds: 50_000, counter: 7)
        let merged = clock.receive(remote)
        #expect(merged > remote)
        #expect(merged == HLC(milliseconds: 50_000, counter: 8))
        #expect(clock.now() > merged)
        // A remote timestamp from the past changes nothing but the counter.
        let older = clock.receive(HLC(milliseconds: 10, counter: 0))
        #expect(older > merged)
    }

    @Test("the counter overflows into the next millisecond instead of wrapping")
    func counterOverflow() {
        let wall = FakeClock(7)
        var clock = HybridLogicalClock(clock: wall, last: HLC(milliseconds: 7, counter: .max))
        let next = clock.now()
        #expect(next == HLC(milliseconds: 8, counter: 0))
    }

    @Test("packing keeps integer order equal to timestamp order")
    func packing() {
        let a = HLC(milliseconds: 1_700_000_000_000, counter: 65_535)
        let b = HLC(milliseconds: 1_700_000_000_001, counter: 0)
        #expect(a < b)
        #expect(a.rawValue < b.rawValue)
        #expect(a.milliseconds == 1_700_000_000_000 && a.counter == 65_535)
    }
}

@Suite("UUIDv7 ids")
struct UUIDv7Tests {
    @Test("ids are canonical version-7 UUIDs with the RFC 9562 variant")
    func format() {
        for _ in 0..<100 {
            let id = UUIDv7.make()
            let chars = Array(id)
            #expect(chars.count == 36)
            #expect(chars[8] == "-" && chars[13] == "-" && chars[18] == "-" && chars[23] == "-")
            #expect(chars[14] == "7")
            #expect("89ab".contains(chars[19]))
            #expect(id.allSatisfy { "0123456789abcdef-".contains($0) })
        }
    }

    @Test("ids made one after another sort in creation order and never repeat")
    func ordered() {
        var previous = UUIDv7.make()
        var seen = Set<String>([previous])
        for _ in 0..<20_000 {
            let id = UUIDv7.make()
            #expect(id > previous)
            #expect(seen.insert(id).inserted)
            previous = id
        }
    }

    @Test("the first 48 bits carry the Unix time in milliseconds")
    func timestamp() {
        // A clock ahead of every id made so far in this process (year 2039).
        let future: Int64 = 0x0200_0000_0000
        let id = UUIDv7.make(clock: FakeClock(future))
        let hex = String(id.prefix(13)).replacingOccurrences(of: "-", with: "")
        let milliseconds = Int64(hex, radix: 16)!
        // Equal, unless a parallel test made 4096 ids in the same millisecond after it.
        #expect(milliseconds >= future && milliseconds < future + 100)
    }
}
