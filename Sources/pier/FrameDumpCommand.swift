import ArgumentParser
import PierWire
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `pier frame dump <file>`: prints one captured frame (a request body sent to
/// `POST /v1/sync`, a response, a golden fixture) in readable form, for debugging a sync.
struct FrameDump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print a captured frame in readable form.",
        discussion: """
            Prints the header, the message type and every change, result, record and conflict. \
            A frame that does not decode is reported with the fault PierWire found (exit status 1), \
            after whatever of it could be read. --json prints the format of \
            Tests/fixtures/wire/manifest.json.
            """
    )

    @Argument(help: "A file holding one frame.") var file: String

    @Flag(help: "Print JSON instead of text.") var json = false

    @Flag(help: "Print bodies in full (text output cuts them at 160 bytes).") var full = false

    @Option(help: "The largest frame to accept, in bytes.") var maxFrameBytes: Int = WireLimits.default.maxFrameBytes

    func run() throws {
        guard let bytes = readFile(file) else {
            throw ValidationError("cannot read \(file)")
        }
        var limits = WireLimits.default
        limits.maxFrameBytes = maxFrameBytes
        limits.maxPayloadBytes = max(limits.maxPayloadBytes, maxFrameBytes)
        let header: FrameHeader
        do {
            header = try FrameHeader.parse(bytes, limits: limits)
        } catch {
            return try fail("\(file): \(bytes.count) bytes, not a readable frame", error)
        }
        let message: Message
        do {
            message = try Frame.decode(bytes, limits: limits)
        } catch {
            if json {
                print(WireJSON.render(header))
            } else {
                print(describe(header, frameBytes: bytes.count))
            }
            return try fail("", error)
        }
        if json {
            print(WireJSON.render(message, header: header))
        } else {
            print(describe(header, frameBytes: bytes.count))
            print(describe(message))
        }
    }

    private func fail(_ context: String, _ error: WireError) throws {
        if !context.isEmpty { printToStandardError(context) }
        printToStandardError("error: \(error)")
        throw ExitCode.failure
    }

    private func printToStandardError(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    private func describe(_ h: FrameHeader, frameBytes: Int) -> String {
        var line = "frame   \(file): \(frameBytes) bytes\n"
        line += "header  PIER version \(h.version) (min reader \(h.minimumReaderVersion)), \(h.messageType.name), "
        line += "compression \(h.compression.name), payload \(h.payloadLength) bytes"
        if h.compression != .none {
            let percent = h.uncompressedLength == 0 ? 0 : Int(h.payloadLength) * 100 / Int(h.uncompressedLength)
            line += " (\(h.uncompressedLength) uncompressed, \(percent)%)"
        }
        line += ", crc32 0x\(String(h.checksum, radix: 16))"
        return line
    }

    private func describe(_ message: Message) -> String {
        var out: [String] = []
        switch message {
        case .syncRequest(let r):
            out.append("sync_request  client_id \(quoted(r.clientID))  batch_seq \(r.batchSeq)")
            if let pull = r.pull {
                let collections = pull.collections.isEmpty ? "all" : pull.collections.map(quoted).joined(separator: ", ")
                out.append("pull    cursor \(pull.cursor), max_records \(pull.maxRecords), max_bytes \(pull.maxBytes), collections \(collections)")
            } else {
                out.append("pull    none")
            }
            out.append("changes \(r.changes.count)")
            for (i, c) in r.changes.enumerated() {
                out.append("  [\(i)] \(c.op.name) \(quoted(c.collection))/\(quoted(c.id))  base_version \(c.baseVersion)  hlc \(hlc(c.hlc))  scope \(quoted(c.scope))")
                if !c.changedFields.isEmpty { out.append("      changed_fields \(c.changedFields.map(quoted).joined(separator: ", "))") }
                out.append("      body \(body(c.body))")
            }
        case .syncResponse(let r):
            out.append("sync_response  server_time \(r.serverTime)  cursor \(r.cursor)  has_more \(r.hasMore)")
            if r.resyncRequired || !r.resyncCollections.isEmpty {
                let collections = r.resyncCollections.isEmpty ? "all" : r.resyncCollections.map(quoted).joined(separator: ", ")
                out.append("resync  required \(r.resyncRequired), collections \(collections)")
            }
            out.append("results \(r.results.count)")
            for (i, x) in r.results.enumerated() {
                var line = "  [\(i)] change \(x.index): \(x.outcome.name)  version \(x.version)  server_hlc \(hlc(x.serverHLC))"
                if !x.reason.isEmpty { line += "  reason \(quoted(x.reason))" }
                if !x.conflictID.isEmpty { line += "  conflict \(quoted(x.conflictID))" }
                out.append(line)
                if x.body != nil { out.append("      body \(body(x.body))") }
            }
            out.append("records \(r.records.count)")
            for (i, x) in r.records.enumerated() {
                out.append("  [\(i)] \(quoted(x.collection))/\(quoted(x.id))  version \(x.version)  hlc \(hlc(x.hlc))  scope \(quoted(x.scope))\(x.deleted ? "  DELETED" : "")")
                out.append("      body \(body(x.body))")
            }
            out.append("conflicts \(r.conflicts.count)")
            for (i, x) in r.conflicts.enumerated() {
                out.append("  [\(i)] \(quoted(x.conflictID)) on \(quoted(x.collection))/\(quoted(x.id))  server_version \(x.serverVersion)  base_version \(x.baseVersion)")
                out.append("      local  \(body(x.localBody))")
                out.append("      server \(body(x.serverBody))")
                out.append("      base   \(body(x.baseBody))")
            }
        case .error(let e):
            out.append("error   code \(e.code)  message \(quoted(e.message))")
        }
        return out.joined(separator: "\n")
    }

    /// An HLC as raw value and as milliseconds.counter.
    private func hlc(_ value: Int64) -> String {
        "\(value) (\(value >> 16).\(value & 0xFFFF))"
    }

    private func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    private func body(_ bytes: WireBytes?) -> String {
        guard let bytes else { return "none" }
        let limit = full ? Int.max : 160
        if let text = bytes.utf8String {
            let scalars = Array(text.unicodeScalars)
            if bytes.count <= limit { return "(\(bytes.count) B) \(text)" }
            var cut = String.UnicodeScalarView()
            var size = 0
            for scalar in scalars {
                size += String(scalar).utf8.count
                if size > limit { break }
                cut.append(scalar)
            }
            return "(\(bytes.count) B) \(String(cut))…"
        }
        let hex = bytes.prefix(min(limit, bytes.count)).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        return "(\(bytes.count) B, not UTF-8) \(hex)\(bytes.count > limit ? "…" : "")"
    }

    private func readFile(_ path: String) -> [UInt8]? {
        guard let handle = fopen(path, "rb") else { return nil }
        defer { fclose(handle) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&chunk, 1, chunk.count, handle)
            if n <= 0 { break }
            out += chunk[0..<n]
            // Stop reading well past the limit: the decoder refuses it anyway.
            if out.count > maxFrameBytes + PierWire.headerSize { break }
        }
        return out
    }
}
