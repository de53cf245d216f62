// The HTTP transport's retry loop, backoff and error mapping, driven with a scripted
// exchange and injected sleep, randomness and clock: no network, no real waiting. The
// libcurl path itself is covered end to end by the Python and C tests against a
// fault-injecting HTTP server.
@testable import PierCurl
import PierStore
import PierSync
import PierWire
import Synchronization
import Testing

/// Hooks that record every sleep and advance a fake clock by it.
final class FakeTime: Sendable {
    let sleeps = Mutex<[Int]>([])
    let clock = Mutex(0)
    let randomFraction: Double

    init(randomFraction: Double = 1.0) { self.randomFraction = randomFraction }

    var hooks: HTTPTransport.Hooks {
        HTTPTransport.Hooks(
            sleep: { ms in self.sleeps.withLock { $0.append(ms) }; self.clock.withLock { $0 += ms } },
            random: { upper in Int(Double(upper) * self.randomFraction) },
            now: { self.clock.withLock { $0 } })
    }

    var recorded: [Int] { sleeps.withLock { $0 } }
}

/// An exchange that plays a script of outcomes and counts the attempts.
final class Script: @unchecked Sendable {
    // Only touched from the test's own thread.
    var outcomes: [HTTPTransport.Outcome]
    var attempts = 0
    init(_ outcomes: [HTTPTransport.Outcome]) { self.outcomes = outcomes }

    func next(_ request: [UInt8]) -> HTTPTransport.Outcome {
        attempts += 1
        return outcomes.isEmpty ? .failure(retryable: true, message: "script ran out") : outcomes.removeFirst()
    }
}

func transport(_ time: FakeTime, retry: RetryPolicy = RetryPolicy()) throws -> HTTPTransport {
    try HTTPTransport(baseURL: "http://127.0.0.1:9/", token: "t0ken",
                      configuration: HTTPTransport.Configuration(retry: retry), hooks: time.hooks)
}

func errorFrame(_ code: PierError.Code, _ message: String) throws -> [UInt8] {
    try Frame.encode(.error(ErrorMessage(code: code.rawValue, message: message)), options: .uncompressed)
}

let ok: HTTPTransport.Outcome = .response(status: 200, retryAfterSeconds: nil, body: [1, 2, 3])

@Suite struct RetryPolicyTests {
    @Test func backoffDoublesFromTheBaseUpToTheCap() {
        let policy = RetryPolicy(maxAttempts: 10, baseDelayMilliseconds: 200, maxDelayMilliseconds: 1_000)
        #expect((1...5).map { policy.backoffCeiling(retry: $0) } == [200, 400, 800, 1_000, 1_000])
        #expect(policy.backoffCeiling(retry: 1_000) == 1_000)  // no overflow for huge retry counts
        #expect(RetryPolicy(baseDelayMilliseconds: 0).backoffCeiling(retry: 3) == 0)
    }

    @Test func fullJitterDrawsBetweenZeroAndTheCeiling() {
        let policy = RetryPolicy(baseDelayMilliseconds: 100, maxDelayMilliseconds: 10_000)
        var asked: [Int] = []
        let delay = policy.delay(retry: 3, retryAfterMilliseconds: nil) { upper in asked.append(upper); return upper / 4 }
        #expect(asked == [400])
        #expect(delay == 100)
        // A random source out of range is clamped to the ceiling.
        #expect(policy.delay(retry: 1, retryAfterMilliseconds: nil) { _ in 1_000_000 } == 100)
        #expect(policy.delay(retry: 1, retryAfterMilliseconds: nil) { _ in -5 } == 0)
    }

    @Test func retryAfterIsAFloorButTheMaxDelayStillCaps() {
        let policy = RetryPolicy(baseDelayMilliseconds: 100, maxDelayMilliseconds: 5_000)
        #expect(policy.delay(retry: 1, retryAfterMilliseconds: 2_000) { $0 } == 2_000)
        #expect(policy.delay(retry: 1, retryAfterMilliseconds: 60_000) { $0 } == 5_000)
        #expect(policy.delay(retry: 1, retryAfterMilliseconds: 0) { $0 } == 100)
    }

    @Test func attemptsAreAtLeastOne() {
        #expect(RetryPolicy(maxAttempts: 0).maxAttempts == 1)
        #expect(RetryPolicy.default.maxAttempts == 5)
    }
}

@Suite struct RetryLoopTests {
    @Test func transientFailuresAreRetriedWithGrowingBackoffUntilSuccess() throws {
        let time = FakeTime()
        let script = Script([
            .failure(retryable: true, message: "Couldn't connect"),
            .response(status: 503, retryAfterSeconds: nil, body: []),
            .response(status: 502, retryAfterSeconds: nil, body: Array("<html>bad gateway</html>".utf8)),
            ok,
        ])
        let body = try transport(time).send([9], exchange: script.next)
        #expect(body == [1, 2, 3])
        #expect(script.attempts == 4)
        #expect(time.recorded == [200, 400, 800])  // random = upper: the full ceilings
    }

