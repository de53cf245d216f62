import Foundation
import Pier
@testable import PierHTTP
import PierWire
import Testing

@Suite("Request limits, concurrency and shutdown")
struct LimitsTests {
    @Test("a body over the limit is 413, a wrong content type 415, garbage 400 — each with an error frame")
    func badRequests() async throws {
        let server = try await TestServer.start { $0.maxRequestBytes = 1_000 }
        let credential = try await token("ana")
        let port = server.port
        let big = try requestFrame(changes: [upsert("c", "x", "{\"pad\":\"" + String(repeating: "x", count: 4_000) + "\"}")],
                                   options: .uncompressed)
        #expect(big.count > 1_000)
        let good = try requestFrame(pull: .init(cursor: 0))
        let (tooLarge, wrongType, garbage, html) = try await onThread {
            (try postFrame(port: port, big, credential: credential),
             try postFrame(port: port, good, credential: credential, contentType: "application/json"),
             try postFrame(port: port, Array("hello, not a frame".utf8), credential: credential),
             try postFrame(port: port, Array("<html></html>".utf8), credential: credential, contentType: "text/html"))
        }
        #expect(tooLarge.status == 413)
        #expect(tooLarge.errorFrame?.code == PierError.Code.limit.rawValue)
        #expect(wrongType.status == 415)
        #expect(wrongType.errorFrame?.code == PierError.Code.protocol.rawValue)
        #expect(html.status == 415)
        #expect(garbage.status == 400)
        #expect(garbage.errorFrame?.code == PierError.Code.protocol.rawValue)
        #expect(garbage.headers["content-type"] == "application/vnd.pier.frame")
        try await server.stop()
    }

    @Test("a body over the limit without Content-Length (chunked) is 413 too")
    func chunkedTooLarge() async throws {
        let server = try await TestServer.start { $0.maxRequestBytes = 100 }
        let credential = try await token("ana")
        let port = server.port
        let chunk = Array(repeating: UInt8(ascii: "x"), count: 300)
        let body = Array("12c\r\n".utf8) + chunk + Array("\r\n0\r\n\r\n".utf8)
        let answer = try await onThread {
            try httpExchange(port: port, method: "POST", path: "/v1/sync",
                             headers: [("Content-Type", "application/vnd.pier.frame"), ("Authorization", "Bearer \(credential)"),
                                       ("Transfer-Encoding", "chunked")],
                             body: body, omitContentLength: true)
        }
        #expect(answer.status == 413)
        try await server.stop()
    }

