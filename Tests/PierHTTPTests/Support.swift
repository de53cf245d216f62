import Foundation
import Logging
import Pier
@testable import PierHTTP
import PierWire
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A fresh temporary folder (remove it with `removeFolder` when the test ends).
func temporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "pier-http-" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Removes a folder made by `temporaryFolder` and everything in it.
func removeFolder(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

let testSecret = Array("0123456789abcdef0123456789abcdef-test-secret".utf8)

/// A JWT signed with `testSecret`.
func token(_ user: String, read: [String]? = ["*"], write: [String]? = ["*"], admin: Bool = false, ttl: Int = 600,
           audience: String? = nil, issuer: String? = nil, notBefore: Date? = nil, secret: [UInt8] = testSecret) async throws -> String {
    try await TokenMinter.mint(key: .hs256(secret: secret), subject: user, readScopes: read, writeScopes: write, admin: admin,
                               ttlSeconds: ttl, audience: audience, issuer: issuer, notBefore: notBefore)
}

/// One HTTP exchange's answer.
struct HTTPAnswer: Sendable {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The error message of an error frame body.
    var errorFrame: ErrorMessage? {
        guard case .error(let message)? = try? Frame.decode(body) else { return nil }
        return message
    }
}

/// Runs blocking work on its own thread, never on Swift's cooperative pool (which also
/// runs the server's handlers: blocking it could starve them).
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.start()
    }
}

struct HTTPClientError: Error, CustomStringConvertible {
    var description: String
}

/// A minimal blocking HTTP/1.1 client over a loopback socket (one request per
/// connection), so that the synchronous `CallbackTransport` can talk to the server.
/// A TCP connection to 127.0.0.1:`port` whose reads time out after the given time; the
/// caller closes it.
func connectLoopback(port: Int, receiveTimeoutMicroseconds: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HTTPClientError(description: "socket failed") }
    var timeout = timeval(tv_sec: receiveTimeoutMicroseconds / 1_000_000, tv_usec: receiveTimeoutMicroseconds % 1_000_000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw HTTPClientError(description: "connect to port \(port) failed: errno \(errno)")
    }
    return fd
}

