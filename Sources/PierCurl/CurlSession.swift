// One libcurl easy handle and one HTTP exchange on it.
import CCurl
import PierStore
import PierSync
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// libcurl's global state, set up once per process. Swift initialises a global exactly once
/// and thread-safely (swift_once), which is what curl_global_init needs: it must not run
/// twice at the same time.
private let curlGlobalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

/// A libcurl easy handle and the request headers, which live as long as the transport.
final class CurlSession: Sendable {
    private struct State: ~Copyable {
        let handle: UnsafeMutableRawPointer
        let headers: UnsafeMutablePointer<curl_slist>?
    }

    // The handle is only touched under the lock, so one exchange runs on it at a time.
    private let state: Mutex<State>

    init(token: String?) throws(PierError) {
        guard curlGlobalInit == CURLE_OK else {
            throw PierError(.internalError, "libcurl failed to initialise: \(String(cString: curl_easy_strerror(curlGlobalInit)))")
        }
        guard let handle = curl_easy_init() else { throw PierError(.noMemory, "libcurl could not create a handle") }
        var headers: UnsafeMutablePointer<curl_slist>?
        var lines = ["Content-Type: application/vnd.pier.frame", "Accept: application/vnd.pier.frame",
                     // No "Expect: 100-continue" round trip before large bodies.
                     "Expect:"]
        if let token { lines.append("Authorization: Bearer \(token)") }
        for line in lines {
            guard let next = curl_slist_append(headers, line) else {
                curl_slist_free_all(headers)
                curl_easy_cleanup(handle)
                throw PierError(.noMemory, "libcurl could not build the request headers")
            }
            headers = next
        }
        state = Mutex(State(handle: handle, headers: headers))
    }

    deinit {
        state.withLock { state in
            curl_easy_cleanup(state.handle)
            curl_slist_free_all(state.headers)
        }
    }

    /// POSTs `request` to `url` and reports what came back.
    func exchange(_ request: [UInt8], to url: String, _ configuration: HTTPTransport.Configuration,
                  cancellation: Cancellation? = nil) -> HTTPTransport.Outcome {
        state.withLock { state in
            let handle = state.handle
            // Start from a clean handle (no pointer from an earlier call survives); live
            // connections stay in the handle's cache and are reused.
            curl_easy_reset(handle)
            let receiver = Receiver(limit: configuration.maxResponseBytes, cancellation: cancellation)
            var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
            let code: CURLcode = withExtendedLifetime(receiver) {
                let context = Unmanaged.passUnretained(receiver).toOpaque()
                return errorBuffer.withUnsafeMutableBufferPointer { errorText in
                    request.withUnsafeBytes { body in
                        var rc = CURLE_OK
                        func set(_ result: CURLcode) { if rc == CURLE_OK { rc = result } }
                        set(pier_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorText.baseAddress))
                        set(url.withCString { pier_curl_setopt_pointer(handle, CURLOPT_URL, $0) })  // copied by libcurl
                        set("http,https".withCString { pier_curl_setopt_pointer(handle, CURLOPT_PROTOCOLS_STR, $0) })
                        set(pier_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))  // threads: no SIGALRM for timeouts
                        set(pier_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
                        set(pier_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, clampedLong(configuration.connectTimeoutMilliseconds)))
                        set(pier_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, clampedLong(configuration.timeoutMilliseconds)))
                        set(pier_curl_setopt_offset(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(configuration.maxResponseBytes)))
                        set(pier_curl_setopt_pointer(handle, CURLOPT_HTTPHEADER, state.headers))
                        set("pier/0.1 libcurl".withCString { pier_curl_setopt_pointer(handle, CURLOPT_USERAGENT, $0) })
                        set(pier_curl_setopt_long(handle, CURLOPT_POST, 1))
                        // Not copied: `body` stays valid until curl_easy_perform returns.
                        set(pier_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, body.baseAddress))
                        set(pier_curl_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
                        set(pier_curl_setopt_data_cb(handle, CURLOPT_WRITEFUNCTION, receiveBody))
                        set(pier_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context))
                        set(pier_curl_setopt_data_cb(handle, CURLOPT_HEADERFUNCTION, receiveHeader))
                        set(pier_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context))
                        if cancellation != nil {
                            set(pier_curl_setopt_xferinfo_cb(handle, CURLOPT_XFERINFOFUNCTION, checkCancelled))
                            set(pier_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context))
                            set(pier_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0))
                        }
                        if let caFile = configuration.caFile {
                            set(caFile.withCString { pier_curl_setopt_pointer(handle, CURLOPT_CAINFO, $0) })
                        }
                        if configuration.insecureSkipVerify {
                            set(pier_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 0))
                            set(pier_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 0))
                        }
                        guard rc == CURLE_OK else { return rc }
                        let result = curl_easy_perform(handle)
                        // The error buffer is about to go away; libcurl must not write to it.
                        _ = pier_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, nil)
                        return result
                    }
                }
            }
            if receiver.overflow || code == CURLE_FILESIZE_EXCEEDED { return .tooLarge }
            guard code == CURLE_OK else {
                let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let text = "\(String(cString: curl_easy_strerror(code)))\(detail.isEmpty ? "" : ": \(detail)") (curl error \(code.rawValue))"
                return .failure(retryable: CurlSession.isRetryable(code), message: text)
            }
            var status = 0
            _ = pier_curl_response_code(handle, &status)
            return .response(status: status, retryAfterSeconds: receiver.retryAfterSeconds, body: receiver.body)
        }
    }

    /// libcurl failures where a later attempt may succeed.
    static func isRetryable(_ code: CURLcode) -> Bool {
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT,
             CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_SSL_CONNECT_ERROR,
             CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_AGAIN:
            return true
        default:
            return false
        }
    }
}

