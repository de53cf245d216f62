// Pull prefetch: while a client applies one page of a long pull, a background thread of
// the server reads and encodes the page the client will ask for next, so the two sides
// work at the same time instead of taking turns (docs/SERVER.md, "Pull prefetch").
//
// A prepared page answers only the very request it was prepared for: same client, same
// identity and scopes, same cursor, limits, collections and encoding, and no push from
// that client in between (a push drops the client's page). Serving it is the same as
// having answered that request at the moment the page was read: versions only grow, so
// a page read earlier is a valid answer, and anything committed since is pulled after it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import PierStore
import PierWire

/// Counters of the pull prefetch since the server started.
public struct PrefetchStatistics: Sendable, Equatable {
    /// Pages prepared in the background.
    public var prepared = 0
    /// Pull requests answered with a prepared page.
    public var hits = 0
    /// Of the hits, those that waited for the page to be finished.
    public var waited = 0
    /// Prepared pages thrown away (or being prepared when dropped): not asked for in
    /// time, asked for differently, made stale by a push or a tombstone purge, or over
    /// the memory budget.
    public var discarded = 0
    /// Pages not prepared because the budget of pages was in use.
    public var skipped = 0

    public init() {}

    /// Every counter by its event name, as `/metrics` labels them.
    public var events: [(event: String, count: Int)] {
        [("prepared", prepared), ("hit", hits), ("waited", waited), ("discarded", discarded), ("skipped", skipped)]
    }
}

/// What a prepared page answers.
struct PrefetchKey: Hashable, Sendable {
    var clientID: String
    var user: String
    var readScopes: Set<String>?
    var cursor: Int64
    var maxRecords: UInt32
    var maxBytes: UInt32
    var collections: [String]
    var encoding: EncodeOptions
    /// The client's newest stored batch when the page was asked for: a push in between,
    /// through this process or another on the same store, changes it.
    var newestBatch: UInt64
}

/// One prepared answer: the response and its encoded frame.
struct PreparedPage: Sendable {
    var response: SyncResponse
    var frame: [UInt8]

    /// Roughly the memory the page holds: the frame, and per record its body, its
    /// collection and scope strings and a fixed part (the record itself; a UUID id is held
    /// inside it as 16 bytes, other ids are counted by the fixed part only).
    var bytes: Int {
        frame.count + response.records.reduce(0) { $0 + ($1.body?.count ?? 0) + $1.collection.utf8.count + $1.scope.utf8.count + 64 }
    }
}

/// The background threads and the prepared pages, one per client at most.
final class PullPrefetcher: @unchecked Sendable {
    typealias Job = @Sendable () -> PreparedPage?

    private enum State {
        case queued(Job)
        case running
        case ready(PreparedPage, bytes: Int)
    }

    private struct Entry {
        var key: PrefetchKey
        var ticket: UInt64
        var generation: UInt64
        var state: State
        /// When the page became ready (monotonic nanoseconds), or when it was queued.
        var since: UInt64
    }

    let threadCount: Int
    let maxPages: Int
    let maxBytes: Int
    let timeToLive: UInt64

    // Everything below is guarded by `mutex`; `work` wakes the threads, `done` the
    // requests waiting for a page being prepared.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let work: UnsafeMutablePointer<pthread_cond_t>
    private let done: UnsafeMutablePointer<pthread_cond_t>
    private var entries: [String: Entry] = [:]
    private var queue: [String] = []
    private var queueHead = 0
    private var threads: [PosixThread] = []
    private var stopping = false
    /// No thread could be started: the prefetch is off from then on.
    private var disabled = false
    private var nextTicket: UInt64 = 1
    private var generation: UInt64 = 0
    private var readyBytes = 0
    private var stats = PrefetchStatistics()
    /// Requests waiting in `take` for a page being prepared.
    private var waiting = 0

    /// - Parameters:
    ///   - threads: background threads (started on the first page to prepare).
    ///   - maxPages: most pages held or being prepared at once (one per client).
    ///   - maxBytes: most memory held by ready pages; a page that would pass it is dropped.
    ///   - timeToLiveMilliseconds: a ready page not asked for within this time is dropped.
    init(threads: Int, maxPages: Int, maxBytes: Int, timeToLiveMilliseconds: Int64) {
        threadCount = max(1, threads)
        self.maxPages = max(1, maxPages)
        self.maxBytes = max(0, maxBytes)
        timeToLive = UInt64(min(max(0, timeToLiveMilliseconds), ServerConfig.maxPrefetchTimeToLiveMilliseconds)) * 1_000_000
        mutex = .allocate(capacity: 1)
        work = .allocate(capacity: 1)
        done = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(work, nil)
        pthread_cond_init(done, nil)
    }

    deinit {
        stop()
        pthread_cond_destroy(done)
        pthread_cond_destroy(work)
        pthread_mutex_destroy(mutex)
        done.deallocate()
        work.deallocate()
        mutex.deallocate()
    }

    var statistics: PrefetchStatistics {
        lock()
        defer { unlock() }
        return stats
    }