/// `paceBytes`: send the body in pieces of this many bytes, `paceMicroseconds` apart (a slow link).
func httpExchange(port: Int, method: String, path: String, headers: [(String, String)] = [], body: [UInt8] = [],
                  omitContentLength: Bool = false, paceBytes: Int = 0, paceMicroseconds: UInt32 = 0) throws -> HTTPAnswer {
    let fd = try connectLoopback(port: port, receiveTimeoutMicroseconds: 60_000_000)
    defer { close(fd) }
    var timeout = timeval(tv_sec: 60, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    if !omitContentLength { head += "Content-Length: \(body.count)\r\n" }
    head += "\r\n"
    let request = Array(head.utf8) + body
    var sent = 0
    while sent < request.count {
        let piece = paceBytes > 0 && sent >= head.utf8.count ? min(paceBytes, request.count - sent) : request.count - sent
        if paceBytes > 0 && sent >= head.utf8.count { usleep(paceMicroseconds) }
        let n = request[sent..<(sent + piece)].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }  // the server may answer (413) and close before reading everything
        sent += n
    }

    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response.append(contentsOf: buffer[0..<n])
    }
    guard let split = response.firstRange(of: Array("\r\n\r\n".utf8)) else {
        throw HTTPClientError(description: "no HTTP response (\(response.count) bytes)")
    }
    let lines = String(decoding: response[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = lines[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw HTTPClientError(description: "bad status line \(lines[0])") }
    var fields: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var content = Array(response[split.upperBound...])
    if fields["transfer-encoding"]?.lowercased() == "chunked" { content = dechunk(content) }
    return HTTPAnswer(status: status, headers: fields, body: content)
}

private func dechunk(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var index = 0
    while index < bytes.count {
        guard let lineEnd = bytes[index...].firstRange(of: Array("\r\n".utf8)) else { break }
        let sizeText = String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
        guard let size = Int(sizeText, radix: 16), size > 0 else { break }
        let start = lineEnd.upperBound
        out.append(contentsOf: bytes[start..<min(bytes.count, start + size)])
        index = start + size + 2
    }
    return out
}

/// POSTs a frame to /v1/sync.
func postFrame(port: Int, _ frame: [UInt8], credential: String?, contentType: String = "application/vnd.pier.frame") throws -> HTTPAnswer {
    var headers = [("Content-Type", contentType)]
    if let credential { headers.append(("Authorization", "Bearer \(credential)")) }
    return try httpExchange(port: port, method: "POST", path: "/v1/sync", headers: headers, body: frame)
}

/// GET with an optional bearer credential.
func get(port: Int, _ path: String, credential: String? = nil) throws -> HTTPAnswer {
    try httpExchange(port: port, method: "GET", path: path, headers: credential.map { [("Authorization", "Bearer \($0)")] } ?? [])
}

/// A transport that POSTs each frame to the server; non-200 answers with an error frame
/// are handed to the engine as they are (it reads the error), others are network errors.
func httpTransport(port: Int, credential: String) -> CallbackTransport {
    CallbackTransport { (frame) throws(PierError) -> [UInt8] in
        let answer: HTTPAnswer
        do { answer = try postFrame(port: port, frame, credential: credential) } catch {
            throw PierError(.network, "\(error)")
        }
        if answer.status == 200 || answer.errorFrame != nil { return answer.body }
        throw PierError(.network, "HTTP \(answer.status)")
    }
}

/// A sync request frame with the given changes.
func requestFrame(client: String = "c1", seq: UInt64 = 1, changes: [SyncRequest.Change] = [], pull: SyncRequest.PullRequest? = nil,
                  options: EncodeOptions = .default) throws -> [UInt8] {
    try Frame.encode(.syncRequest(SyncRequest(clientID: client, batchSeq: seq, changes: changes, pull: pull)), options: options)
}

func upsert(_ collection: String, _ id: String, _ body: String, scope: String = "north", base: Int64 = 0, hlc: Int64 = 1 << 16) -> SyncRequest.Change {
    SyncRequest.Change(collection: collection, id: id, op: .upsert, baseVersion: base, hlc: hlc, scope: scope, body: WireBytes(body), changedFields: [])
}

/// A test server: an SQLite master store in a temporary folder behind HTTP on a free port.
struct TestServer {
    let folder: String
    let sync: SyncServer
    let http: RunningServer
    let gate: BlockingStore

    var port: Int { http.port }

    static func start(config: ServerConfig = ServerConfig(), logger: Logger = Logger(label: "pier.http.test"),
                      configure: (inout HTTPConfiguration) -> Void = { _ in }) async throws -> TestServer {
        let folder = temporaryFolder()
        let gate = BlockingStore(try SQLiteMasterStore(path: folder + "/master.pier"))
        let sync = SyncServer(store: gate, config: config)
        var configuration = HTTPConfiguration(host: "127.0.0.1", port: 0, auth: AuthConfiguration(jwt: JWTConfiguration(hs256Secret: testSecret)))
        configure(&configuration)
        let http = try await PierHTTPServer.start(server: sync, configuration: configuration, logger: logger)
        return TestServer(folder: folder, sync: sync, http: http, gate: gate)
    }

    /// Shuts the server down and removes its folder (with any client stores a test put there).
    func stop() async throws {
        defer { removeFolder(folder) }
        try await shutdown()
    }

    /// Shuts the server down and keeps its folder, for a test that reads the store after
    /// the shutdown (it removes the folder itself).
    func shutdown() async throws { try await http.shutdown() }
}

/// A master store whose writes can be held at a gate, to have syncs in flight on demand.
final class BlockingStore: MasterStore {
    let inner: any MasterStore
    private let armed = Mutex(false)
    /// When set, every read and write fails with this error (a master store that is down).
    let failure = Mutex<PierError?>(nil)
    /// Signalled by each write that stops at the gate.
    let entered = DispatchSemaphore(value: 0)
    /// Lets the writes stopped at the gate go on.
    let release = DispatchSemaphore(value: 0)

    init(_ inner: any MasterStore) { self.inner = inner }

    func arm() { armed.withLock { $0 = true } }

    /// Opens the gate for every write to come and for `waiting` writes stopped at it.
    func open(waiting: Int) {
        armed.withLock { $0 = false }
        for _ in 0..<waiting { release.signal() }
    }

    func write<T>(_ body: (any MasterTransaction) throws(PierError) -> T) throws(PierError) -> T {
        if let failure = failure.withLock({ $0 }) { throw failure }
        if armed.withLock({ $0 }) {
            entered.signal()
            // Bounded: a broken test fails instead of hanging.
            if release.wait(timeout: .now() + 60) == .timedOut { throw PierError(.busy, "test gate never opened") }
        }
        return try inner.write(body)
    }

    func read<T>(_ body: (any MasterReader) throws(PierError) -> T) throws(PierError) -> T {
        if let failure = failure.withLock({ $0 }) { throw failure }
        return try inner.read(body)
    }
}

/// Waits for a semaphore on a thread of its own (bounded).
func wait(_ semaphore: DispatchSemaphore, seconds: Int = 60) async throws -> Bool {
    try await onThread { semaphore.wait(timeout: .now() + .seconds(seconds)) == .success }
}
