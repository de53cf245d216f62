import Foundation
@testable import PierServer
import PierWire
import Synchronization
import Testing

/// A pull request that arrives while its page is still being prepared waits for it
/// (docs/SERVER.md, "Pull prefetch"). Whatever happens to that page while the request
/// waits — finished, dropped by a push, replaced by a newer page of the same client,
/// dropped by a purge, or the server stopping — the request must go on at once with the
/// right answer, never keep waiting for a page that will not come, and never get a page
/// that no longer answers it.
@Suite("Pull prefetch: a request waiting for a page")
struct PrefetcherWaitTests {
    /// A page preparation that blocks until the test lets it finish.
    final class Gate: Sendable {
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
    }

    /// A `take` running on its own thread.
    final class Waiter: Sendable {
        let finished = DispatchSemaphore(value: 0)
        let answer = Mutex<PreparedPage?>(nil)
    }

    struct Timeout: Error, CustomStringConvertible {
        var description: String
    }

    func makePrefetcher() -> PullPrefetcher {
        PullPrefetcher(threads: 1, maxPages: 4, maxBytes: 1 << 20, timeToLiveMilliseconds: 60_000)
    }

    func key(cursor: Int64 = 10) -> PrefetchKey {
        PrefetchKey(clientID: "c1", user: "ana", readScopes: nil, cursor: cursor, maxRecords: 4, maxBytes: 1 << 20,
                    collections: [], encoding: EncodeOptions(), newestBatch: 0)
    }

    static func page(after cursor: Int64) -> PreparedPage {
        PreparedPage(response: SyncResponse(serverTime: 1, cursor: cursor + 4, hasMore: true), frame: [0x50, 0x49, 0x45, 0x52])
    }

    /// Schedules the page for `key` and returns once its preparation has started; the
    /// preparation then blocks until `gate.release` is signalled.
    func scheduleBlocked(_ prefetcher: PullPrefetcher, _ key: PrefetchKey, _ gate: Gate) throws {
        let cursor = key.cursor
        prefetcher.schedule(key) {
            gate.started.signal()
            _ = gate.release.wait(timeout: .now() + 60)
            return Self.page(after: cursor)
        }
        guard gate.started.wait(timeout: .now() + 20) == .success else { throw Timeout(description: "the page was never started") }
    }

    /// Starts `take(key)` on a thread of its own and returns once it is waiting for the page.
    func startWaiting(_ prefetcher: PullPrefetcher, _ key: PrefetchKey) throws -> Waiter {
        let waiter = Waiter()
        Thread.detachNewThread {
            let page = prefetcher.take(key)
            waiter.answer.withLock { $0 = page }
            waiter.finished.signal()
        }
        try waitUntil("the request waits for the page") { prefetcher.waitingRequests == 1 }
        return waiter
    }

    func waitUntil(_ what: String, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(20)
        while !condition() {
            guard Date() < deadline else { throw Timeout(description: "timed out: \(what)") }
            usleep(1_000)
        }
    }

    /// The waiting request's answer, failing if it is still waiting after 20 s.
    func answer(of waiter: Waiter) throws -> PreparedPage? {
        guard waiter.finished.wait(timeout: .now() + 20) == .success else { throw Timeout(description: "the request kept waiting") }
        return waiter.answer.withLock { $0 }
    }

    @Test("the page is finished while the request waits: the request gets it, counted as a hit that waited")
    func finishedWhileWaiting() throws {
        let prefetcher = makePrefetcher()
        let gate = Gate()
        // Stopped after the page is let go, so a failing test does not wait its full minute.
        defer {
            gate.release.signal()
            prefetcher.stop()
        }
        try scheduleBlocked(prefetcher, key(), gate)
        let waiter = try startWaiting(prefetcher, key())
        gate.release.signal()
        let page = try answer(of: waiter)
        #expect(page?.response.cursor == 14)
        let stats = prefetcher.statistics
        #expect(stats.hits == 1 && stats.waited == 1 && stats.prepared == 1 && stats.discarded == 0)
        #expect(prefetcher.waitingRequests == 0)
    }

    @Test("the page is dropped by the client's push while the request waits: the request goes on at once without it")
    func droppedWhileWaiting() throws {
        let prefetcher = makePrefetcher()
        let gate = Gate()
        // Stopped after the page is let go, so a failing test does not wait its full minute.
        defer {
            gate.release.signal()
            prefetcher.stop()
        }
        try scheduleBlocked(prefetcher, key(), gate)
        let waiter = try startWaiting(prefetcher, key())
        prefetcher.invalidate(clientID: "c1")
        // Answered while the page is still being prepared: it does not wait for it.
        #expect(try answer(of: waiter) == nil)
        gate.release.signal()
        try waitUntil("the dropped page finishes") { prefetcher.statistics.prepared == 1 }
        // The finished page was not kept for anyone.
        #expect(prefetcher.take(key()) == nil)
        let stats = prefetcher.statistics
        #expect(stats.hits == 0 && stats.discarded == 1)
    }

