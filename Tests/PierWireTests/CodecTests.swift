import Testing
import PierWire

@Suite struct CodecTests {
    @Test func roundTripsEveryGoldenValueAtEveryLevel() throws {
        for golden in Fixtures.goldens {
            for level in [0, 1, 6, 9] {
                for version in [1, 2] as [UInt8] {
                    let frame = try Frame.encode(golden.message, options: EncodeOptions(compressionLevel: level, formatVersion: version))
                    let (header, message) = try Frame.decodeWithHeader(frame)
                    #expect(message == golden.message)
                    #expect(header.version == version)
                }
            }
        }
    }

    @Test func compressesOnlyWhenTheFrameGetsSmaller() throws {
        // Small or incompressible payloads stay uncompressed even when compression is on.
        let tiny = Message.error(ErrorMessage(code: -15, message: "x"))
        #expect(try FrameHeader.parse(try Frame.encode(tiny)).compression == .none)
        var random = TestRandom(state: 5)
        let noise = (0..<2000).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let record = SyncResponse.PulledRecord(collection: "c", id: "x", version: 1, scope: "", hlc: 0, body: WireBytes(noise))
        let incompressible = Message.syncResponse(SyncResponse(serverTime: 0, records: [record], cursor: 1))
        let frame = try Frame.encode(incompressible, options: EncodeOptions(compressionLevel: 9, minimumCompressibleBytes: 0))
        #expect(try FrameHeader.parse(frame).compression == .none)
        #expect(try Frame.decode(frame) == incompressible)
        // Repetitive payloads are compressed, and smaller than the plain frame.
        let repetitive = Message.error(ErrorMessage(code: -1, message: String(repeating: "abc", count: 500)))
        let compressed = try Frame.encode(repetitive)
        #expect(try FrameHeader.parse(compressed).compression == .deflate)
        #expect(compressed.count < (try Frame.encode(repetitive, options: .uncompressed)).count)
    }

    @Test func uuidIdsTravelAsSixteenBytesAndOtherIdsAsText() throws {
        func payloadSize(_ id: String) throws -> Int {
            let message = Message.syncResponse(SyncResponse(serverTime: 0, records: [.init(collection: "c", id: id, version: 1, scope: "", hlc: 0)], cursor: 0))
            let payload = try message.encodedPayload()
            #expect(try Message.decode(payload: payload, type: .syncResponse) == message)
            return payload.count
        }
        let canonical = try payloadSize("0190f3a2-8000-7000-8000-00000000abcd")
        let uppercase = try payloadSize("0190F3A2-8000-7000-8000-00000000ABCD")
        let notQuite = try payloadSize("0190f3a2-8000-7000-8000-00000000abcg")
        #expect(canonical + 20 == uppercase)
        #expect(notQuite == uppercase)
        var record = SyncResponse.PulledRecord(collection: "c", id: "0190f3a2-8000-7000-8000-00000000abcd", version: 1, scope: "", hlc: 0)
        #expect(record.id == "0190f3a2-8000-7000-8000-00000000abcd")
        record.id = "other"
        #expect(record.id == "other")
        #expect(record == SyncResponse.PulledRecord(collection: "c", id: "other", version: 1, scope: "", hlc: 0))
    }

    @Test func varintsAndZigzagCoverTheWholeRange() throws {
        let values: [Int64] = [0, 1, -1, 63, -64, 64, -65, 127, 128, 1 << 35, -(1 << 35), .max, .min, .max - 1, .min + 1]
        for value in values {
            let message = Message.syncRequest(SyncRequest(
                clientID: "c", batchSeq: UInt64(bitPattern: value),
                changes: [.init(collection: "c", id: "i", op: .upsert, baseVersion: value, hlc: value, scope: "s")],
                pull: .init(cursor: value)
            ))
            #expect(try Frame.decode(try Frame.encode(message)) == message)
        }
        // Deltas wrap around: a list that jumps between the extremes still round-trips.
        let records = [Int64.min, .max, .min, 0, .max].map {
            SyncResponse.PulledRecord(collection: "c", id: "i", version: $0, scope: "", hlc: $0)
        }
        let message = Message.syncResponse(SyncResponse(serverTime: .min, records: records, cursor: .max))
        #expect(try Frame.decode(try Frame.encode(message)) == message)
    }