/// What the callbacks of one exchange collect.
private final class Receiver {
    let limit: Int
    let cancellation: Cancellation?
    var body: [UInt8] = []
    var overflow = false
    var retryAfterSeconds: Int?

    init(limit: Int, cancellation: Cancellation?) {
        self.limit = limit
        self.cancellation = cancellation
    }
}

/// libcurl's progress callback: non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK).
private let checkCancelled: pier_curl_xferinfo_cb = { context, _, _, _, _ in
    guard let context else { return 0 }
    return Unmanaged<Receiver>.fromOpaque(context).takeUnretainedValue().cancellation?.isCancelled == true ? 1 : 0
}

private let receiveBody: pier_curl_data_cb = { data, size, count, context in
    guard let context else { return 0 }
    let receiver = Unmanaged<Receiver>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    guard receiver.body.count <= receiver.limit - length else {
        receiver.overflow = true
        return 0  // libcurl stops with CURLE_WRITE_ERROR
    }
    if length > 0, let data { receiver.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length)) }
    return length
}

private let receiveHeader: pier_curl_data_cb = { data, size, count, context in
    let length = size * count
    guard let context, let data else { return length }
    let receiver = Unmanaged<Receiver>.fromOpaque(context).takeUnretainedValue()
    let line = UnsafeRawBufferPointer(start: data, count: length)
    if line.starts(with: "HTTP/".utf8) {
        receiver.retryAfterSeconds = nil  // a new response (after a 1xx) starts
    } else if let seconds = retryAfter(line) {
        receiver.retryAfterSeconds = seconds
    }
    return length
}

/// The delay-seconds form of a `Retry-After` header line; nil for anything else (the
/// HTTP-date form is ignored and the backoff applies).
func retryAfter(_ line: UnsafeRawBufferPointer) -> Int? {
    let name = "retry-after:".utf8
    guard line.count > name.count,
          zip(line.prefix(name.count), name).allSatisfy({ ($0 | 0x20) == $1 || $0 == $1 }) else { return nil }
    var value: Int?
    for byte in line.dropFirst(name.count) {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            let digit = Int(byte - UInt8(ascii: "0"))
            let current = value ?? 0
            value = current > (Int.max - digit) / 10 ? Int.max : current * 10 + digit
        case UInt8(ascii: " "), UInt8(ascii: "\t"):
            if value != nil { return value }
        case UInt8(ascii: "\r"), UInt8(ascii: "\n"):
            return value
        default:
            return nil
        }
    }
    return value
}

private func clampedLong(_ value: Int) -> Int { max(0, value) }

/// Blocks the thread for `milliseconds` (nanosleep, resumed after signals).
func sleepMilliseconds(_ milliseconds: Int) {
    guard milliseconds > 0 else { return }
    var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// A monotonic clock in milliseconds.
func monotonicMilliseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
}