    @Test func aCancelledRequestSentAheadStopsRetryingAndStopsWaiting() throws {
        let time = FakeTime()
        let cancellation = Cancellation()
        let script = Script([
            .failure(retryable: true, message: "Couldn't connect"),
            .failure(retryable: true, message: "Couldn't connect"),
            ok,
        ])
        let exchange: ([UInt8]) -> HTTPTransport.Outcome = { request in
            // The sync that sent it ahead stops during the second attempt.
            if script.attempts == 1 { cancellation.cancel() }
            return script.next(request)
        }
        let error = try #require(throws: PierError.self) {
            try transport(time).send([9], cancellation: cancellation, exchange: exchange)
        }
        #expect(error.code == .network)
        #expect(error.message.contains("cancelled"))
        #expect(script.attempts == 2)
        // The first backoff (200 ms) ran in 50 ms slices while not cancelled; the second
        // was never waited.
        #expect(time.recorded == [50, 50, 50, 50])
    }

    @Test func aCancellationSetBeforeTheFirstAttemptSendsNothing() throws {
        let time = FakeTime()
        let cancellation = Cancellation()
        cancellation.cancel()
        let script = Script([ok])
        #expect(throws: PierError.self) { try transport(time).send([9], cancellation: cancellation, exchange: script.next) }
        #expect(script.attempts == 0)
    }

    @Test(arguments: [429, 500, 502, 503, 504])
    func retryableStatuses(status: Int) throws {
        let time = FakeTime(randomFraction: 0)
        let script = Script([.response(status: status, retryAfterSeconds: nil, body: []), ok])
        #expect(try transport(time).send([], exchange: script.next) == [1, 2, 3])
        #expect(script.attempts == 2)
    }

    @Test(arguments: [400, 401, 403, 404, 409, 413, 415, 422, 501])
    func otherStatusesAreNotRetried(status: Int) throws {
        let time = FakeTime()
        let script = Script([.response(status: status, retryAfterSeconds: nil, body: []), ok])
        #expect(throws: PierError.self) { try transport(time).send([], exchange: script.next) }
        #expect(script.attempts == 1)
        #expect(time.recorded.isEmpty)
    }

    @Test func retryAfterIsHonoured() throws {
        let time = FakeTime(randomFraction: 0)
        let script = Script([.response(status: 503, retryAfterSeconds: 3, body: []),
                             .response(status: 429, retryAfterSeconds: 1, body: []), ok])
        _ = try transport(time).send([], exchange: script.next)
        #expect(time.recorded == [3_000, 1_000])
    }

    @Test func exhaustedRetriesAreANetworkErrorNamingTheLastStatus() throws {
        let time = FakeTime()
        let frame = try errorFrame(.busy, "master store unavailable")
        let script = Script(Array(repeating: .response(status: 503, retryAfterSeconds: nil, body: frame), count: 10))
        let error = try #require(throws: PierError.self) {
            try transport(time, retry: RetryPolicy(maxAttempts: 3)).send([], exchange: script.next)
        }
        #expect(error.code == .network)
        #expect(error.message.contains("HTTP 503"))
        #expect(error.message.contains("PIER_EBUSY"))
        #expect(error.message.contains("master store unavailable"))
        #expect(error.message.contains("3 attempts"))
        #expect(script.attempts == 3)
        #expect(time.recorded.count == 2)
    }

    @Test func exhaustedNetworkFailuresNameTheCurlError() throws {
        let script = Script(Array(repeating: .failure(retryable: true, message: "Timeout was reached (curl error 28)"), count: 3))
        let error = try #require(throws: PierError.self) {
            try transport(FakeTime(), retry: RetryPolicy(maxAttempts: 2)).send([], exchange: script.next)
        }
        #expect(error.code == .network)
        #expect(error.message.contains("curl error 28"))
        #expect(script.attempts == 2)
    }

    @Test func permanentNetworkFailuresAreNotRetried() throws {
        let script = Script([.failure(retryable: false, message: "SSL peer certificate was not OK"), ok])
        let error = try #require(throws: PierError.self) { try transport(FakeTime()).send([], exchange: script.next) }
        #expect(error.code == .network)
        #expect(script.attempts == 1)
    }

    @Test func anOversizedResponseIsRefusedAtOnce() throws {
        let script = Script([.tooLarge, ok])
        let error = try #require(throws: PierError.self) { try transport(FakeTime()).send([], exchange: script.next) }
        #expect(error.code == .protocol)
        #expect(script.attempts == 1)
    }

    @Test func theElapsedBudgetStopsRetriesEarly() throws {
        let time = FakeTime()
        let script = Script(Array(repeating: .response(status: 500, retryAfterSeconds: nil, body: []), count: 10))
        let policy = RetryPolicy(maxAttempts: 10, baseDelayMilliseconds: 100, maxDelayMilliseconds: 10_000, maxElapsedMilliseconds: 1_000)
        let error = try #require(throws: PierError.self) { try transport(time, retry: policy).send([], exchange: script.next) }
        #expect(error.code == .network)
        #expect(time.recorded == [100, 200, 400])  // 700 ms slept; another 800 would pass 1 s
        #expect(script.attempts == 4)
    }

    @Test func noRetryWithASingleAttempt() throws {
        let script = Script([.response(status: 503, retryAfterSeconds: 1, body: []), ok])
        #expect(throws: PierError.self) { try transport(FakeTime(), retry: .never).send([], exchange: script.next) }
        #expect(script.attempts == 1)
    }
}