    @Test func resultIndexesMayComeInAnyOrder() throws {
        let results = [5, 0, UInt32.max, 0, 3].map { SyncResponse.ChangeResult(index: $0, outcome: .applied, version: 1) }
        let message = Message.syncResponse(SyncResponse(serverTime: 0, results: results, cursor: 0))
        #expect(try Frame.decode(try Frame.encode(message)) == message)
    }

    @Test func decodedBodiesShareTheFrameButBehaveLikeValues() throws {
        let bytes = try #require(Fixtures.read("response-full.bin"))
        guard case .syncResponse(let response) = try Frame.decode(bytes) else {
            Issue.record("not a response")
            return
        }
        let body = try #require(response.records[0].body)
        #expect(body.startIndex == 0)
        #expect(body.first == UInt8(ascii: "{"))
        #expect(body.utf8String == "{\"name\":\"Jürgen Müller\"}")
        #expect(Array(body) == Array("{\"name\":\"Jürgen Müller\"}".utf8))
        #expect(body == WireBytes("{\"name\":\"Jürgen Müller\"}"))
        #expect(body.hashValue == WireBytes("{\"name\":\"Jürgen Müller\"}").hashValue)
        // The unsafe-pointer entry point copies the frame first and gives the same values.
        let viaPointer = try bytes.withUnsafeBytes { try Frame.decode($0) }
        #expect(viaPointer == .syncResponse(response))
    }

    @Test func jsonRenderingIsStable() throws {
        let message = Message.error(ErrorMessage(code: -15, message: "a \"quoted\"\nline\u{1}"))
        #expect(WireJSON.render(message, pretty: false) == #"{"type":"error","code":-15,"message":"a \"quoted\"\nline\u0001"}"#)
        let binary = Message.syncResponse(SyncResponse(serverTime: 0, records: [.init(collection: "c", id: "i", version: 1, scope: "", hlc: 0, body: WireBytes([0xFF, 0x00]))], cursor: 0))
        #expect(WireJSON.render(binary, pretty: false).contains(#""body":{"hex":"ff00"}"#))
    }
}

@Suite struct BoundedEncodingTests {
    static func changes(_ count: Int, bodySize: Int = 200) -> [SyncRequest.Change] {
        (0..<count).map { i in
            let text = "{\"n\":\(i),\"pad\":\"" + String(repeating: "x", count: bodySize) + "\"}"
            return SyncRequest.Change(
                collection: "jobs", id: "0190f3a2-8000-7000-8000-\(String(100_000_000_000 + i))", op: .upsert,
                baseVersion: Int64(i), hlc: Int64(i) << 16, scope: "team", body: WireBytes(text)
            )
        }
    }

    @Test func largePushesBecomeSeveralFramesWithinTheBudget() throws {
        let all = Self.changes(100)
        let budget = 4096
        var remaining = all[...]
        var received: [SyncRequest.Change] = []
        var batch: UInt64 = 1
        while !remaining.isEmpty {
            let request = SyncRequest(clientID: Fixtures.clientID, batchSeq: batch, changes: Array(remaining))
            let (frame, encoded) = try request.encodeFrame(budget: budget)
            #expect(frame.count <= budget)
            #expect(encoded > 0)
            guard case .syncRequest(let decoded) = try Frame.decode(frame) else { return }
            #expect(decoded.batchSeq == batch)
            #expect(decoded.changes == Array(remaining.prefix(encoded)))
            received += decoded.changes
            remaining = remaining.dropFirst(encoded)
            batch += 1
        }
        #expect(received == all)
        #expect(batch > 5)
    }

