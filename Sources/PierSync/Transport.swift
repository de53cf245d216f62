public import PierStore

/// Carries request frames to a server and brings back its response frames. The engine
/// never does I/O itself; a transport does.
public protocol SyncTransport {
    /// Sends one request frame and returns the response frame. Network failures are
    /// `.network`; the engine keeps the batch in flight and the next sync sends it again.
    func roundTrip(_ request: [UInt8]) throws(PierError) -> [UInt8]

    /// Whether frames should be compressed for this transport (not worth it in-process).
    var prefersCompression: Bool { get }
}

extension SyncTransport {
    public var prefersCompression: Bool { true }
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
        while let request = try engine.nextRequest() {
            let response = try transport.roundTrip(request)
            try engine.receive(response)
            if let progress { progress(try engine.progress()) }
        }
        PierLog.log(.info, "sync: pushed \(engine.report.pushed), pulled \(engine.report.pulled) in \(engine.report.roundTrips) round trips")
        return engine.report
    }
}
