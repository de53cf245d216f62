import ArgumentParser
import Pier
import PierStore

/// `pier inspect <db>`: what is in a local store and what is waiting to sync.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a store's collections, record counts, pending changes, conflicts, client id and cursor.")

    @Argument(help: "Path of a Pier store.") var path: String
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        var options = StoreOptions()
        options.readOnly = true
        let store: Store
        do { store = try Store(path: path, options: options) } catch { throw failure(error) }
        defer { store.close() }
        do {
            if json {
                print(try store.summaryJSON().string)
                return
            }
            let collections = try store.collections()
            print("store          \(path)")
            print("schema version \(try store.schemaVersion())")
            print("client id      \(store.clientID)")
            print("pull cursor    \(try store.pullCursor())")
            print("pending        \(collections.reduce(0) { $0 + $1.pending })")
            print("conflicts      \(collections.reduce(0) { $0 + $1.conflicts })")
            print("")
            let header = ["collection", "records", "pending", "conflicts", "tombstones"]
            var rows = [header]
            for c in collections {
                rows.append([c.name, String(c.records), String(c.pending), String(c.conflicts), String(c.tombstones)])
            }
            if collections.isEmpty { rows.append(["(none)", "", "", "", ""]) }
            printTable(rows, rightAligned: [1, 2, 3, 4])
        } catch { throw failure(error) }
    }
}
