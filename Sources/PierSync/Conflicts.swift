public import PierStore

/// Listing and resolving the conflicts waiting on this device.
public enum Conflicts {
    /// Conflicts in the order they arrived.
    public static func list(_ store: Store, limit: Int = 1000) throws(PierError) -> [LocalConflict] {
        try store.syncRead { (c: Connection) throws(PierError) -> [LocalConflict] in
            let q = try c.prepare("""
                SELECT conflict_id, collection, id, local_body, server_body, base_body, local_deleted, server_deleted,
                       base_version, server_version FROM pier_conflicts ORDER BY created_at, conflict_id LIMIT ?1
                """)
            q.bind(1, Int64(max(0, limit)))
            var out: [LocalConflict] = []
            while try q.step() {
                out.append(LocalConflict(conflictID: q.string(0) ?? "", collection: q.string(1) ?? "", id: q.string(2) ?? "",
                                         localBody: q.string(3), serverBody: q.string(4), baseBody: q.string(5),
                                         localDeleted: q.int64(6) != 0, serverDeleted: q.int64(7) != 0,
                                         baseVersion: q.int64(8), serverVersion: q.int64(9)))
            }
            return out
        }
    }

    /// Settles a conflict. Keeping the local version or a merged body makes a new local
    /// write based on the server's version, which the next sync pushes; keeping the
    /// server's version makes the record synced.
    public static func resolve(_ store: Store, conflictID: String, _ resolution: Resolution) throws(PierError) {
        if case .merged(let body) = resolution {
            let problem = try withUTF8Bytes(body) { (bytes) throws(PierError) in JSONValidator.objectProblem(bytes) }
            if let problem { throw PierError(.invalid, "the merged body is not a valid JSON object (\(problem))") }
        }
        try store.syncWrite { (c: Connection) throws(PierError) in
            let q = try c.prepare("SELECT collection, id, server_body, server_deleted, server_version FROM pier_conflicts WHERE conflict_id = ?1")
            q.bind(1, conflictID)
            guard try q.step() else { throw PierError(.notFound, "no conflict \(conflictID.debugDescription); list conflicts to see their ids") }
            let collection = q.string(0) ?? "", id = q.string(1) ?? ""
            let serverBody = q.string(2)
            let serverDeleted = q.int64(3) != 0
            let serverVersion = q.int64(4)
            q.reset()
            let (hlc, seq) = store.stamp()
            let diff = "CASE WHEN ?3 IS NULL OR is_active = 0 THEN NULL ELSE \(ChangedFields.sql(new: "pier_records.body", base: "?3")) END"
            let update: Statement
            switch resolution {
            case .keepServer:
                // Take the server's copy, and tell the server (an unchanged write, or a delete
                // of a deleted record) so that it settles its side of the conflict too.
                update = try c.prepare("""
                    UPDATE pier_records SET body = coalesce(?3, body), is_active = ?6, is_modified = 1, sync_state = 1,
                        is_from_server = 1, base_version = ?4, server_version = ?4, server_body = ?3,
                        changed_fields = CASE WHEN ?3 IS NULL THEN NULL ELSE '[]' END, hlc = ?5, local_seq = ?7
                    WHERE collection = ?1 AND id = ?2
                    """)
                update.bind(3, serverDeleted ? nil : serverBody)
                update.bind(4, serverVersion)
                update.bind(5, hlc.rawValue)
                update.bind(6, Int64(serverDeleted ? 0 : 1))
                update.bind(7, seq)
            case .keepLocal, .merged:
                var bodySQL = "body"
                if case .merged = resolution { bodySQL = "?7" }
                update = try c.prepare("""
                    UPDATE pier_records SET body = \(bodySQL), is_active = CASE WHEN ?8 THEN 1 ELSE is_active END,
                        is_modified = 1, sync_state = 1, is_from_server = ?6,
                        base_version = ?4, server_version = ?4, server_body = ?3, hlc = ?5, local_seq = ?9,
                        changed_fields = \(diff)
                    WHERE collection = ?1 AND id = ?2
                    """)
                update.bind(3, serverDeleted ? nil : serverBody)
                update.bind(4, serverVersion)
                update.bind(5, hlc.rawValue)
                update.bind(6, Int64(serverDeleted ? 0 : 1))
                if case .merged(let body) = resolution {
                    update.bind(7, body)
                    update.bind(8, Int64(1))
                } else {
                    update.bind(8, Int64(0))
                }
                update.bind(9, seq)
            }
            update.bind(1, collection)
            update.bind(2, id)
            do throws(PierError) { try update.run() } catch {
                if error.message.contains("JSON") || error.message.contains("CHECK") {
                    throw PierError(.invalid, "the merged body is not a valid JSON object", underlying: error.message)
                }
                throw error
            }
            let remove = try c.prepare("DELETE FROM pier_conflicts WHERE conflict_id = ?1")
            remove.bind(1, conflictID)
            try remove.run()
        }
    }
}

extension LocalConflict {
    public var json: JSONWriter {
        var out = JSONWriter()
        func body(_ text: String?) { if let text { out.rawJSON(text) } else { out.null() } }
        out.raw("{"); out.key("conflict_id"); out.string(conflictID)
        out.raw(","); out.key("collection"); out.string(collection)
        out.raw(","); out.key("id"); out.string(id)
        out.raw(","); out.key("local_body"); body(localBody)
        out.raw(","); out.key("server_body"); body(serverBody)
        out.raw(","); out.key("base_body"); body(baseBody)
        out.raw(","); out.key("local_deleted"); out.bool(localDeleted)
        out.raw(","); out.key("server_deleted"); out.bool(serverDeleted)
        out.raw(","); out.key("base_version"); out.number(baseVersion)
        out.raw(","); out.key("server_version"); out.number(serverVersion)
        out.raw("}")
        return out
    }
}
