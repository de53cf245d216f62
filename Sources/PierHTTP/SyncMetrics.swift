import Prometheus
import PierServer
import PierWire
import Synchronization

/// The counters behind `GET /metrics` (Prometheus text format).
///
/// - `pier_syncs_total{result}`: syncs answered, by result (`ok`, `bad_request`,
///   `unauthorized`, `forbidden`, `too_large`, `unsupported_media_type`,
///   `too_many_requests`, `unavailable`, `error`)
/// - `pier_changes_total{outcome}`: pushed changes by outcome (`applied`, `merged`,
///   `superseded`, `rejected`, `conflict`)
/// - `pier_conflicts_total`: conflicts registered
/// - `pier_records_pulled_total`: records sent to clients
/// - `pier_sync_duration_seconds`: time spent in the sync handler (histogram)
/// - `pier_frame_bytes_received_total`, `pier_frame_bytes_sent_total`: frame bytes in and out
/// - `pier_syncs_in_flight`: syncs being handled now
/// - `pier_auth_failures_total`: credentials refused
/// - `pier_pull_prefetch_total{event}`: the pull prefetch (docs/SERVER.md): pages
///   `prepared`, pulls answered from them (`hit`, of which `waited` for the page), pages
///   `discarded` unused, and pages `skipped` for want of room
final class SyncMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let syncs: [String: Counter]
    private let changes: [SyncResponse.ChangeResult.Outcome: Counter]
    private let conflicts: Counter
    private let pulled: Counter
    private let duration: DurationHistogram
    private let bytesIn: Counter
    private let bytesOut: Counter
    let inFlight: Gauge
    private let authFailures: Counter
    private let prefetch: [String: Counter]
    /// The prefetch counters as last reported, so each scrape adds what is new.
    private let prefetchSeen = Mutex(PrefetchStatistics())

    static let results = ["ok", "bad_request", "unauthorized", "forbidden", "too_large", "unsupported_media_type",
                          "too_many_requests", "unavailable", "error"]

    /// `pier_<name>_<unit>` with help text.
    private static func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "pier", metricName: name, unitName: unit, helpText: help)
    }

    init() {
        var syncs: [String: Counter] = [:]
        for result in Self.results {
            syncs[result] = registry.makeCounter(descriptor: Self.name("syncs", "total", "Syncs answered, by result"), labels: [("result", result)])
        }
        self.syncs = syncs
        var changes: [SyncResponse.ChangeResult.Outcome: Counter] = [:]
        for outcome in SyncResponse.ChangeResult.Outcome.allCases {
            changes[outcome] = registry.makeCounter(descriptor: Self.name("changes", "total", "Pushed changes, by outcome"),
                                                    labels: [("outcome", outcome.name)])
        }
        self.changes = changes
        conflicts = registry.makeCounter(descriptor: Self.name("conflicts", "total", "Conflicts registered"))
        pulled = registry.makeCounter(descriptor: Self.name("records_pulled", "total", "Records sent to clients"))
        duration = registry.makeDurationHistogram(
            descriptor: Self.name("sync_duration", "seconds", "Time spent handling a sync"),
            buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                      .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10)])
        bytesIn = registry.makeCounter(descriptor: Self.name("frame_bytes_received", "total", "Request frame bytes received"))
        bytesOut = registry.makeCounter(descriptor: Self.name("frame_bytes_sent", "total", "Response frame bytes sent"))
        inFlight = registry.makeGauge(descriptor: Self.name("syncs_in_flight", "", "Syncs being handled"))
        authFailures = registry.makeCounter(descriptor: Self.name("auth_failures", "total", "Credentials refused"))
        var prefetch: [String: Counter] = [:]
        for (event, _) in PrefetchStatistics().events {
            prefetch[event] = registry.makeCounter(descriptor: Self.name("pull_prefetch", "total", "Pull prefetch pages, by event"),
                                                   labels: [("event", event)])
        }
        self.prefetch = prefetch
    }

    /// Brings the prefetch counters up to the server's (called before each scrape).
    func update(_ stats: PrefetchStatistics) {
        prefetchSeen.withLock { seen in
            for (now, before) in zip(stats.events, seen.events) where now.count > before.count {
                prefetch[now.event]?.increment(by: Int64(now.count - before.count))
            }
            seen = stats
        }
    }

    func sync(result: String) { syncs[result]?.increment() }

    func record(_ response: SyncResponse) {
        for result in response.results { changes[result.outcome]?.increment() }
        if !response.conflicts.isEmpty { conflicts.increment(by: Int64(response.conflicts.count)) }
        if !response.records.isEmpty { pulled.increment(by: Int64(response.records.count)) }
    }

    func handled(duration: Duration, bytesIn: Int, bytesOut: Int) {
        self.duration.record(duration)
        self.bytesIn.increment(by: Int64(bytesIn))
        self.bytesOut.increment(by: Int64(bytesOut))
    }

    func authFailed() { authFailures.increment() }

    var text: [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