    @Test("a body dripped byte by byte is cut off after the grace period with 408 and a closed connection; a slow steady one is read")
    func slowDrip() async throws {
        let server = try await TestServer.start { $0.idleTimeoutSeconds = 1; $0.requestTimeoutSeconds = 1 }
        let credential = try await token("ana")
        let port = server.port
        let (answer, seconds, bytesSent, closed) = try await onThread { () throws -> (String, Double, Int, Bool) in
            let fd = try connectLoopback(port: port, receiveTimeoutMicroseconds: 100_000)
            defer { close(fd) }
            let head = "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(credential)\r\n"
                + "Content-Type: application/vnd.pier.frame\r\nContent-Length: 1000\r\n\r\n"
            _ = head.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            let start = Date()
            var received: [UInt8] = []
            var sent = 0
            var closed = false
            // One byte about every 200 ms: each resets the idle timer, so only the pace check ends it.
            while Date().timeIntervalSince(start) < 10 && !closed {
                var byte = UInt8(ascii: "x")
                if send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) == 1 { sent += 1 } else { closed = true }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 {
                    received += buffer[0..<n]
                } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
                    closed = true  // closed, or reset: the server stopped reading
                }
                usleep(100_000)
            }
            return (String(decoding: received, as: UTF8.self), Date().timeIntervalSince(start), sent, closed)
        }
        // The 408 arrives first; on a loaded machine the reset of the close can overtake it.
        #expect(answer.hasPrefix("HTTP/1.1 408") || (answer.isEmpty && closed), "\(answer)")
        #expect(closed, "the connection was not closed")
        #expect(seconds < 6, "the connection stayed open \(seconds) s")
        #expect(bytesSent < 1_000)

        // A slow but steady upload (about 4 KB/s, longer than the grace period) is read whole:
        // the garbage body is answered 400, not 408.
        let steady = try await onThread { () throws -> String in
            let body = [UInt8](repeating: UInt8(ascii: "x"), count: 9_000)
            let answer = try httpExchange(port: port, method: "POST", path: "/v1/sync",
                                          headers: [("Content-Type", "application/vnd.pier.frame"), ("Authorization", "Bearer \(credential)")],
                                          body: body, paceBytes: 1_000, paceMicroseconds: 250_000)
            return "\(answer.status)"
        }
        #expect(steady == "400")
        try await server.stop()
    }

    @Test("beyond max_concurrent_syncs a sync is answered 429 with Retry-After; the blocked one still succeeds")
    func concurrencyLimit() async throws {
        let server = try await TestServer.start { $0.maxConcurrentSyncs = 1; $0.retryAfterSeconds = 7 }
        let credential = try await token("ana")
        let port = server.port
        let frame = try requestFrame(client: "a", changes: [upsert("c", "x", "{}")])
        let other = try requestFrame(client: "b", pull: .init(cursor: 0))
        server.gate.arm()
        async let blocked = onThread { try postFrame(port: port, frame, credential: credential) }
        #expect(try await wait(server.gate.entered), "the first sync reached the store")
        let refused = try await onThread { try postFrame(port: port, other, credential: credential) }
        server.gate.open(waiting: 1)
        let first = try await blocked
        #expect(refused.status == 429)
        #expect(refused.headers["retry-after"] == "7")
        #expect(refused.errorFrame?.code == PierError.Code.limit.rawValue)
        #expect(first.status == 200)
        let after = try await onThread { try postFrame(port: port, other, credential: credential) }
        #expect(after.status == 200, "the slot is free again")
        try await server.stop()
    }

    @Test("a master store that fails is 503 with Retry-After on sync, and 503 on health")
    func storeDown() async throws {
        let server = try await TestServer.start { $0.retryAfterSeconds = 3 }
        let credential = try await token("ana")
        let port = server.port
        let frame = try requestFrame(client: "a", changes: [upsert("c", "x", "{}")])
        server.gate.failure.withLock { $0 = PierError(.io, "disk unplugged") }
        let (sync, health) = try await onThread { (try postFrame(port: port, frame, credential: credential), try get(port: port, "/v1/health")) }
        #expect(sync.status == 503)
        #expect(sync.headers["retry-after"] == "3")
        #expect(sync.errorFrame?.code == PierError.Code.io.rawValue)
        #expect(health.status == 503)
        #expect(health.text == #"{"status":"unavailable"}"#)
        server.gate.failure.withLock { $0 = nil }
        let again = try await onThread { try postFrame(port: port, frame, credential: credential) }
        #expect(again.status == 200, "the retried batch applies once the store is back")
        try await server.stop()
    }

    @Test("a server runs once: starting it again after shutdown is a clear error")
    func runsOnce() async throws {
        let folder = temporaryFolder()
        defer { removeFolder(folder) }
        let sync = SyncServer(store: try SQLiteMasterStore(path: folder + "/m.pier"))
        let http = try await PierHTTPServer(server: sync, configuration: HTTPConfiguration(port: 0))
        let first = try await http.start()
        #expect(first.port > 0)
        try await first.shutdown()
        do {
            let second = try await http.start()
            try await second.shutdown()
            Issue.record("started twice")
        } catch let error as PierError {
            #expect(error.code == .state)
        }
    }

    @Test("graceful shutdown lets an in-flight sync finish")
    func gracefulShutdown() async throws {
        let server = try await TestServer.start()
        defer { removeFolder(server.folder) }
        let credential = try await token("ana")
        let port = server.port
        let frame = try requestFrame(client: "a", changes: [upsert("c", "x", #"{"v":1}"#)])
        server.gate.arm()
        async let inFlight = onThread { try postFrame(port: port, frame, credential: credential) }
        #expect(try await wait(server.gate.entered))
        let stopping = Task { try await server.shutdown() }
        // The sync is still waiting at the gate while the server shuts down; let it go on.
        try await Task.sleep(for: .milliseconds(200))
        server.gate.open(waiting: 1)
        let answer = try await inFlight
        try await stopping.value
        #expect(answer.status == 200)
        guard case .syncResponse(let response) = try Frame.decode(answer.body) else { Issue.record("not a response"); return }
        #expect(response.results.first?.outcome == .applied)
        #expect(try server.sync.record("c", "x") != nil)
        let refused = try? await onThread { try get(port: port, "/v1/health") }
        #expect(refused == nil, "nothing listens after shutdown")
    }
}