@Suite struct ErrorMappingTests {
    @Test(arguments: [
        (401, PierError.Code.auth), (403, .forbidden), (413, .limit), (400, .protocol), (415, .protocol),
        (404, .protocol), (409, .conflict), (429, .limit), (302, .protocol), (418, .protocol), (500, .network), (502, .network),
    ])
    func statusWithoutAFrame(status: Int, code: PierError.Code) {
        let error = HTTPTransport.error(status: status, body: Array("<html><body>nope</body></html>".utf8), endpoint: "http://x/v1/sync")
        #expect(error.code == code)
        #expect(error.message.contains("HTTP \(status)"))
    }

    @Test func theErrorFrameWinsOverTheStatus() throws {
        let auth = HTTPTransport.error(status: 401, body: try errorFrame(.auth, "invalid credentials"), endpoint: "e")
        #expect(auth.code == .auth)
        #expect(auth.message.contains("invalid credentials"))
        let invalid = HTTPTransport.error(status: 400, body: try errorFrame(.invalid, "batch_seq went backwards"), endpoint: "e")
        #expect(invalid.code == .invalid)
        #expect(invalid.message.contains("batch_seq went backwards"))
    }

    @Test func aTruncatedErrorFrameFallsBackToTheStatus() throws {
        let frame = try errorFrame(.forbidden, "scope not allowed")
        let error = HTTPTransport.error(status: 403, body: Array(frame.dropLast(3)), endpoint: "e")
        #expect(error.code == .forbidden)
        #expect(!error.message.contains("scope not allowed"))
    }

    @Test func errorFramesOnAFinal4xxSurfaceTheirCode() throws {
        let script = Script([.response(status: 403, retryAfterSeconds: nil, body: try errorFrame(.forbidden, "client id belongs to another user"))])
        let error = try #require(throws: PierError.self) { try transport(FakeTime()).send([], exchange: script.next) }
        #expect(error.code == .forbidden)
        #expect(error.message.contains("another user"))
    }
}

@Suite struct ConfigurationTests {
    @Test func theEndpointIsTheBaseURLPlusV1Sync() throws {
        #expect(try HTTPTransport.endpoint("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1/sync")
        #expect(try HTTPTransport.endpoint("HTTPS://sync.example.com/pier//") == "HTTPS://sync.example.com/pier/v1/sync")
    }

    @Test(arguments: ["ftp://host", "host:8080", "", "http://", "http://a b", "http://host/?x=1", "file:///etc/passwd"])
    func badURLsAreInvalid(url: String) {
        let error = #expect(throws: PierError.self) { try HTTPTransport(baseURL: url) }
        #expect(error?.code == .invalid)
    }

    @Test func tokensWithLineBreaksAreRefused() {
        let error = #expect(throws: PierError.self) { try HTTPTransport(baseURL: "http://h", token: "a\r\nX-Evil: 1") }
        #expect(error?.code == .invalid)
    }

    @Test func retryAfterHeaderParsing() {
        func parse(_ line: String) -> Int? { Array(line.utf8).withUnsafeBytes { retryAfter($0) } }
        #expect(parse("Retry-After: 7\r\n") == 7)
        #expect(parse("retry-after:120\r\n") == 120)
        #expect(parse("RETRY-AFTER:  3 \r\n") == 3)
        #expect(parse("Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n") == nil)
        #expect(parse("Retry-After-Other: 5\r\n") == nil)
        #expect(parse("Content-Length: 5\r\n") == nil)
        #expect(parse("Retry-After: 99999999999999999999999\r\n") == Int.max)
    }

    @Test func aRefusedConnectionIsARetriedNetworkError() throws {
        // Port 9 (discard) on loopback is closed on a test machine: a real libcurl failure.
        let time = FakeTime()
        let transport = try HTTPTransport(baseURL: "http://127.0.0.1:9",
                                          configuration: .init(connectTimeoutMilliseconds: 2_000, retry: RetryPolicy(maxAttempts: 2)),
                                          hooks: time.hooks)
        let error = try #require(throws: PierError.self) { try transport.roundTrip([1, 2, 3]) }
        #expect(error.code == .network)
        #expect(error.message.contains("2 attempts"))
        #expect(time.recorded.count == 1)
    }
}
