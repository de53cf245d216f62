// The golden frames of Tests/fixtures/wire/: the values they hold, and small file helpers
// (no Foundation). Regenerate the files after an intentional format change with
//   PIER_WIRE_REGENERATE=1 swift test --filter PierWireTests
// and review the diff: a changed golden frame is a wire-format change.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PierWire

enum Fixtures {
    /// Tests/fixtures/wire, found from this file's path.
    static let directory: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2) // PierWireTests/Fixtures.swift
        return parts.joined(separator: "/") + "/fixtures/wire"
    }()

    static func path(_ name: String) -> String { directory + "/" + name }

    static func read(_ name: String) -> [UInt8]? {
        guard let file = fopen(path(name), "rb") else { return nil }
        defer { fclose(file) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    static func write(_ name: String, _ bytes: [UInt8]) {
        guard let file = fopen(path(name), "wb") else { fatalError("cannot write \(path(name))") }
        defer { fclose(file) }
        _ = fwrite(bytes, 1, bytes.count, file)
    }

    static var regenerate: Bool { getenv("PIER_WIRE_REGENERATE") != nil }

    static var deflateLibrary: String { PierWire.deflateLibrary }

    /// One golden frame: its file, the value, and the options it was written with.
    struct Golden {
        var file: String
        var note: String
        var message: Message
        var options: EncodeOptions
    }

    static let clientID = "0190f3a2-7c1d-7e4f-9a0b-1c2d3e4f5a6b"

    static func compressedChange(_ i: Int) -> SyncRequest.Change {
        let status = ["open", "done", "cancelled"][i % 3]
        let body = "{\"status\":\"\(status)\",\"count\":\(i * i),\"note\":\"entry \(i)\"}"
        let hlc: Int64 = (1_750_000_001_000 + Int64(i) * 37) << 16
        return SyncRequest.Change(
            collection: i % 3 == 0 ? "jobs" : "customers", id: "0190f3a2-9000-7000-8000-0000000000\(10 + i)",
            op: .upsert, baseVersion: Int64(100 + i), hlc: hlc, scope: "team-\(i % 2)", body: WireBytes(body)
        )
    }

    static func compressedRecord(_ i: Int) -> SyncResponse.PulledRecord {
        let collection = ["customers", "jobs", "parts"][i % 3]
        let deleted = i % 10 == 9
        let body = "{\"n\":\(i),\"label\":\"record number \(i)\",\"ok\":\(i % 2 == 0)}"
        let hlc: Int64 = (1_750_000_000_000 - Int64(i) * 1000) << 16 | Int64(i % 3)
        return SyncResponse.PulledRecord(
            collection: collection, id: "0190f3a2-b000-7000-8000-0000000001\(10 + i)", version: Int64(2000 + i * 3),
            scope: "team-\(i % 4)", hlc: hlc, deleted: deleted, body: deleted ? nil : WireBytes(body)
        )
    }

    /// Format version 1, uncompressed and deflate level 6: the frames of version 1 stay as they were written.
    static let plain1 = EncodeOptions(compressionLevel: 0, formatVersion: 1)
    static let deflate1 = EncodeOptions(compressionLevel: 6, formatVersion: 1)
    /// Format version 2.
    static let plain2 = EncodeOptions(compressionLevel: 0, formatVersion: 2)
    static let deflate2 = EncodeOptions(compressionLevel: 6, formatVersion: 2)

    static let fullResponse = Message.syncResponse(SyncResponse(
                serverTime: 1_750_000_003_000,
                results: [
                    .init(index: 0, outcome: .applied, version: 1001, serverHLC: 1_750_000_000_000 << 16),
                    .init(index: 1, outcome: .merged, version: 1002, body: WireBytes("{\"phone\":\"+49 221 123\",\"city\":\"Köln\"}"), serverHLC: 1_750_000_000_000 << 16 | 1),
                    .init(index: 2, outcome: .superseded, version: 990, body: WireBytes("{\"status\":\"cancelled\"}"), serverHLC: 1_750_000_009_000 << 16),
                    .init(index: 4, outcome: .rejected, version: 77, body: WireBytes("{\"name\":\"locked\"}"), reason: "first_write_wins", serverHLC: 5),
                    .init(index: 5, outcome: .rejected, version: 0, reason: "forbidden"),
                    .init(index: 6, outcome: .conflict, version: 500, body: WireBytes("{\"qty\":3}"), conflictID: "0190f3a2-a000-7000-8000-000000000001", serverHLC: -1),
                    .init(index: 3, outcome: .rejected, version: 12, reason: "stale", conflictID: "c-1"),
                ],
                records: [
                    .init(collection: "customers", id: "0190f3a2-8000-7000-8000-000000000001", version: 1001, scope: "team-1", hlc: 1_750_000_000_000 << 16, body: WireBytes("{\"name\":\"Jürgen Müller\"}")),
                    .init(collection: "jobs", id: "job-17", version: 1003, scope: "team-2", hlc: 1_749_999_000_000 << 16, deleted: true),
                    .init(collection: "customers", id: "顧客-3", version: 1004, scope: "team-1", hlc: 1_750_000_000_000 << 16 | 2, body: WireBytes("{}")),
                    .init(collection: "parts", id: "0190f3a2-8000-7000-8000-000000000009", version: 1010, scope: "", hlc: 0, deleted: true, body: WireBytes("{\"last\":true}")),
                ],
                cursor: 1010, hasMore: true, resyncRequired: true, resyncCollections: ["parts", "jobs"],
                conflicts: [
                    .init(
                        conflictID: "0190f3a2-a000-7000-8000-000000000001", collection: "orders", id: "order-9", serverVersion: 500, baseVersion: 450,
                        localBody: WireBytes("{\"qty\":5}"), serverBody: WireBytes("{\"qty\":3}"), baseBody: WireBytes("{\"qty\":1}")
                    ),
                    .init(conflictID: "k2", collection: "orders", id: "order-10", serverVersion: 501, baseVersion: 0, localBody: WireBytes("{\"status\":\"completed\"}"), serverBody: nil, baseBody: nil),
                    .init(conflictID: "k3", collection: "notes", id: "n", serverVersion: 9, baseVersion: 8, localBody: nil, serverBody: WireBytes("{\"t\":\"ü\"}"), baseBody: nil),
                ]
            ))

    static let goldens: [Golden] = [
        Golden(
            file: "request-minimal.bin", note: "sync_request, no changes, no pull; client id in text form (not a UUID)",
            message: .syncRequest(SyncRequest(clientID: "device-1", batchSeq: 0)), options: plain1
        ),
        Golden(
            file: "request-push-pull.bin",
            note: "sync_request: upsert, patch with changed fields, delete without body, unicode, pull with collections",
            message: .syncRequest(SyncRequest(
                clientID: clientID, batchSeq: 7,
                changes: [
                    .init(
                        collection: "customers", id: "0190f3a2-8000-7000-8000-000000000001", op: .upsert, baseVersion: 0,
                        hlc: 1_750_000_000_000 << 16, scope: "team-1",
                        body: WireBytes("{\"name\":\"Jürgen Müller\",\"city\":\"Köln\",\"note\":\"☕ 顧客\"}")
                    ),
                    .init(
                        collection: "customers", id: "kunde-müller-2", op: .patch, baseVersion: 41,
                        hlc: 1_750_000_000_000 << 16 | 1, scope: "team-1", body: WireBytes("{\"phone\":\"+49 221 123\"}"),
                        changedFields: ["phone"]
                    ),
                    .init(
                        collection: "jobs", id: "0190F3A2-8000-7000-8000-000000000003", op: .delete, baseVersion: 12,
                        hlc: 1_750_000_000_005 << 16, scope: "team-2", body: nil, changedFields: []
                    ),
                ],
                pull: .init(cursor: 1234, maxRecords: 1000, maxBytes: 1 << 20, collections: ["customers", "jobs", "顧客"])
            )),
            options: plain1
        ),
        Golden(
            file: "request-edge-values.bin",
            note: "sync_request: extreme integers, empty strings, empty (present) body vs absent body, empty pull",
            message: .syncRequest(SyncRequest(
                clientID: "", batchSeq: .max,
                changes: [
                    .init(collection: "", id: "", op: .upsert, baseVersion: .min, hlc: .max, scope: "", body: WireBytes([]), changedFields: ["", "a", ""]),
                    .init(collection: "c", id: "x", op: .patch, baseVersion: .max, hlc: .min, scope: "", body: nil, changedFields: ["a"]),
                    .init(collection: "c", id: "00000000-0000-0000-0000-000000000000", op: .delete, baseVersion: -1, hlc: 0, scope: "s", body: WireBytes("{}")),
                ],
                pull: .init(cursor: -1, maxRecords: .max, maxBytes: 0, collections: [])
            )),
            options: plain1
        ),
        Golden(
            file: "request-compressed.bin", note: "sync_request with 40 upserts, deflate-compressed",
            message: .syncRequest(SyncRequest(
                clientID: clientID, batchSeq: 8,
                changes: (0..<40).map(compressedChange),
                pull: .init(cursor: 5000)
            )),
            options: deflate1
        ),
        Golden(
            file: "response-empty.bin", note: "sync_response with no results, records or conflicts",
            message: .syncResponse(SyncResponse(serverTime: 1_750_000_002_000, cursor: 0)), options: plain1
        ),
        Golden(
            file: "response-full.bin",
            note: "sync_response: every outcome, tombstones, conflicts with every body combination, resync, has_more",
            message: fullResponse,
            options: plain1
        ),
        Golden(
            file: "response-compressed.bin", note: "sync_response pull page of 50 records, deflate-compressed",
            message: .syncResponse(SyncResponse(
                serverTime: 1_750_000_004_000,
                records: (0..<50).map(compressedRecord),
                cursor: 2147, hasMore: false
            )),
            options: deflate1
        ),
        Golden(
            file: "error.bin", note: "error message",
            message: .error(ErrorMessage(code: -17, message: "token expired: sign in again (Anmeldung abgelaufen)")), options: plain1
        ),
        Golden(
            file: "error-compressed.bin", note: "error message with a long repetitive text, deflate-compressed",
            message: .error(ErrorMessage(code: -19, message: String(repeating: "batch too large; ", count: 20) + "limit is 1 MiB")), options: deflate1
        ),
        Golden(
            file: "request-push-pull-v2.bin",
            note: "format version 2 sync_request (the layout of version 1, minimum reader version 1): one upsert and a pull",
            message: .syncRequest(SyncRequest(
                clientID: clientID, batchSeq: 9, changes: [compressedChange(1)], pull: .init(cursor: 77, collections: ["jobs"])
            )),
            options: plain2
        ),
        Golden(
            file: "response-empty-v2.bin", note: "format version 2 sync_response without records: minimum reader version 1, no flag bit 2",
            message: .syncResponse(SyncResponse(serverTime: 1_750_000_005_000, results: [.init(index: 0, outcome: .applied, version: 3, serverHLC: 9)], cursor: 4)),
            options: plain2
        ),
        Golden(
            file: "response-full-v2.bin",
            note: "the values of response-full.bin in format version 2: records in layout 2 (UUID and HLC byte planes, bodies grouped by collection)",
            message: fullResponse,
            options: plain2
        ),
        Golden(
            file: "response-compressed-v2.bin", note: "the pull page of response-compressed.bin in format version 2, deflate-compressed",
            message: .syncResponse(SyncResponse(
                serverTime: 1_750_000_004_000,
                records: (0..<50).map(compressedRecord),
                cursor: 2147, hasMore: false
            )),
            options: deflate2
        ),
    ]

    /// A frame written by a hypothetical format version 3 that version-1 readers may read
    /// (minimum reader version 1): it sets an unknown message flag bit, adds a ninth column
    /// to the records list (layout 1) and a field after the last one. Decoders of versions 1
    /// and 2 skip all three; the file pins that behaviour. It is built by hand, not by the encoder.
    static func futureFrame() -> [UInt8] {
        var p: [UInt8] = []
        p += [0x08 | 0x01]                       // flags: has_more (bit 0) + unknown bit 3
        p += [0x80, 0x01]                        // server_time 64 (zigzag 128)
        p += [0x14]                              // cursor 10
        p += [0x00]                              // resync_collections: 0
        p += [0x00]                              // results: 0
        p += [0x01, 0x09]                        // records: 1 item, 9 columns
        p += [0x01, 0x02]                        // flags column: body present
        p += [0x02, 0x02, 0x6A]                  // collection column: literal "j"
        p += [0x02, 0x02, 0x31]                  // id column: text "1"
        p += [0x01, 0x00]                        // scope column: literal ""
        p += [0x01, 0x14]                        // version column: +10
        p += [0x01, 0x02]                        // hlc column: +1
        p += [0x01, 0x02]                        // body_length column: 2
        p += [0x02, 0x7B, 0x7D]                  // body column: "{}"
        p += [0x03, 0xAA, 0xBB, 0xCC]            // column 9, unknown to versions 1-2: skipped
        p += [0x00]                              // conflicts: 0
        p += [0x05, 0x68, 0x65, 0x6C, 0x6C, 0x6F] // a trailing field of version 3: skipped
        var frame: [UInt8] = [0x50, 0x49, 0x45, 0x52, 3, 2, 0, 1]
        for v in [UInt32(p.count), UInt32(p.count)] {
            for s in stride(from: 0, to: 32, by: 8) { frame.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
        }
        frame += [0, 0, 0, 0] + p
        let crc = Frame.checksum(of: frame)
        for i in 0..<4 { frame[16 + i] = UInt8(truncatingIfNeeded: crc >> UInt32(8 * i)) }
        return frame
    }

    static let futureExpected = Message.syncResponse(SyncResponse(
        serverTime: 64, records: [.init(collection: "j", id: "1", version: 10, scope: "", hlc: 1, body: "{}")], cursor: 10, hasMore: true
    ))

    /// The manifest: every golden frame's header and decoded values as WireJSON renders them.
    static func manifest() throws -> String {
        var out = "{\n  \"deflate\": \"\(deflateLibrary)\",\n  \"frames\": [\n"
        var entries: [String] = []
        for golden in goldens {
            let frame = try Frame.encode(golden.message, options: golden.options)
            entries.append(try entry(file: golden.file, note: golden.note, frame: frame, reencodes: true))
        }
        entries.append(try entry(
            file: "future-version.bin", note: "format version 3, minimum reader version 1: unknown flag bit, extra column and trailing field are skipped",
            frame: futureFrame(), reencodes: false
        ))
        out += entries.joined(separator: ",\n")
        out += "\n  ]\n}\n"
        return out
    }

    private static func entry(file: String, note: String, frame: [UInt8], reencodes: Bool) throws -> String {
        let (header, message) = try Frame.decodeWithHeader(frame)
        let body = WireJSON.render(message, header: header, pretty: false)
        // {"header":...,"message":...} plus file, note and whether it re-encodes byte for byte.
        return "    {\"file\": \"\(file)\", \"note\": \"\(note)\", \"reencodes\": \(reencodes), \"decoded\": \(body)}"
    }
}
