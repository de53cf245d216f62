public import PierStore
import Synchronization

/// Carries request frames to a server and brings back its response frames. The engine
/// never does I/O itself; a transport does.
public protocol SyncTransport {
    /// Sends one request frame and returns the response frame. Network failures are
    /// `.network`; the engine keeps the batch in flight and the next sync sends it again.
    func roundTrip(_ request: [UInt8]) throws(PierError) -> [UInt8]

    /// The same, for a request sent ahead (see `supportsPipelining`): when `cancellation`
    /// is set, its answer is no longer wanted, and the transport should give up soon (no
    /// further retries; abort a transfer in progress) with any error. The default ignores
    /// it and calls `roundTrip(_:)`.
    func roundTrip(_ request: [UInt8], cancellation: Cancellation) throws(PierError) -> [UInt8]

    /// Whether frames should be compressed for this transport (not worth it in-process).
    var prefersCompression: Bool { get }

    /// Whether `roundTrip` may run on a helper thread that Pier starts, while the calling
    /// thread applies the previous pull page (see `SyncEngine.receive(_:pipeline:)`). Calls
    /// never overlap: the next one starts after the helper has been joined. The helper's
    /// log lines are delivered on the calling thread after the join. Transports that call
    /// into the host say false, so host code only ever runs on the thread that syncs.
    var supportsPipelining: Bool { get }
}

extension SyncTransport {
    public var prefersCompression: Bool { true }
    public var supportsPipelining: Bool { false }
    public func roundTrip(_ request: [UInt8], cancellation: Cancellation) throws(PierError) -> [UInt8] {
        try roundTrip(request)
    }
}

/// Tells a round trip running on a helper thread that its answer is no longer wanted.
public final class Cancellation: Sendable {
    private let flag = Atomic(false)

    public init() {}

    public var isCancelled: Bool { flag.load(ordering: .acquiring) }

    public func cancel() { flag.store(true, ordering: .releasing) }
}

/// A transport that hands the bytes to the host (mobile apps use their own network stack).
public struct CallbackTransport: SyncTransport {
    private let send: ([UInt8]) throws(PierError) -> [UInt8]

    public init(_ send: @escaping ([UInt8]) throws(PierError) -> [UInt8]) { self.send = send }

    public func roundTrip(_ request: [UInt8]) throws(PierError) -> [UInt8] { try send(request) }
}

/// Runs whole syncs over a transport.
public enum Sync {
    /// Pushes every pending change and pulls until the server has nothing more.
    public static func run(
        _ store: Store, over transport: any SyncTransport, options: SyncOptions = SyncOptions(),
        resolver: ConflictResolver? = nil, progress: ((SyncProgress) -> Void)? = nil
    ) throws(PierError) -> SyncReport {
        var options = options
        if !transport.prefersCompression { options.compressionLevel = 0 }
        let engine = SyncEngine(store: store, options: options, resolver: resolver)
        try drive(engine, over: transport, progress: progress)
        return engine.report
    }

    /// Runs `engine` to the end over `transport`; `engine.report` says what was done, also
    /// when this throws. With a transport that supports pipelining, each page of a long pull
    /// is applied while the request for the next one is already on its way, so the server
    /// builds and sends a page while the client writes the one before.
    public static func drive(_ engine: SyncEngine, over transport: any SyncTransport,
                             progress: ((SyncProgress) -> Void)? = nil) throws(PierError) {
        let pipelining = transport.supportsPipelining
        // The request the engine handed out ahead, on its way while the last page was applied.
        var ahead: BackgroundRoundTrip?
        while true {
            let response: [UInt8]
            if let sent = ahead {
                ahead = nil
                response = try sent.wait().get()
            } else {
                guard let request = try engine.nextRequest() else { break }
                response = try transport.roundTrip(request)
            }
            do {
                try engine.receive(response, pipeline: pipelining ? { frame in
                    ahead = BackgroundRoundTrip.start(frame, over: transport)
                    return ahead != nil
                } : nil)
                if let progress { progress(try engine.progress()) }
            } catch {
                // The answer of the request sent ahead is moot (see receive): stop it
                // rather than wait for its retries.
                ahead?.cancel()
                _ = ahead?.wait()
                throw error
            }
        }
        PierLog.log(.info, "sync: pushed \(engine.report.pushed), pulled \(engine.report.pulled) in \(engine.report.roundTrips) round trips")
    }
}

/// One round trip on a thread of its own, its log lines held for the thread that waits.
final class BackgroundRoundTrip: @unchecked Sendable {
    // The transport is handed to the helper and back: the starter does not use it until it
    // has joined the helper. `result` and `held` are written by the helper before it exits
    // and read by the starter only after joining it, which orders the two; `thread` is the
    // starter's alone.
    private let transport: any SyncTransport
    private let request: [UInt8]
    private let cancellation = Cancellation()
    private let held = PierLog.HeldLines()
    private var result: Result<[UInt8], PierError> = .failure(PierError(.internalError, "the round trip did not run"))
    private var thread: PosixThread?

    /// Starts the round trip, or returns nil when no thread can be created (the engine
    /// then leaves the request unsent and builds it again after the page).
    static func start(_ request: [UInt8], over transport: any SyncTransport) -> BackgroundRoundTrip? {
        let job = BackgroundRoundTrip(request, transport)
        do throws(PosixThread.StartError) {
            job.thread = try PosixThread.start { job.run() }
        } catch {
            PierLog.log(.warning, "sync: no thread for the next pull request (pthread_create: \(error.code)); sending it after this page")
            return nil
        }
        return job
    }

    private init(_ request: [UInt8], _ transport: any SyncTransport) {
        self.request = request
        self.transport = transport
    }

    private func run() {
        result = PierLog.holding(held) { () -> Result<[UInt8], PierError> in
            do throws(PierError) { return .success(try transport.roundTrip(request, cancellation: cancellation)) } catch {
                return .failure(error)
            }
        }
    }

    /// Asks the round trip to give up (its answer will be ignored).
    func cancel() { cancellation.cancel() }

    /// Waits for the round trip to end, delivers its log lines on this thread, and gives
    /// its outcome.
    func wait() -> Result<[UInt8], PierError> {
        if let thread {
            thread.join()
            self.thread = nil
            PierLog.deliver(held)
        }
        return result
    }

    deinit {
        // `Sync.drive` always waits; should a job ever be dropped unjoined, join it here,
        // unless the last reference goes on the helper itself, which cannot join itself.
        guard let thread else { return }
        if thread.isCurrent { thread.detach() } else { thread.join() }
    }
}
