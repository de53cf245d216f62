import ArgumentParser
import Foundation
import Pier
import PierStore

#if canImport(Glibc)
import Glibc
#endif

/// `pier log`: query the business log of a master store.
struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Query a sync server's business log: every change it processed and what it decided.")

    @Option(help: "The master store: an SQLite master file or a postgres:// URL.") var store: String
    @Option(help: "Only this collection.") var collection: String?
    @Option(name: .customLong("record"), help: "Only this record id.") var recordID: String?
    @Option(name: .customLong("client"), help: "Only this client id.") var clientID: String?
    @Option(help: "Only this outcome: applied, merged, superseded, rejected, conflict.") var outcome: String?
    @Option(help: "Only entries at or after this server time (Unix ms).") var since: Int64?
    @Option(help: "Only entries before this server time (Unix ms).") var until: Int64?
    @Option(name: .customLong("after"), help: "Only entries after this sequence number (paging).") var afterSeq: Int64 = 0
    @Option(help: "At most this many entries.") var limit = 100
    @Flag(help: "Print JSON lines, one entry per line.") var json = false

    func run() throws {
        let filter = LogFilter(collection: collection, recordID: recordID, clientID: clientID, outcome: outcome,
                               since: since, until: until, afterSeq: afterSeq, limit: limit)
        if !store.contains("://"), access(store, F_OK) != 0 {
            throw failure(PierError(.notFound, "no master store at \(store)"))
        }
        let entries: [LogEntry]
        do {
            let master = try openMasterStore(store)
            entries = try master.read { (reader) throws(PierError) in try reader.log(filter) }
        } catch { throw failure(error) }
        if json {
            for entry in entries { print(entry.json.string) }
            return
        }
        let rows = [["seq", "time (UTC)", "user", "client", "op", "record", "outcome", "base", "new", "detail"]]
            + entries.map { e in
                [String(e.seq), utcTime(e.serverTime), e.user, String(e.clientID.prefix(13)), e.op, "\(e.collection)/\(e.recordID)",
                 e.outcome, String(e.baseVersion), String(e.newVersion), e.detail]
            }
        printTable(rows)
        if entries.count == limit, let last = entries.last {
            print("(more: --after \(last.seq))")
        }
    }
}

/// Prints rows as aligned columns; the first row is the header. Columns in
/// `rightAligned` (numbers) are padded on the left; the last left-aligned column is not
/// padded at all.
func printTable(_ rows: [[String]], rightAligned: Set<Int> = []) {
    guard let header = rows.first else { return }
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    for row in rows {
        let cells = row.enumerated().map { i, cell in
            let pad = String(repeating: " ", count: widths[i] - cell.count)
            if rightAligned.contains(i) { return pad + cell }
            return i == row.count - 1 ? cell : cell + pad
        }
        print(cells.joined(separator: "  "))
    }
}

/// Unix milliseconds as `2026-11-22 17:29:44.343` in UTC.
func utcTime(_ milliseconds: Int64) -> String {
    utcFormatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
}

/// One formatter for every row (making one is far dearer than using it).
nonisolated(unsafe) private let utcFormatter: DateFormatter = {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
    return formatter
}()
