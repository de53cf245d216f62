// The payload layouts of the three messages (docs/PROTOCOL.md section 5).

extension Message {
    /// The message bytes (the payload before compression) in format `version`. Version 2
    /// writes a response's pulled records in layout 2 (docs/PROTOCOL.md section 5.4); the
    /// other messages are the same in both versions.
    public func encodedPayload(version: UInt8 = PierWire.formatVersion) throws(WireError) -> [UInt8] {
        guard version >= 1 && version <= PierWire.formatVersion else {
            throw WireError(.unsupportedVersion, "cannot write format version \(version); this writer knows 1 to \(PierWire.formatVersion)")
        }
        var w = ByteWriter(capacity: 256)
        switch self {
        case .syncRequest(let request):
            var changes = ChangeListWriter()
            for change in request.changes { changes.append(change) }
            writeRequestHead(&w, clientID: request.clientID, batchSeq: request.batchSeq, pull: request.pull)
            changes.columns.write(into: &w)
        case .syncResponse(let response):
            var results = ResultListWriter()
            for result in response.results { results.append(result) }
            var records = RecordListWriter(formatVersion: version)
            for record in response.records { records.append(record) }
            var conflicts = ConflictListWriter()
            for conflict in response.conflicts { conflicts.append(conflict) }
            writeResponseHead(
                &w, serverTime: response.serverTime, cursor: response.cursor, hasMore: response.hasMore,
                resyncRequired: response.resyncRequired, resyncCollections: response.resyncCollections,
                groupedRecords: records.grouped && records.count > 0
            )
            results.columns.write(into: &w)
            records.write(into: &w)
            conflicts.columns.write(into: &w)
        case .error(let error):
            w.uvarint(0)
            w.svarint(Int64(error.code))
            w.string(error.message)
        }
        guard w.count <= Int(UInt32.max) else {
            throw WireError(.limitExceeded, "message of \(w.count) bytes exceeds the format's 4 GiB limit")
        }
        return w.bytes
    }

    /// The oldest reader that can decode this message written in format `version`: 2 for
    /// a version-2 response with pulled records (layout 2), else 1.
    public func minimumReaderVersion(version: UInt8 = PierWire.formatVersion) -> UInt8 {
        if version >= 2, case .syncResponse(let response) = self, !response.records.isEmpty { return 2 }
        return 1
    }

    /// Decodes message bytes (a payload after decompression) of the given type, written in
    /// format `version`. Version 1 is decoded strictly; later versions that allow version-1
    /// readers are decoded tolerantly (docs/PROTOCOL.md section 6). Decoded bodies share
    /// the storage of `payload`.
    public static func decode(payload: [UInt8], type: MessageType, version: UInt8 = PierWire.formatVersion, limits: WireLimits = .default) throws(WireError) -> Message {
        try decode(storage: payload, offset: 0, count: payload.count, type: type, version: version, limits: limits)
    }

    /// Decodes message bytes; see `decode(payload:type:version:limits:)`. The bytes are
    /// copied once so that decoded bodies can share them.
    public static func decode(payload: UnsafeRawBufferPointer, type: MessageType, version: UInt8 = PierWire.formatVersion, limits: WireLimits = .default) throws(WireError) -> Message {
        guard payload.count <= limits.maxPayloadBytes else {
            throw WireError(.limitExceeded, "payload of \(payload.count) bytes exceeds the limit of \(limits.maxPayloadBytes)")
        }
        return try decode(payload: Array(payload), type: type, version: version, limits: limits)
    }

    /// Decodes the `count` payload bytes at `offset` in `storage`.
    static func decode(storage: [UInt8], offset: Int, count: Int, type: MessageType, version: UInt8, minimumReaderVersion: UInt8? = nil,
                       limits: WireLimits) throws(WireError) -> Message {
        guard count <= limits.maxPayloadBytes else {
            throw WireError(.limitExceeded, "payload of \(count) bytes exceeds the limit of \(limits.maxPayloadBytes)")
        }
        let context = DecodeContext(
            limits: limits, strict: version <= PierWire.formatVersion, version: min(version, PierWire.formatVersion),
            minimumReaderVersion: minimumReaderVersion ?? min(version, PierWire.formatVersion), storage: storage, payloadOffset: offset
        )
        return try withBytes(storage) { (all) throws(WireError) in
            var r = ByteReader(UnsafeRawBufferPointer(rebasing: all[offset..<offset + count]), name: type.name)
            let message: Message
            switch type {
            case .syncRequest: message = .syncRequest(try decodeRequest(&r, context))
            case .syncResponse: message = .syncResponse(try decodeResponse(&r, context))
            case .error: message = .error(try decodeError(&r, context))
            }
            if context.strict && !r.isAtEnd {
                throw r.fail(.trailingBytes, "\(r.remaining) bytes follow the end of the message")
            }
            return message
        }
    }
}

