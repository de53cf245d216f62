import Foundation
import Logging
import Pier
@testable import PierHTTP
import PierWire
import Synchronization
import Testing

/// Keeps every log event, for tests that read the server's log lines.
final class LogCapture: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    let entries = Mutex<[Entry]>([])

    var logger: Logger {
        Logger(label: "pier.http.test") { _ in Handler(capture: self) }
    }

    func find(_ message: String) -> [Entry] { entries.withLock { $0.filter { $0.message == message } } }

    struct Handler: LogHandler {
        let capture: LogCapture
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var fields: [String: String] = [:]
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = "\(value)" }
            capture.entries.withLock { $0.append(Entry(level: event.level, message: "\(event.message)", metadata: fields)) }
        }
    }
}

@Suite("Structured logs")
struct LogTests {
    @Test("one line per sync with user, client, changes, outcome counts and duration; auth failures log their reason only")
    func syncAndAuthLines() async throws {
        let capture = LogCapture()
        let server = try await TestServer.start(logger: capture.logger)
        let credential = try await token("ana", write: ["north"])
        let expired = try await token("ana", ttl: -30)
        let port = server.port
        let frame = try requestFrame(client: "dev-1", changes: [upsert("c", "a", "{}"), upsert("c", "b", "{}", scope: "south")],
                                     pull: .init(cursor: 0))
        let (ok, refused) = try await onThread {
            (try postFrame(port: port, frame, credential: credential), try postFrame(port: port, frame, credential: expired))
        }
        #expect(ok.status == 200 && refused.status == 401)
        try await server.stop()

        let syncs = capture.find("sync")
        #expect(syncs.count == 1)
        let line = try #require(syncs.first)
        #expect(line.level == .info)
        #expect(line.metadata["user"] == "ana")
        #expect(line.metadata["client_id"] == "dev-1")
        #expect(line.metadata["changes"] == "2")
        #expect(line.metadata["applied"] == "1")
        #expect(line.metadata["rejected"] == "1")
        #expect(line.metadata["status"] == "200")
        #expect(line.metadata["duration_ms"] != nil)

        let failures = capture.find("authentication failed")
        #expect(failures.count == 1)
        #expect(failures.first?.metadata["reason"]?.contains("expired") == true)
        #expect(refused.errorFrame?.message == "invalid credentials", "the reason stays in the log")
    }
}
