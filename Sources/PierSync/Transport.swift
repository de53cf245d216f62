public import PierStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Carries request frames to a server and brings back its response frames. The engine
/// never does I/O itself; a transport does.
public protocol SyncTransport {
    /// Sends one request frame and returns the response frame. Network failures are
    /// `.network`; the engine keeps the batch in flight and the next sync sends it again.
    func roundTrip(_ request: [UInt8]) throws(PierError) -> [UInt8]

    /// Whether frames should be compressed for this transport (not worth it in-process).
    var prefersCompression: Bool { get }

    /// Whether `roundTrip` may run on a helper thread that Pier starts, while the calling
    /// thread applies the previous pull page (see `SyncEngine.receive(_:pipeline:)`). Calls
    /// never overlap: the next one starts after the helper has been joined. Transports that
    /// call into the host say false, so host code only ever runs on the thread that syncs.
    var supportsPipelining: Bool { get }
}

extension SyncTransport {
    public var prefersCompression: Bool { true }
    public var supportsPipelining: Bool { false }
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
        while let request = try engine.nextRequest() {
            var response = try transport.roundTrip(request)
            while true {
                var next: BackgroundRoundTrip?
                do {
                    try engine.receive(response, pipeline: pipelining ? { frame in
                        next = BackgroundRoundTrip.start(frame, over: transport)
                        return next != nil
                    } : nil)
                } catch {
                    _ = next?.wait()  // its answer is moot (see receive)
                    throw error
                }
                if let progress {
                    do { progress(try engine.progress()) } catch {
                        _ = next?.wait()
                        throw error
                    }
                }
                guard let next else { break }
                response = try next.wait().get()
            }
        }
        PierLog.log(.info, "sync: pushed \(engine.report.pushed), pulled \(engine.report.pulled) in \(engine.report.roundTrips) round trips")
    }
}

/// One round trip on a thread of its own (a POSIX thread: PierSync has no Foundation).
final class BackgroundRoundTrip: @unchecked Sendable {
    // `transport` and `request` are read by the helper only; `result` is written by the
    // helper before it exits and read by the starter only after pthread_join, which orders
    // the two.
    private let transport: any SyncTransport
    private let request: [UInt8]
    private var result: Result<[UInt8], PierError> = .failure(PierError(.internalError, "the round trip did not run"))
    private var thread = pthread_t()
    private var joined = false

    private init(_ request: [UInt8], _ transport: any SyncTransport) {
        self.request = request
        self.transport = transport
    }

    /// Starts the round trip, or returns nil when no thread can be created (the caller then
    /// sends the request itself, later).
    static func start(_ request: [UInt8], over transport: any SyncTransport) -> BackgroundRoundTrip? {
        let job = BackgroundRoundTrip(request, transport)
        let context = Unmanaged.passRetained(job).toOpaque()
        let rc = pthread_create(&job.thread, nil, { context in
            let job = Unmanaged<BackgroundRoundTrip>.fromOpaque(context!).takeRetainedValue()
            do throws(PierError) { job.result = .success(try job.transport.roundTrip(job.request)) } catch { job.result = .failure(error) }
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<BackgroundRoundTrip>.fromOpaque(context).release()
            PierLog.log(.warning, "sync: no thread for the next pull request (pthread_create: \(rc)); sending it after this page")
            return nil
        }
        return job
    }

    /// Waits for the round trip to end and gives its outcome.
    func wait() -> Result<[UInt8], PierError> {
        if !joined {
            pthread_join(thread, nil)
            joined = true
        }
        return result
    }

    deinit {
        guard !joined else { return }
        // Never reached on the paths of `Sync.drive`, which always waits; if the last
        // reference goes on the helper itself, it cannot join itself.
        if pthread_equal(thread, pthread_self()) != 0 { pthread_detach(thread) } else { pthread_join(thread, nil) }
    }
}