    @Test func theStreamingEncoderReportsWhatDidNotFit() throws {
        var encoder = try SyncRequestEncoder(clientID: "c", batchSeq: 1, budget: 2000, maxChanges: 500)
        var results: [AppendResult] = []
        for change in Self.changes(20) { results.append(encoder.append(change)) }
        let appended = results.filter { $0 == .appended }.count
        #expect(appended > 0 && appended < 20)
        #expect(results.prefix(appended).allSatisfy { $0 == .appended })
        #expect(results.dropFirst(appended).allSatisfy { $0 == .full })
        #expect(encoder.changeCount == appended)
        let frame = try encoder.finish()
        #expect(frame.count <= 2000)
        #expect(try Frame.encode(payload: [], type: .error).count == PierWire.headerSize)
        guard case .syncRequest(let decoded) = try Frame.decode(frame) else { return }
        #expect(decoded.changes == Array(Self.changes(20).prefix(appended)))
        // The uncompressed size it reports is exact.
        #expect((try encoder.finish(options: .uncompressed)).count == encoder.encodedSize)
    }

    @Test func maxChangesAndTooLargeItems() throws {
        var encoder = try SyncRequestEncoder(clientID: "c", batchSeq: 1, budget: 1 << 20, maxChanges: 3)
        let results = Self.changes(5).map { encoder.append($0) }
        #expect(results == [.appended, .appended, .appended, .full, .full])
        var small = try SyncRequestEncoder(clientID: "c", batchSeq: 1, budget: 100)
        #expect(small.append(Self.changes(1, bodySize: 500)[0]) == .tooLarge)
        #expect(throws: WireError.self) { try SyncRequest(clientID: "c", batchSeq: 1, changes: Self.changes(1, bodySize: 500)).encodeFrame(budget: 100) }
        #expect(throws: WireError.self) { try SyncRequestEncoder(clientID: String(repeating: "c", count: 100), batchSeq: 1, budget: 50) }
    }

    @Test func pullPagesAreCutAndTheCursorFollows() throws {
        let records = (0..<60).map { i in
            SyncResponse.PulledRecord(
                collection: "jobs", id: "r\(i)", version: Int64(1000 + 2 * i), scope: "team", hlc: Int64(i),
                body: WireBytes("{\"pad\":\"" + String(repeating: "y", count: 150) + "\"}")
            )
        }
        let response = SyncResponse(
            serverTime: 99, results: [.init(index: 0, outcome: .applied, version: 5)], records: records, cursor: 1118,
            conflicts: [.init(conflictID: "k", collection: "c", id: "i", serverVersion: 1, baseVersion: 0)]
        )
        var received: [SyncResponse.PulledRecord] = []
        var pending = response
        var pages = 0
        while true {
            let (frame, encoded) = try pending.encodeFrame(budget: 3000)
            #expect(frame.count <= 3000)
            guard case .syncResponse(let page) = try Frame.decode(frame) else { return }
            received += page.records
            pages += 1
            if encoded == pending.records.count {
                #expect(page.cursor == pending.cursor)
                break
            }
            #expect(page.hasMore)
            #expect(page.cursor == page.records.last?.version)
            #expect(page.results == pending.results)
            pending.records.removeFirst(encoded)
            pending.results = []
            pending.conflicts = []
        }
        #expect(received == records)
        #expect(pages > 3)
    }

    @Test func theResponseEncoderSetsHasMoreWhenRecordsAreRefused() throws {
        var encoder = try SyncResponseEncoder(serverTime: 1, cursor: 500, budget: 600, maxRecords: 2)
        #expect(encoder.cursor == 500)
        #expect(encoder.append(SyncResponse.ChangeResult(index: 0, outcome: .applied, version: 501)) == .appended)
        let record = { (v: Int64) in SyncResponse.PulledRecord(collection: "c", id: "i\(v)", version: v, scope: "", hlc: 0, body: "{}") }
        #expect(encoder.append(record(501)) == .appended)
        #expect(encoder.append(record(502)) == .appended)
        #expect(!encoder.hasMore)
        #expect(encoder.append(record(503)) == .full)
        #expect(encoder.hasMore)
        #expect(encoder.cursor == 502)
        guard case .syncResponse(let page) = try Frame.decode(try encoder.finish()) else { return }
        #expect(page.hasMore && page.cursor == 502 && page.records.count == 2 && page.results.count == 1)
    }

