import ArgumentParser
import Foundation
import Pier
import PierServer
import PierStore

/// `pier conflicts`: the conflicts waiting on a device, shown with the local and server
/// copies side by side, and their resolution.
struct ConflictsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts",
        abstract: "List the conflicts waiting in a local store, or resolve one.",
        subcommands: [List.self, Resolve.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each conflict with this device's copy and the server's side by side, field by field.")

        @Argument(help: "Path of a Pier store.") var path: String
        @OptionGroup var key: KeyOptions
        @Flag(help: "Print JSON (the same objects pier_db_conflicts returns).") var json = false

        func run() throws {
            let db = try openStore(path, readOnly: true, key: key)
            defer { db.close() }
            let conflicts: [LocalConflict]
            do { conflicts = try db.conflicts() } catch { throw failure(error) }
            if json {
                print("[" + conflicts.map(\.json.string).joined(separator: ",") + "]")
                return
            }
            if conflicts.isEmpty {
                print("No conflicts in \(path).")
                return
            }
            print("\(conflicts.count) conflict\(conflicts.count == 1 ? "" : "s") in \(path):")
            for conflict in conflicts { print(""); print(SideBySide(conflict).render()) }
            print("")
            print("Resolve with: pier conflicts resolve \(path) <conflict-id> --keep local|server, or --merged '<json>'")
        }
    }

    struct Resolve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Settle a conflict: keep this device's copy, take the server's, or give a merged body. The next sync pushes it.")

        enum Side: String, ExpressibleByArgument { case local, server }

        @Argument(help: "Path of a Pier store.") var path: String
        @OptionGroup var key: KeyOptions
        @Argument(help: "The conflict's id (from `pier conflicts list`).") var conflictID: String
        @Option(help: "Which copy to keep: local or server.") var keep: Side?
        @Option(help: "A merged JSON object to keep instead (or @FILE to read it from a file).") var merged: String?

        func validate() throws {
            if (keep == nil) == (merged == nil) { throw ValidationError("give exactly one of --keep local|server or --merged JSON") }
        }

        func run() throws {
            let resolution: Resolution
            switch (keep, merged) {
            case (.local?, _): resolution = .keepLocal
            case (.server?, _): resolution = .keepServer
            case (nil, let body?):
                if body.hasPrefix("@") {
                    guard let text = try? String(contentsOfFile: String(body.dropFirst()), encoding: .utf8) else {
                        throw ValidationError("cannot read \(body.dropFirst())")
                    }
                    resolution = .merged(text)
                } else {
                    resolution = .merged(body)
                }
            default: throw ValidationError("give --keep or --merged")
            }
            let db = try openStore(path, readOnly: false, key: key)
            defer { db.close() }
            do { try db.resolve(conflictID, resolution) } catch { throw failure(error) }
            print("Resolved \(conflictID); the next sync pushes the result.")
        }
    }
}

func openStore(_ path: String, readOnly: Bool, key: KeyOptions) throws -> Database {
    guard FileManager.default.fileExists(atPath: path) else {
        throw failure(PierError(.notFound, "no store at \(path)"))
    }
    var options = StoreOptions()
    options.readOnly = readOnly
    try key.apply(to: &options)
    do { return try Database(path: path, options: options) } catch { throw failure(error) }
}

/// One conflict as a table: a row per top-level field, this device's value beside the
/// server's, differing rows marked.
struct SideBySide {
    let conflict: LocalConflict

    init(_ conflict: LocalConflict) { self.conflict = conflict }

    func render(width: Int = 34) -> String {
        let c = conflict
        var lines = ["● \(c.collection)/\(c.id)   conflict \(c.conflictID)",
                     "  base version \(c.baseVersion), server version \(c.serverVersion)"]
        let local = c.localDeleted ? nil : Self.fields(c.localBody)
        let server = c.serverDeleted ? nil : Self.fields(c.serverBody)
        let base = Self.fields(c.baseBody)
        var names: [String] = []
        for source in [base, local, server] {
            for (name, _) in source ?? [] where !names.contains(name) { names.append(name) }
        }
        let nameWidth = max(5, names.map(\.count).max() ?? 0)
        func cell(_ text: String) -> String {
            let clipped = text.count > width ? String(text.prefix(width - 1)) + "…" : text
            return clipped + String(repeating: " ", count: max(0, width - clipped.count))
        }
        func pad(_ text: String) -> String { text + String(repeating: " ", count: max(0, nameWidth - text.count)) }
        lines.append("    " + pad("field") + "  " + cell("this device") + "  " + "server")
        if local == nil || server == nil {
            lines.append("    " + pad("") + "  " + cell(local == nil ? "(deleted here)" : "") + "  " + (server == nil ? "(deleted on the server)" : ""))
        }
        for name in names {
            let l = local.map { Self.lookup($0, name) ?? "—" } ?? ""
            let s = server.map { Self.lookup($0, name) ?? "—" } ?? ""
            let mark = l != s ? "≠ " : "  "
            lines.append("  " + mark + pad(name) + "  " + cell(l) + "  " + s)
        }
        return lines.joined(separator: "\n")
    }

    static func lookup(_ fields: [(String, String)], _ name: String) -> String? {
        fields.first { $0.0 == name }?.1
    }

    /// The top-level fields of a JSON object body in their stored order: a string value
    /// unquoted, any other value as its JSON text.
    static func fields(_ body: String?) -> [(String, String)]? {
        guard let body, let object = try? JSONObject(parsing: Array(body.utf8)) else { return nil }
        return object.members.map { member in (member.key, member.stringValue ?? String(decoding: member.value, as: UTF8.self)) }
    }
}