func writeRequestHead(_ w: inout ByteWriter, clientID: String, batchSeq: UInt64, pull: SyncRequest.PullRequest?) {
    w.uvarint(pull != nil ? 1 : 0)
    w.id(clientID)
    w.uvarint(batchSeq)
    if let pull {
        w.svarint(pull.cursor)
        w.uvarint(UInt64(pull.maxRecords))
        w.uvarint(UInt64(pull.maxBytes))
        writeStringList(&w, pull.collections)
    }
}

func writeResponseHead(_ w: inout ByteWriter, serverTime: Int64, cursor: Int64, hasMore: Bool, resyncRequired: Bool, resyncCollections: [String],
                       groupedRecords: Bool) {
    w.uvarint((hasMore ? 1 : 0) | (resyncRequired ? 2 : 0) | (groupedRecords ? 4 : 0))
    w.svarint(serverTime)
    w.svarint(cursor)
    writeStringList(&w, resyncCollections)
}

private func messageFlags(_ r: inout ByteReader, known: UInt64, _ context: DecodeContext) throws(WireError) -> UInt64 {
    let flags = try r.uvarint()
    if context.strict && flags & ~known != 0 {
        throw r.fail(.malformed, "reserved message flag bits set (0x\(String(flags, radix: 16)))")
    }
    return flags
}

private func decodeRequest(_ r: inout ByteReader, _ context: DecodeContext) throws(WireError) -> SyncRequest {
    let flags = try messageFlags(&r, known: 1, context)
    let clientID = try r.id(limits: context.limits, strict: context.strict)
    let batchSeq = try r.uvarint()
    var pull: SyncRequest.PullRequest? = nil
    if flags & 1 != 0 {
        let cursor = try r.svarint()
        let maxRecords = try r.uint32()
        let maxBytes = try r.uint32()
        let collections = try readStringList(&r, context)
        pull = SyncRequest.PullRequest(cursor: cursor, maxRecords: maxRecords, maxBytes: maxBytes, collections: collections)
    }
    let changes = try ChangeListWriter.decode(&r, context)
    return SyncRequest(clientID: clientID, batchSeq: batchSeq, changes: changes, pull: pull)
}

private func decodeResponse(_ r: inout ByteReader, _ context: DecodeContext) throws(WireError) -> SyncResponse {
    let flags = try messageFlags(&r, known: context.version >= 2 ? 7 : 3, context)
    // Bit 2 (version 2): the records are in layout 2, which a version-1 reader would misread.
    let grouped = context.version >= 2 && flags & 4 != 0
    if grouped && context.minimumReaderVersion < 2 {
        throw r.fail(.malformed, "records in layout 2 (flag bit 2) in a frame whose minimum reader version is \(context.minimumReaderVersion), not 2")
    }
    let serverTime = try r.svarint()
    let cursor = try r.svarint()
    let resyncCollections = try readStringList(&r, context)
    let results = try ResultListWriter.decode(&r, context)
    let records = try RecordListWriter.decode(&r, context, grouped: grouped)
    if context.strict && context.version >= 2 && grouped != !records.isEmpty {
        throw r.fail(.malformed, grouped ? "flag bit 2 (records in layout 2) set on an empty record list"
                                         : "version-2 response with records but without flag bit 2 (layout 2)")
    }
    let conflicts = try ConflictListWriter.decode(&r, context)
    return SyncResponse(
        serverTime: serverTime, results: results, records: records, cursor: cursor, hasMore: flags & 1 != 0,
        resyncRequired: flags & 2 != 0, resyncCollections: resyncCollections, conflicts: conflicts
    )
}

private func decodeError(_ r: inout ByteReader, _ context: DecodeContext) throws(WireError) -> ErrorMessage {
    _ = try messageFlags(&r, known: 0, context)
    let code = try r.int32()
    let message = try r.string(limits: context.limits)
    return ErrorMessage(code: code, message: message)
}
