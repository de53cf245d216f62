import ArgumentParser
import Foundation
import Pier
import PierStore

/// `pier sync`: sync a local store with a server over HTTP, showing progress.
struct SyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync a local store with a Pier server over HTTP(S): push pending changes, pull the rest.")

    @Argument(help: "Path of a Pier store (created if missing).") var path: String
    @OptionGroup var key: KeyOptions
    @Option(help: "The server's base URL, e.g. http://127.0.0.1:8080.") var url: String
    @Option(help: "A bearer token (JWT or API key). Prefer --token-file or PIER_TOKEN: arguments are visible to other users.")
    var token: String?
    @Option(help: "Read the bearer token from this file.") var tokenFile: String?
    @Option(help: "Retries on network errors, 429 and 5xx.") var retries = 4
    @Option(help: "Per-request timeout in seconds.") var timeout = 60
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "No progress line, even on a terminal.") var quiet = false

    func run() throws {
        var credential = token ?? ProcessInfo.processInfo.environment["PIER_TOKEN"]
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw ValidationError("cannot read \(tokenFile)")
            }
            credential = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var http = HTTPTransport.Configuration()
        http.timeoutMilliseconds = max(1, timeout) * 1000
        http.retry.maxAttempts = max(0, retries) + 1
        let showProgress = !quiet && isatty(2) != 0
        let db: Database
        var options = StoreOptions()
        try key.apply(to: &options)
        do { db = try Database(path: path, options: options) } catch { throw failure(error) }
        defer { db.close() }
        let report: SyncReport
        do throws(PierError) {
            report = try db.sync(url: url, token: credential, http: http, progress: { progress in
                guard showProgress else { return }
                let line = "  syncing: \(progress.roundTrips) round trips, pushed \(progress.pushed) (\(progress.pending) to go), "
                    + "pulled \(progress.pulled)\(progress.pulling ? ", more waiting" : "")"
                FileHandleStderr.write("\r" + line + "\u{1B}[K")
            })
        } catch {
            if showProgress { FileHandleStderr.write("\n") }
            throw failure(error)
        }
        if showProgress { FileHandleStderr.write("\r\u{1B}[K") }
        let ms = Double(report.durationNanoseconds) / 1e6
        if json {
            print("""
                {"pushed":\(report.pushed),"applied":\(report.applied),"merged":\(report.merged),"superseded":\(report.superseded),\
                "rejected":\(report.rejected),"conflicts":\(report.conflicts),"pulled":\(report.pulled),"round_trips":\(report.roundTrips),\
                "bytes_sent":\(report.bytesSent),"bytes_received":\(report.bytesReceived),"duration_ms":\(String(format: "%.1f", ms)),\
                "resynced":\(report.resynced)}
                """)
            return
        }
        print("pushed \(report.pushed) (applied \(report.applied), merged \(report.merged), superseded \(report.superseded), "
              + "rejected \(report.rejected)), pulled \(report.pulled), conflicts \(report.conflicts)")
        print("\(report.roundTrips) round trips, \(report.bytesSent) bytes sent, \(report.bytesReceived) received, "
              + String(format: "%.1f ms", ms))
        if report.conflicts > 0 {
            print("Conflicts wait for you: pier conflicts list \(path)")
        }
    }
}
