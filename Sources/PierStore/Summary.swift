/// JSON renderings of store state, shared by the C API (`pier_db_info`,
/// `pier_db_metadata`) and the `pier inspect` command.
extension RecordMetadata {
    public var json: JSONWriter {
        var out = JSONWriter()
        out.raw("{"); out.key("collection"); out.string(collection)
        out.raw(","); out.key("id"); out.string(id)
        out.raw(","); out.key("body"); if let body { out.rawJSON(body) } else { out.null() }
        out.raw(","); out.key("scope"); out.string(scope)
        out.raw(","); out.key("is_from_server"); out.bool(isFromServer)
        out.raw(","); out.key("is_modified"); out.bool(isModified)
        out.raw(","); out.key("is_active"); out.bool(isActive)
        out.raw(","); out.key("base_version"); out.number(baseVersion)
        out.raw(","); out.key("hlc"); out.number(hlc.rawValue)
        out.raw(","); out.key("local_seq"); out.number(localSeq)
        out.raw(","); out.key("changed_fields"); if let changedFields { out.rawJSON(changedFields) } else { out.null() }
        out.raw(","); out.key("server_body"); if let serverBody { out.rawJSON(serverBody) } else { out.null() }
        out.raw(","); out.key("server_version"); out.number(serverVersion)
        out.raw(","); out.key("sync_state"); out.string(syncState.description)
        out.raw("}")
        return out
    }
}

extension Store {
    /// The store summary as JSON: what `pier inspect --json` prints.
    public func summaryJSON() throws(PierError) -> JSONWriter {
        let collections = try collections()
        var out = JSONWriter()
        out.raw("{"); out.key("path"); out.string(path)
        out.raw(","); out.key("schema_version"); out.number(Int64(try schemaVersion()))
        out.raw(","); out.key("client_id"); out.string(clientID)
        out.raw(","); out.key("pull_cursor"); out.number(try pullCursor())
        out.raw(","); out.key("pending"); out.number(collections.reduce(0) { $0 + $1.pending })
        out.raw(","); out.key("conflicts"); out.number(collections.reduce(0) { $0 + $1.conflicts })
        out.raw(","); out.key("collections"); out.raw("[")
        for (index, c) in collections.enumerated() {
            if index > 0 { out.raw(",") }
            out.raw("{"); out.key("name"); out.string(c.name)
            out.raw(","); out.key("records"); out.number(c.records)
            out.raw(","); out.key("pending"); out.number(c.pending)
            out.raw(","); out.key("conflicts"); out.number(c.conflicts)
            out.raw(","); out.key("tombstones"); out.number(c.tombstones)
            out.raw("}")
        }
        out.raw("]}")
        return out
    }
}