    @Test("the page is replaced by a newer page of the same client while the request waits: neither answers the old request")
    func replacedWhileWaiting() throws {
        let prefetcher = makePrefetcher()
        let gate = Gate()
        // Stopped after the page is let go, so a failing test does not wait its full minute.
        defer {
            gate.release.signal()
            prefetcher.stop()
        }
        try scheduleBlocked(prefetcher, key(cursor: 10), gate)
        let waiter = try startWaiting(prefetcher, key(cursor: 10))
        // The one background thread is busy, so the newer page stays queued.
        prefetcher.schedule(key(cursor: 20)) { Self.page(after: 20) }
        #expect(try answer(of: waiter) == nil)
        gate.release.signal()
        try waitUntil("both pages are prepared") { prefetcher.statistics.prepared == 2 }
        #expect(prefetcher.take(key(cursor: 10)) == nil, "the old page was not kept")
        // take(cursor: 10) found the client's page made for cursor 20 and dropped it:
        // a page answers only the request it was made for.
        #expect(prefetcher.take(key(cursor: 20)) == nil)
        let stats = prefetcher.statistics
        #expect(stats.hits == 0 && stats.discarded == 2)
    }

    @Test("the newer page of the same client answers its own request after the old one was left waiting")
    func replacementServesItsRequest() throws {
        let prefetcher = makePrefetcher()
        let gate = Gate()
        // Stopped after the page is let go, so a failing test does not wait its full minute.
        defer {
            gate.release.signal()
            prefetcher.stop()
        }
        try scheduleBlocked(prefetcher, key(cursor: 10), gate)
        let waiter = try startWaiting(prefetcher, key(cursor: 10))
        prefetcher.schedule(key(cursor: 20)) { Self.page(after: 20) }
        #expect(try answer(of: waiter) == nil)
        gate.release.signal()
        try waitUntil("both pages are prepared") { prefetcher.statistics.prepared == 2 }
        #expect(prefetcher.take(key(cursor: 20))?.response.cursor == 24)
        let stats = prefetcher.statistics
        #expect(stats.hits == 1 && stats.discarded == 1)
    }

    @Test("a tombstone purge while the request waits drops the page: the request goes on without it")
    func purgedWhileWaiting() throws {
        let prefetcher = makePrefetcher()
        let gate = Gate()
        // Stopped after the page is let go, so a failing test does not wait its full minute.
        defer {
            gate.release.signal()
            prefetcher.stop()
        }
        try scheduleBlocked(prefetcher, key(), gate)
        let waiter = try startWaiting(prefetcher, key())
        prefetcher.invalidateAll()
        #expect(try answer(of: waiter) == nil)
        gate.release.signal()
        try waitUntil("the dropped page finishes") { prefetcher.statistics.prepared == 1 }
        #expect(prefetcher.take(key()) == nil)
        #expect(prefetcher.statistics.discarded == 1)
    }

    @Test("the server stops while the request waits: the request goes on at once, and the stop ends when the page does")
    func stoppedWhileWaiting() throws {
        let prefetcher = makePrefetcher()
        let gate = Gate()
        // A failing test must not leave the page blocked for its full minute.
        defer { gate.release.signal() }
        try scheduleBlocked(prefetcher, key(), gate)
        let waiter = try startWaiting(prefetcher, key())
        let stopped = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            prefetcher.stop()
            stopped.signal()
        }
        #expect(try answer(of: waiter) == nil)
        // stop() waits for the page being prepared before it returns.
        #expect(stopped.wait(timeout: .now() + 0.05) == .timedOut)
        gate.release.signal()
        #expect(stopped.wait(timeout: .now() + 20) == .success)
        // Nothing is prepared after the stop: a page scheduled now never starts.
        let before = prefetcher.statistics
        let started = DispatchSemaphore(value: 0)
        prefetcher.schedule(key(cursor: 30)) {
            started.signal()
            return Self.page(after: 30)
        }
        #expect(started.wait(timeout: .now() + 0.2) == .timedOut)
        #expect(prefetcher.take(key(cursor: 30)) == nil)
        #expect(prefetcher.statistics == before)
    }
}
