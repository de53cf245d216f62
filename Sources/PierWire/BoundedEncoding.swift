// Bounded encoding: build a frame item by item up to a byte budget, so a large push or
// pull becomes several frames and neither side ever holds more than one frame's worth of
// items in memory. The budget bounds the whole frame (header plus uncompressed payload);
// compression can only make the frame smaller, so a finished frame never exceeds it.

/// What happened to an item offered to a bounded encoder.
public enum AppendResult: Sendable, Hashable {
    /// The item is in the frame.
    case appended
    /// The frame is full (budget or item count): finish it and offer the item to the next one.
    case full
    /// The item would not fit even in an otherwise empty frame with this budget.
    case tooLarge
}

/// Builds one `SyncRequest` frame change by change, within a byte budget.
///
/// ```swift
/// var encoder = try SyncRequestEncoder(clientID: id, batchSeq: seq, budget: 1 << 20)
/// while let change = outbox.next(), encoder.append(change) == .appended {}
/// let frame = try encoder.finish()
/// ```
public struct SyncRequestEncoder: Sendable {
    /// The largest frame this encoder produces, in bytes.
    public let budget: Int
    /// The most changes it puts in one frame.
    public let maxChanges: Int
    private let head: [UInt8]
    private var changes = ChangeListWriter()

    /// Starts a frame. Throws if the request without any change already exceeds `budget`.
    public init(
        clientID: String, batchSeq: UInt64, pull: SyncRequest.PullRequest? = nil, budget: Int, maxChanges: Int = .max
    ) throws(WireError) {
        var w = ByteWriter()
        writeRequestHead(&w, clientID: clientID, batchSeq: batchSeq, pull: pull)
        head = w.bytes
        self.budget = budget
        self.maxChanges = maxChanges
        let size = PierWire.headerSize + head.count + changes.encodedSize
        guard size <= budget else {
            throw WireError(.limitExceeded, "a request without changes needs \(size) bytes, over the budget of \(budget)")
        }
    }

    /// The changes in the frame so far.
    public var changeCount: Int { changes.count }

    /// The size of the frame if it were finished now without compression (an upper bound
    /// of the final size).
    public var encodedSize: Int { PierWire.headerSize + head.count + changes.encodedSize }

    /// Adds `change` if it fits in the budget; otherwise leaves the frame as it was.
    public mutating func append(_ change: SyncRequest.Change) -> AppendResult {
        if changes.count >= maxChanges { return .full }
        let mark = changes.mark()
        changes.append(change)
        if encodedSize <= budget { return .appended }
        let wasEmpty = mark.itemCount == 0
        changes.rollback(to: mark)
        return wasEmpty ? .tooLarge : .full
    }

    /// The finished frame.
    public func finish(options: EncodeOptions = .default) throws(WireError) -> [UInt8] {
        var w = ByteWriter(capacity: encodedSize - PierWire.headerSize)
        w.raw(head)
        changes.columns.write(into: &w)
        return try Frame.encode(payload: w.bytes, type: .syncRequest, options: options)
    }
}

/// Builds one `SyncResponse` frame within a byte budget: results and conflicts first
/// (they answer the request and must all be sent), then pulled records until the budget
/// or `maxRecords` is reached.
///
/// The cursor starts at the client's cursor and follows the records appended; a record
/// refused for lack of room sets `hasMore`, so the client pulls again from `cursor`.
public struct SyncResponseEncoder: Sendable {
    /// The largest frame this encoder produces, in bytes.
    public let budget: Int
    /// The most records it puts in one frame.
    public let maxRecords: Int
    /// The server time the response carries.
    public var serverTime: Int64
    /// The cursor the response carries: the version of the last record appended, or the
    /// initial cursor while there is none.
    public private(set) var cursor: Int64
    /// Whether the client should pull again. Set automatically when a record is refused;
    /// the server sets it too when its store holds more than it offered.
    public var hasMore = false
    private let resyncRequired: Bool
    private let resyncCollections: [String]
    private var results = ResultListWriter()
    private var records: RecordListWriter
    private var conflicts = ConflictListWriter()
    /// The format version the frame is written in (`finish` ignores its options' version).
    public let formatVersion: UInt8

    /// Starts a response. Throws if the response without any item already exceeds `budget`.
    public init(
        serverTime: Int64, cursor: Int64, resyncRequired: Bool = false, resyncCollections: [String] = [],
        budget: Int, maxRecords: Int = .max, formatVersion: UInt8 = PierWire.formatVersion
    ) throws(WireError) {
        guard formatVersion >= 1 && formatVersion <= PierWire.formatVersion else {
            throw WireError(.unsupportedVersion, "cannot write format version \(formatVersion); this writer knows 1 to \(PierWire.formatVersion)")
        }
        self.formatVersion = formatVersion
        records = RecordListWriter(formatVersion: formatVersion)
        self.serverTime = serverTime
        self.cursor = cursor
        self.resyncRequired = resyncRequired
        self.resyncCollections = resyncCollections
        self.budget = budget
        self.maxRecords = maxRecords
        guard encodedSize <= budget else {
            throw WireError(.limitExceeded, "an empty response needs \(encodedSize) bytes, over the budget of \(budget)")
        }
    }

    /// The results in the frame so far.
    public var resultCount: Int { results.count }
    /// The records in the frame so far.
    public var recordCount: Int { records.count }
    /// The conflicts in the frame so far.
    public var conflictCount: Int { conflicts.count }

