/// A JSON rendering of frames and messages, for debugging tools (`pier frame dump --json`)
/// and the manifest of the golden frames (Tests/fixtures/wire/manifest.json).
///
/// Field names are those of docs/PROTOCOL.md. Bodies are rendered as JSON strings holding
/// their exact text, or as `{"hex": "..."}` when they are not valid UTF-8; 64-bit integers
/// are written in full (readers that parse JSON numbers as doubles lose precision above 2^53).
public enum WireJSON {
    /// Renders a message, and its frame header if given, as
    /// `{"header": {...}, "message": {...}}` (or just the message object without a header).
    public static func render(_ message: Message, header: FrameHeader? = nil, pretty: Bool = true) -> String {
        var out = ""
        let value: Value = header.map { .object([("header", headerValue($0)), ("message", messageValue(message))]) } ?? messageValue(message)
        value.write(into: &out, indent: pretty ? 0 : nil)
        return out
    }

    /// Renders a frame header alone.
    public static func render(_ header: FrameHeader, pretty: Bool = true) -> String {
        var out = ""
        headerValue(header).write(into: &out, indent: pretty ? 0 : nil)
        return out
    }

    static func headerValue(_ h: FrameHeader) -> Value {
        .object([
            ("version", .int(Int64(h.version))),
            ("min_reader_version", .int(Int64(h.minimumReaderVersion))),
            ("type", .string(h.messageType.name)),
            ("compression", .string(h.compression.name)),
            ("uncompressed_length", .int(Int64(h.uncompressedLength))),
            ("payload_length", .int(Int64(h.payloadLength))),
            ("crc32", .int(Int64(h.checksum))),
        ])
    }

    static func messageValue(_ message: Message) -> Value {
        switch message {
        case .syncRequest(let r):
            let pull: Value = r.pull.map { p in
                .object([
                    ("cursor", .int(p.cursor)), ("max_records", .int(Int64(p.maxRecords))),
                    ("max_bytes", .int(Int64(p.maxBytes))), ("collections", .array(p.collections.map(Value.string))),
                ])
            } ?? .null
            return .object([
                ("type", .string("sync_request")),
                ("client_id", .string(r.clientID)),
                ("batch_seq", .uint(r.batchSeq)),
                ("pull", pull),
                ("changes", .array(r.changes.map { c in
                    .object([
                        ("collection", .string(c.collection)), ("id", .string(c.id)), ("op", .string(c.op.name)),
                        ("base_version", .int(c.baseVersion)), ("hlc", .int(c.hlc)), ("scope", .string(c.scope)),
                        ("body", body(c.body)), ("changed_fields", .array(c.changedFields.map(Value.string))),
                    ])
                })),
            ])
        case .syncResponse(let r):
            return .object([
                ("type", .string("sync_response")),
                ("server_time", .int(r.serverTime)),
                ("cursor", .int(r.cursor)),
                ("has_more", .bool(r.hasMore)),
                ("resync_required", .bool(r.resyncRequired)),
                ("resync_collections", .array(r.resyncCollections.map(Value.string))),
                ("results", .array(r.results.map { x in
                    .object([
                        ("index", .int(Int64(x.index))), ("outcome", .string(x.outcome.name)), ("version", .int(x.version)),
                        ("body", body(x.body)), ("reason", .string(x.reason)), ("conflict_id", .string(x.conflictID)),
                        ("server_hlc", .int(x.serverHLC)),
                    ])
                })),
                ("records", .array(r.records.map { x in
                    .object([
                        ("collection", .string(x.collection)), ("id", .string(x.id)), ("version", .int(x.version)),
                        ("scope", .string(x.scope)), ("hlc", .int(x.hlc)), ("deleted", .bool(x.deleted)), ("body", body(x.body)),
                    ])
                })),
                ("conflicts", .array(r.conflicts.map { x in
                    .object([
                        ("conflict_id", .string(x.conflictID)), ("collection", .string(x.collection)), ("id", .string(x.id)),
                        ("server_version", .int(x.serverVersion)), ("base_version", .int(x.baseVersion)),
                        ("local_body", body(x.localBody)), ("server_body", body(x.serverBody)), ("base_body", body(x.baseBody)),
                    ])
                })),
            ])
        case .error(let e):
            return .object([("type", .string("error")), ("code", .int(Int64(e.code))), ("message", .string(e.message))])
        }
    }

    static func body(_ bytes: WireBytes?) -> Value {
        guard let bytes else { return .null }
        if let text = bytes.utf8String { return .string(text) }
        return .object([("hex", .string(bytes.map(hexByte).joined()))])
    }

    indirect enum Value {
        case null
        case bool(Bool)
        case int(Int64)
        case uint(UInt64)
        case string(String)
        case array([Value])
        case object([(String, Value)])

        /// Writes JSON; `indent` nil means compact, otherwise the current nesting level.
        func write(into out: inout String, indent: Int?) {
            switch self {
            case .null: out += "null"
            case .bool(let b): out += b ? "true" : "false"
            case .int(let i): out += String(i)
            case .uint(let u): out += String(u)
            case .string(let s): Value.quote(s, into: &out)
            case .array(let items):
                if items.isEmpty { out += "[]"; return }
                let scalars = items.allSatisfy { if case .object = $0 { return false }; if case .array = $0 { return false }; return true }
                out += "["
                for (i, item) in items.enumerated() {
                    if i > 0 { out += indent == nil || scalars ? (indent == nil ? "," : ", ") : "," }
                    if let indent, !scalars { Value.newline(&out, indent + 1) }
                    item.write(into: &out, indent: indent.map { $0 + 1 })
                }
                if let indent, !scalars { Value.newline(&out, indent) }
                out += "]"
            case .object(let fields):
                if fields.isEmpty { out += "{}"; return }
                out += "{"
                for (i, (key, value)) in fields.enumerated() {
                    if i > 0 { out += "," }
                    if let indent { Value.newline(&out, indent + 1) }
                    Value.quote(key, into: &out)
                    out += indent == nil ? ":" : ": "
                    value.write(into: &out, indent: indent.map { $0 + 1 })
                }
                if let indent { Value.newline(&out, indent) }
                out += "}"
            }
        }

        static func newline(_ out: inout String, _ level: Int) {
            out += "\n"
            out += String(repeating: "  ", count: level)
        }

        static func quote(_ s: String, into out: inout String) {
            out += "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 || scalar.value == 0x7F {
                        let h = hexByte(UInt8(scalar.value))
                        out += "\\u00\(h)"
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            out += "\""
        }
    }
}
