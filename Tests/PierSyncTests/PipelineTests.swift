import Foundation
import Pier
import PierWire
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A long pull over a transport that supports pipelining: the request for the next page
/// goes out on a helper thread while the calling thread applies the page before it
/// (`Sync.drive`, `SyncEngine.receive(_:pipeline:)`).
@Suite("Pipelined pulls")
struct PipelineTests {
    static let records = 450
    static let page: UInt32 = 50

    /// A server holding `records` customers, pushed by a seeding device.
    func seededWorld() throws -> World {
        let world = try World()
        let seed = try world.client("seed")
        try seed.putMany("customers", (0..<Self.records).map { (id: "c\($0)", body: #"{"name":"customer \#($0)","n":\#($0)}"#) })
        try world.sync(seed)
        return world
    }

    func options() -> SyncOptions {
        var options = SyncOptions()
        options.pullMaxRecords = Self.page
        return options
    }

    @Test("each next page is requested from a helper thread while the page before is applied; the outcome equals an unpipelined sync")
    func pipelinedEqualsSequential() throws {
        let world = try seededWorld()
        let pipelined = RecordingTransport(server: world.server, pipelining: true)
        let sequential = RecordingTransport(server: world.server, pipelining: false)
        let a = try world.client("a")
        let b = try world.client("b")
        var reportA = try a.sync(over: pipelined, options: options())
        var reportB = try b.sync(over: sequential, options: options())

        #expect(reportA.pulled == Self.records)
        #expect(try a.count("customers") == Int64(Self.records))
        #expect(try snapshot(a) == snapshot(world.server))
        #expect(try snapshot(a) == snapshot(b))
        // The same requests and responses, byte for byte: only the timing differs.
        reportA.durationNanoseconds = 0
        reportB.durationNanoseconds = 0
        #expect(reportA == reportB)

        let calls = pipelined.calls
        #expect(calls.count >= Int(Self.records) / Int(Self.page))
        #expect(calls.first?.onCaller == true)
        // Every later request followed a page with more to come: all sent ahead, all pure
        // pulls, each from the cursor of the page before.
        #expect(calls.dropFirst().allSatisfy { !$0.onCaller && $0.changes == 0 })
        #expect(zip(calls, calls.dropFirst()).allSatisfy { $0.cursor < $1.cursor })
        #expect(sequential.calls.allSatisfy { $0.onCaller })
        #expect(sequential.calls.map(\.cursor) == calls.map(\.cursor))
    }

    @Test("a page that cannot be applied drops the request sent ahead; the next sync resumes after the last applied page")
    func failedApplyDropsTheRequestSentAhead() throws {
        let (error, calls) = try interruptedPull(fault: .bodyNotAnObject, onCall: 3, pagesKept: 2)
        #expect(error.code == .protocol)
        #expect(error.message.contains("not a JSON object"))
        // The request for page 4 had gone out before page 3 failed; its answer was dropped.
        #expect(calls.count == 4)
    }

    @Test("a network failure of the request sent ahead keeps every page applied before it")
    func networkFailureAhead() throws {
        let (error, calls) = try interruptedPull(fault: .network, onCall: 4, pagesKept: 3)
        #expect(error.code == .network)
        #expect(calls.count == 4)
        #expect(calls.last?.onCaller == false)  // it was the request sent ahead
    }

    /// A pipelined pull that `fault` stops at call `onCall`: the store keeps `pagesKept`
    /// pages, and a second sync brings exactly the rest. Gives the error and the calls.
    func interruptedPull(fault: RecordingTransport.Fault, onCall: Int, pagesKept: Int) throws
        -> (PierError, [RecordingTransport.Call]) {
        let world = try seededWorld()
        let transport = RecordingTransport(server: world.server, pipelining: true, faults: [onCall: fault])
        let device = try world.client("device")
        let error = try #require(throws: PierError.self) { try device.sync(over: transport, options: options()) }
        #expect(try device.count("customers") == Int64(pagesKept) * Int64(Self.page))

        let report = try device.sync(over: RecordingTransport(server: world.server, pipelining: true), options: options())
        #expect(report.pulled == Self.records - pagesKept * Int(Self.page))
        #expect(try snapshot(device) == snapshot(world.server))
        return (error, transport.calls)
    }

    @Test("log lines of the request sent ahead reach the sink on the syncing thread, in order")
    func helperLogLinesAreDeliveredOnTheCaller() throws {
        let world = try seededWorld()
        let transport = RecordingTransport(server: world.server, pipelining: true, logCalls: true)
        let caller = pthread_self()
        let lines = Mutex<[(onCaller: Bool, message: String)]>([])
        // The only test that installs a sink (the process-wide one).
        PierLog.setSink({ _, message in
            guard message.hasPrefix("recording transport:") else { return }
            let onCaller = pthread_equal(pthread_self(), caller) != 0
            lines.withLock { $0.append((onCaller, message)) }
        }, level: .debug)
        defer { PierLog.setSink(nil) }
        _ = try world.client("device").sync(over: transport, options: options())
        let seen = lines.withLock { $0 }
        let calls = transport.calls
        #expect(calls.contains { !$0.onCaller })
        #expect(seen.count == calls.count)
        #expect(seen.allSatisfy { $0.onCaller })
        #expect(seen.map(\.message) == (1...calls.count).map { "recording transport: call \($0)" })
    }

    @Test("local changes go first, then the pull is pipelined; a change made during the pull is pushed by the same sync")
    func pushesAndPipelinedPull() throws {
        let world = try seededWorld()
        let device = try world.client("device")
        try device.put("notes", id: "before", body: #"{"text":"written offline"}"#)
        let transport = RecordingTransport(server: world.server, pipelining: true)
        var wrote = false
        let report = try device.sync(over: transport, options: options(), progress: { progress in
            // Written between two pages, while the request for the next one is out.
            if progress.roundTrips == 3 && !wrote {
                wrote = true
                try? device.put("notes", id: "during", body: #"{"text":"written mid-sync"}"#)
            }
        })
        #expect(wrote)
        #expect(report.pushed == 2)
        #expect(try world.serverBody("notes", "before") != nil)
        #expect(try world.serverBody("notes", "during") != nil)
        #expect(try device.store.pendingCount() == 0)
        let calls = transport.calls
        // The first request pushes "before"; "during" goes in a later one that the calling
        // thread built after the pull ended; the pages between were requested ahead.
        #expect(calls.first?.changes == 1 && calls.first?.onCaller == true)
        #expect(calls.filter { $0.changes == 1 }.count == 2)
        #expect(calls.filter { $0.changes > 0 }.allSatisfy { $0.onCaller })
        #expect(calls.contains { !$0.onCaller })
        #expect(try snapshot(device) == snapshot(world.server))
    }
}

/// An in-process transport that records each request (from which thread, its cursor and
/// how many changes it pushes) and can fail chosen calls.
final class RecordingTransport: SyncTransport, @unchecked Sendable {
    enum Fault { case network, bodyNotAnObject }
    struct Call: Sendable {
        var onCaller: Bool
        var cursor: Int64
        var changes: Int
    }

    private let inner: InProcessTransport
    private let pipelining: Bool
    private let faults: [Int: Fault]
    private let caller = pthread_self()
    private let log = Mutex<[Call]>([])

    private let logCalls: Bool

    init(server: SyncServer, pipelining: Bool, faults: [Int: Fault] = [:], logCalls: Bool = false) {
        inner = InProcessTransport(server: server)
        self.pipelining = pipelining
        self.faults = faults
        self.logCalls = logCalls
    }

    var supportsPipelining: Bool { pipelining }
    var calls: [Call] { log.withLock { $0 } }

    func roundTrip(_ request: [UInt8]) throws(PierError) -> [UInt8] {
        guard case .syncRequest(let decoded)? = try? Frame.decode(request) else { throw PierError(.protocol, "not a request") }
        let call = Call(onCaller: pthread_equal(pthread_self(), caller) != 0, cursor: decoded.pull?.cursor ?? -1,
                        changes: decoded.changes.count)
        let number = log.withLock { calls in
            calls.append(call)
            return calls.count
        }
        if logCalls { PierLog.log(.info, "recording transport: call \(number)") }
        switch faults[number] {
        case .network?:
            throw PierError(.network, "connection reset (call \(number))")
        case .bodyNotAnObject?:
            let frame = try inner.roundTrip(request)
            guard case .syncResponse(var response)? = try? Frame.decode(frame), !response.records.isEmpty else {
                throw PierError(.protocol, "expected a page")
            }
            response.records[response.records.count - 1].body = WireBytes("[1]")
            do throws(WireError) { return try Frame.encode(.syncResponse(response)) } catch {
                throw PierError(.protocol, error.message)
            }
        case nil:
            return try inner.roundTrip(request)
        }
    }
}