    /// The size of the frame if it were finished now without compression.
    public var encodedSize: Int {
        var w = ByteWriter(capacity: 32)
        writeResponseHead(
            &w, serverTime: serverTime, cursor: cursor, hasMore: hasMore, resyncRequired: resyncRequired,
            resyncCollections: resyncCollections, groupedRecords: records.grouped && records.count > 0
        )
        return PierWire.headerSize + w.count + results.encodedSize + records.encodedSize + conflicts.encodedSize
    }

    private var isEmpty: Bool { results.count == 0 && records.count == 0 && conflicts.count == 0 }

    /// Adds a change result if it fits. A result that does not fit cannot be moved to a
    /// later frame (the request is answered once): drop its body and try again.
    public mutating func append(_ result: SyncResponse.ChangeResult) -> AppendResult {
        let wasEmpty = isEmpty
        let mark = results.mark()
        results.append(result)
        if encodedSize <= budget { return .appended }
        results.rollback(to: mark)
        return wasEmpty ? .tooLarge : .full
    }

    /// Adds a conflict if it fits.
    public mutating func append(_ conflict: SyncResponse.ConflictInfo) -> AppendResult {
        let wasEmpty = isEmpty
        let mark = conflicts.mark()
        conflicts.append(conflict)
        if encodedSize <= budget { return .appended }
        conflicts.rollback(to: mark)
        return wasEmpty ? .tooLarge : .full
    }

    /// Adds a pulled record (records must come in version order) if it fits and moves the
    /// cursor to its version; otherwise sets `hasMore`.
    public mutating func append(_ record: SyncResponse.PulledRecord) -> AppendResult {
        if records.count >= maxRecords {
            hasMore = true
            return .full
        }
        let wasEmpty = isEmpty
        let mark = records.mark()
        let oldCursor = cursor
        records.append(record)
        cursor = record.version
        if encodedSize <= budget { return .appended }
        records.rollback(to: mark)
        cursor = oldCursor
        hasMore = true
        return wasEmpty ? .tooLarge : .full
    }

    /// The finished frame.
    public func finish(options: EncodeOptions = .default) throws(WireError) -> [UInt8] {
        var w = ByteWriter(capacity: encodedSize - PierWire.headerSize)
        writeResponseHead(
            &w, serverTime: serverTime, cursor: cursor, hasMore: hasMore, resyncRequired: resyncRequired,
            resyncCollections: resyncCollections, groupedRecords: records.grouped && records.count > 0
        )
        results.columns.write(into: &w)
        records.write(into: &w)
        conflicts.columns.write(into: &w)
        return try Frame.encode(payload: w.bytes, type: .syncResponse, options: options.writing(version: formatVersion))
    }
}

extension SyncRequest {
    /// Encodes as many of `changes` (a prefix, in order) as fit in a frame of at most
    /// `budget` bytes. `encodedChanges` tells how many went in: send
    /// `changes[encodedChanges...]` in the next frame, with the next batch sequence.
    /// Throws if the first change alone exceeds the budget.
    public func encodeFrame(budget: Int, maxChanges: Int = .max, options: EncodeOptions = .default) throws(WireError) -> (frame: [UInt8], encodedChanges: Int) {
        var encoder = try SyncRequestEncoder(clientID: clientID, batchSeq: batchSeq, pull: pull, budget: budget, maxChanges: maxChanges)
        for (i, change) in changes.enumerated() {
            switch encoder.append(change) {
            case .appended: continue
            case .full: return (try encoder.finish(options: options), i)
            case .tooLarge:
                throw WireError(.limitExceeded, "change \(i) (\(change.collection)/\(change.id)) does not fit in a frame of \(budget) bytes")
            }
        }
        return (try encoder.finish(options: options), changes.count)
    }
}

extension SyncResponse {
    /// Encodes all results and conflicts and as many records (a prefix) as fit in a frame
    /// of at most `budget` bytes. When records are left out, the frame says `hasMore` and
    /// its cursor is the version of the last record included (or, if none fits, one below
    /// the first record's version, which is equivalent: no visible version lies between).
    /// Throws if the results and conflicts alone, or the first record alone, exceed it.
    public func encodeFrame(budget: Int, maxRecords: Int = .max, options: EncodeOptions = .default) throws(WireError) -> (frame: [UInt8], encodedRecords: Int) {
        if records.count <= maxRecords {
            let payload = try Message.syncResponse(self).encodedPayload(version: options.formatVersion)
            if PierWire.headerSize + payload.count <= budget {
                return (try Frame.encode(payload: payload, type: .syncResponse, options: options), records.count)
            }
        }
        // Too big as it is: cut the records.
        var encoder = try SyncResponseEncoder(
            serverTime: serverTime, cursor: records.first.map { $0.version &- 1 } ?? cursor,
            resyncRequired: resyncRequired, resyncCollections: resyncCollections, budget: budget, maxRecords: maxRecords,
            formatVersion: options.formatVersion
        )
        encoder.hasMore = hasMore
        for (i, result) in results.enumerated() where encoder.append(result) != .appended {
            throw WireError(.limitExceeded, "result \(i) does not fit in a frame of \(budget) bytes")
        }
        for (i, conflict) in conflicts.enumerated() where encoder.append(conflict) != .appended {
            throw WireError(.limitExceeded, "conflict \(i) does not fit in a frame of \(budget) bytes")
        }
        var encoded = 0
        for record in records {
            switch encoder.append(record) {
            case .appended: encoded += 1
            case .full: return (try encoder.finish(options: options), encoded)
            case .tooLarge:
                throw WireError(.limitExceeded, "record \(encoded) (\(record.collection)/\(record.id)) does not fit in a frame of \(budget) bytes")
            }
        }
        return (try encoder.finish(options: options), encoded)
    }
}