    /// Pages of mixed collections, UUID and text ids, tombstones with and without bodies and
    /// extreme HLCs, cut by the byte budget in both layouts: every page decodes to its
    /// records in order, and layout 2 puts the same information in the same bytes or fewer.
    @Test func bothRecordLayoutsCarryMixedPagesThroughBoundedEncoding() throws {
        var random = TestRandom(state: 4242)
        let collections = ["jobs", "customers", "parts", "notes"]
        let records = (0..<400).map { i -> SyncResponse.PulledRecord in
            let id = random.below(4) == 0 ? "text-\(i)" : "0190f3a2-\(String(4096 + random.below(60000), radix: 16))-7000-8000-\(String(0x1000_0000_0000 + i, radix: 16))"
            let deleted = random.below(7) == 0
            let hasBody = !deleted || random.below(2) == 0
            let hlcs: [Int64] = [.min, .max, -1, 0, Int64(1_750_000_000_000 + random.below(1000)) << 16]
            return SyncResponse.PulledRecord(
                collection: collections[random.below(random.below(3) == 0 ? 4 : 2)], id: id, version: Int64(10 + 3 * i),
                scope: "team-\(random.below(3))", hlc: hlcs[random.below(hlcs.count)], deleted: deleted,
                body: hasBody ? WireBytes("{\"n\":\(i),\"pad\":\"\(String(repeating: "z", count: random.below(300)))\"}") : nil
            )
        }
        for version in [1, 2] as [UInt8] {
            var pending = SyncResponse(serverTime: 7, records: records, cursor: 9)
            var received: [SyncResponse.PulledRecord] = []
            var pages = 0
            while !pending.records.isEmpty {
                let options = EncodeOptions(compressionLevel: pages % 2 == 0 ? 0 : 6, formatVersion: version)
                let (frame, encoded) = try pending.encodeFrame(budget: 4000, options: options)
                #expect(frame.count <= 4000)
                let (header, message) = try Frame.decodeWithHeader(frame)
                #expect(header.version == version && header.minimumReaderVersion == version)
                guard case .syncResponse(let page) = message else { return }
                #expect(page.records == Array(pending.records.prefix(encoded)))
                received += page.records
                pending.records.removeFirst(encoded)
                pages += 1
            }
            #expect(received == records)
            #expect(pages > 10)
        }
        let one = Message.syncResponse(SyncResponse(serverTime: 7, records: records, cursor: 9))
        #expect(try one.encodedPayload(version: 2).count <= one.encodedPayload(version: 1).count + 8 * records.count)
    }

    @Test func theResponseEncoderRollsBackLayoutTwo() throws {
        // A refused record must leave no id plane, HLC or grouped body behind.
        var encoder = try SyncResponseEncoder(serverTime: 1, cursor: 0, budget: 300, formatVersion: 2)
        let small = SyncResponse.PulledRecord(collection: "a", id: "0190f3a2-8000-7000-8000-000000000001", version: 1, scope: "", hlc: 5, body: "{}")
        let big = SyncResponse.PulledRecord(
            collection: "b", id: "0190f3a2-8000-7000-8000-000000000002", version: 2, scope: "s", hlc: 6,
            body: WireBytes("{\"x\":\"" + String(repeating: "q", count: 400) + "\"}")
        )
        #expect(encoder.append(small) == .appended)
        #expect(encoder.append(big) == .full)
        let frame = try encoder.finish(options: .uncompressed)
        #expect(frame.count == encoder.encodedSize)
        guard case .syncResponse(let page) = try Frame.decode(frame) else { return }
        #expect(page.records == [small] && page.hasMore && page.cursor == 1)
    }
}
