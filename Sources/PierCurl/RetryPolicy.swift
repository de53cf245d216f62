/// When the HTTP transport tries a request again, and how long it waits first.
///
/// Retries follow docs/PROTOCOL.md §12: connection failures, timeouts, 429, 500, 502, 503
/// and 504 are retried with exponential backoff and full jitter; other statuses are not.
/// The wait before retry *n* (1-based) is a uniformly random value in
/// `0...min(maxDelay, baseDelay * 2^(n-1))` ("full jitter", so many devices coming back
/// online at once spread out), raised to the server's `Retry-After` when it sent one, and
/// never more than `maxDelay`.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included: 1 means never retry. At least 1.
    public var maxAttempts: Int
    /// The backoff ceiling of the first retry, in milliseconds.
    public var baseDelayMilliseconds: Int
    /// The longest wait between two attempts, in milliseconds; a longer `Retry-After` is cut
    /// to this.
    public var maxDelayMilliseconds: Int
    /// When set, no retry starts that would begin later than this many milliseconds after
    /// the first attempt: the round trip fails at once instead.
    public var maxElapsedMilliseconds: Int?

    /// Creates a policy; the defaults are 5 attempts (4 retries), 200 ms base, 10 s cap.
    public init(maxAttempts: Int = 5, baseDelayMilliseconds: Int = 200, maxDelayMilliseconds: Int = 10_000,
                maxElapsedMilliseconds: Int? = nil) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelayMilliseconds = max(0, baseDelayMilliseconds)
        self.maxDelayMilliseconds = max(0, maxDelayMilliseconds)
        self.maxElapsedMilliseconds = maxElapsedMilliseconds.map { max(0, $0) }
    }

    /// The default policy: 4 retries, 200 ms base delay, 10 s cap.
    public static let `default` = RetryPolicy()

    /// A single attempt, never retried.
    public static let never = RetryPolicy(maxAttempts: 1)

    /// The upper bound of the jittered wait before retry number `retry` (1-based):
    /// `min(maxDelay, baseDelay * 2^(retry-1))`, without overflow for any `retry`.
    public func backoffCeiling(retry: Int) -> Int {
        let exponent = max(0, retry - 1)
        guard baseDelayMilliseconds > 0 else { return 0 }
        // Doubling past the cap (or past 2^62) changes nothing: stop there.
        if exponent >= 62 || baseDelayMilliseconds > (maxDelayMilliseconds >> exponent) { return maxDelayMilliseconds }
        return min(maxDelayMilliseconds, baseDelayMilliseconds << exponent)
    }

    /// The wait before retry number `retry` (1-based), in milliseconds.
    /// - Parameters:
    ///   - retryAfterMilliseconds: the server's `Retry-After`, if it sent one.
    ///   - random: returns a uniformly random integer in `0...upper` (injected by tests).
    public func delay(retry: Int, retryAfterMilliseconds: Int?, random: (Int) -> Int) -> Int {
        let ceiling = backoffCeiling(retry: retry)
        let jittered = ceiling > 0 ? min(ceiling, max(0, random(ceiling))) : 0
        let wanted = max(jittered, retryAfterMilliseconds ?? 0)
        return min(wanted, maxDelayMilliseconds)
    }
}