    /// Requests waiting for a page being prepared right now (tests use it to act while
    /// a request waits).
    var waitingRequests: Int {
        lock()
        defer { unlock() }
        return waiting
    }

    /// Stops the threads after the pages being prepared are finished, and drops every page.
    func stop() {
        lock()
        stopping = true
        let running = threads
        threads = []
        entries = [:]
        readyBytes = 0
        pthread_cond_broadcast(work)
        pthread_cond_broadcast(done)
        unlock()
        for thread in running where !thread.isCurrent { thread.join() }
    }

    /// Queues `job` to prepare the answer to `key`, replacing the client's previous page.
    func schedule(_ key: PrefetchKey, _ job: @escaping Job) {
        lock()
        defer { unlock() }
        guard !stopping, !disabled else { return }
        let now = monotonicNanoseconds()
        dropExpired(now)
        if entries[key.clientID] != nil { drop(key.clientID) }
        guard entries.count < maxPages else {
            stats.skipped += 1
            return
        }
        let ticket = nextTicket
        nextTicket += 1
        entries[key.clientID] = Entry(key: key, ticket: ticket, generation: generation, state: .queued(job), since: now)
        queue.append(key.clientID)
        if threads.count < threadCount { startThread() }
        if disabled {
            entries = [:]
            queue = []
            queueHead = 0
            return
        }
        pthread_cond_signal(work)
    }

    /// The prepared answer to `key`, if there is one (waiting for it if it is being
    /// prepared). A page prepared for anything else is dropped.
    func take(_ key: PrefetchKey) -> PreparedPage? {
        lock()
        defer { unlock() }
        var waited = false
        while let entry = entries[key.clientID] {
            guard entry.key == key, entry.generation == generation else {
                drop(key.clientID)
                return nil
            }
            switch entry.state {
            case .queued:
                // Not started: answering directly is as fast as waiting for it.
                entries[key.clientID] = nil
                return nil
            case .running:
                waited = true
                waiting += 1
                pthread_cond_wait(done, mutex)
                waiting -= 1
                // The entry may be finished, replaced or dropped: look again.
                if entries[key.clientID]?.ticket != entry.ticket { return nil }
            case .ready(let page, let bytes):
                entries[key.clientID] = nil
                readyBytes -= bytes
                if monotonicNanoseconds() - entry.since > timeToLive {
                    stats.discarded += 1
                    return nil
                }
                stats.hits += 1
                if waited { stats.waited += 1 }
                return page
            }
        }
        return nil
    }

    /// Drops the client's page (its push may have changed what the page should hold).
    func invalidate(clientID: String) {
        lock()
        defer { unlock() }
        if entries[clientID] != nil { drop(clientID) }
    }

    /// Drops every page (after a tombstone purge).
    func invalidateAll() {
        lock()
        defer { unlock() }
        generation += 1
        for clientID in Array(entries.keys) { drop(clientID) }
    }

    // MARK: Internals (called with the mutex held)

    private func lock() { pthread_mutex_lock(mutex) }
    private func unlock() { pthread_mutex_unlock(mutex) }

    private func drop(_ clientID: String) {
        if let entry = entries.removeValue(forKey: clientID) {
            release(entry)
            // A page still queued cost nothing yet: not counted.
            if case .queued = entry.state {} else { stats.discarded += 1 }
            pthread_cond_broadcast(done)
        }
    }

    private func release(_ entry: Entry) {
        if case .ready(_, let bytes) = entry.state { readyBytes -= bytes }
    }

    private func dropExpired(_ now: UInt64) {
        for (clientID, entry) in entries {
            if case .ready = entry.state, now - entry.since > timeToLive { drop(clientID) }
        }
    }

    private func startThread() {
        do throws(PosixThread.StartError) {
            threads.append(try PosixThread.start { [self] in run() })
        } catch {
            if threads.isEmpty { disabled = true }
            PierLog.log(.warning, "pull prefetch: cannot start a thread (error \(error.code))\(disabled ? "; the prefetch is off, pulls are answered directly" : "")")
        }
    }

    /// A thread's loop: prepare queued pages until stopped.
    private func run() {
        lock()
        while true {
            while queueHead == queue.count && !stopping { pthread_cond_wait(work, mutex) }
            if stopping { break }
            let clientID = queue[queueHead]
            queueHead += 1
            if queueHead > 64 && queueHead * 2 > queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            guard var entry = entries[clientID], case .queued(let job) = entry.state else { continue }
            entry.state = .running
            entries[clientID] = entry
            unlock()
            let page = job()
            lock()
            if page != nil { stats.prepared += 1 }
            if var current = entries[clientID], current.ticket == entry.ticket {
                let bytes = page?.bytes ?? 0
                if let page, !stopping, readyBytes + bytes <= maxBytes {
                    current.state = .ready(page, bytes: bytes)
                    current.since = monotonicNanoseconds()
                    entries[clientID] = current
                    readyBytes += bytes
                } else {
                    entries[clientID] = nil
                    stats.discarded += 1
                }
            }
            // Otherwise the page was dropped (and counted) while it was being prepared.
            pthread_cond_broadcast(done)
        }
        unlock()
    }
}
