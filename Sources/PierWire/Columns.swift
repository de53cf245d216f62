// Columnar lists (docs/PROTOCOL.md section 4): a list of n items is written as n, the
// number of columns, then each column as a length-prefixed run holding one field of every
// item in order. Columns keep like values together, which deflate compresses better, and
// let later format versions append columns that older readers skip.

/// The columns of one list being written.
struct ColumnsWriter {
    var columns: [ByteWriter]
    var count = 0

    init(columnCount: Int) {
        columns = Array(repeating: ByteWriter(), count: columnCount)
    }

    /// The bytes `write(into:)` produces.
    var encodedSize: Int {
        if count == 0 { return 1 }
        var n = uvarintSize(UInt64(count)) + uvarintSize(UInt64(columns.count))
        for c in columns { n += uvarintSize(UInt64(c.count)) + c.count }
        return n
    }

    func write(into w: inout ByteWriter) {
        w.uvarint(UInt64(count))
        if count == 0 { return }
        w.uvarint(UInt64(columns.count))
        for c in columns {
            w.uvarint(UInt64(c.count))
            w.raw(c.bytes)
        }
    }

    func columnCounts() -> [Int] { columns.map(\.count) }

    mutating func truncate(to counts: [Int], itemCount: Int) {
        for i in columns.indices where columns[i].count > counts[i] { columns[i].truncate(to: counts[i]) }
        count = itemCount
    }
}

/// How strictly to decode: version-1 frames are decoded strictly (every byte accounted
/// for, reserved bits zero); frames of a later version that version-1 readers may read
/// are decoded tolerantly (extra columns, unknown flag bits and trailing fields ignored).
struct DecodeContext {
    let limits: WireLimits
    let strict: Bool
    /// The rules the message is read by: its format version, or this reader's if older.
    let version: UInt8
    /// The frame header's minimum reader version (layout 2 requires 2).
    let minimumReaderVersion: UInt8
    /// The array holding the payload: decoded bodies share it instead of being copied.
    let storage: [UInt8]
    /// Where the payload starts in `storage` (reader positions are relative to it).
    let payloadOffset: Int
}

/// Opens the columns of a list of `count` (> 0) items: reads the column count and carves
/// each column out of `reader`. Returns the first `names.count` columns; further columns
/// (from a later format version) are skipped in tolerant mode and rejected in strict mode.
func openColumns(_ reader: inout ByteReader, count: Int, list: String, names: [String], _ context: DecodeContext) throws(WireError) -> [ByteReader] {
    let columnCount = try reader.uvarint()
    if context.strict ? columnCount != UInt64(names.count) : columnCount < UInt64(names.count) {
        throw reader.fail(.malformed, "\(list) has \(columnCount) columns, format version \(context.version) defines \(names.count)")
    }
    var columns: [ByteReader] = []
    columns.reserveCapacity(names.count)
    var index: UInt64 = 0
    while index < columnCount {
        let length = try reader.length(limit: Int.max, what: "column length")
        let start = reader.skip(length)
        if index < UInt64(names.count) {
            columns.append(ByteReader(base: reader.base, position: start, end: start + length, name: "\(list).\(names[Int(index)])"))
        }
        index += 1
    }
    // Every item has at least one byte in the flags column: this bounds `count` by real
    // bytes before anything is allocated for the items.
    guard columns[0].remaining >= count else {
        throw columns[0].fail(.truncated, "\(count) items declared but the column holds only \(columns[0].remaining) bytes")
    }
    return columns
}

/// Throws if a column has bytes left after all items were read.
@inline(__always)
func expectEnd(_ column: ByteReader) throws(WireError) {
    if !column.isAtEnd {
        throw column.fail(.trailingBytes, "\(column.remaining) bytes left over after the last item")
    }
}

/// Reads a body of `length` (from the lengths column) out of the bodies column.
@inline(__always)
func readBody(lengths: inout ByteReader, bodies: inout ByteReader, _ context: DecodeContext) throws(WireError) -> WireBytes {
    let n = try lengths.length(limit: context.limits.maxBodyBytes, availableElsewhere: bodies.remaining, what: "body length")
    let start = bodies.skip(n)
    return WireBytes(storage: context.storage, offset: context.payloadOffset + start, count: n)
}

/// Prefixes an error with the list item it happened in.
func inItem(_ error: WireError, _ list: String, _ index: Int) -> WireError {
    WireError(error.fault, "\(list)[\(index)]: \(error.message)")
}

/// A uvarint count followed by that many strings.
func readStringList(_ reader: inout ByteReader, _ context: DecodeContext) throws(WireError) -> [String] {
    // Each string takes at least one byte, so the count is bounded by the bytes left.
    let n = try reader.length(limit: context.limits.maxItems, what: "string count")
    var out: [String] = []
    out.reserveCapacity(n)
    for _ in 0..<n { out.append(try reader.string(limits: context.limits)) }
    return out
}

func writeStringList(_ w: inout ByteWriter, _ values: [String]) {
    w.uvarint(UInt64(values.count))
    for v in values { w.string(v) }
}

// MARK: - Changes

/// The columns of `SyncRequest.changes`.
struct ChangeListWriter {
    static let names = ["flags", "collection", "id", "scope", "base_version", "hlc", "changed_fields", "body_length", "body"]
    var columns = ColumnsWriter(columnCount: 9)
    var collections = SymbolTable()
    var scopes = SymbolTable()
    var fields = SymbolTable()
    var lastHLC: Int64 = 0

    var count: Int { columns.count }
    var encodedSize: Int { columns.encodedSize }

    mutating func append(_ change: SyncRequest.Change) {
        columns.columns[0].uvarint(UInt64(change.op.rawValue) | (change.body != nil ? 4 : 0))
        columns.columns[1].sym(change.collection, &collections)
        columns.columns[2].id(change.storedID)
        columns.columns[3].sym(change.scope, &scopes)
        columns.columns[4].svarint(change.baseVersion)
        columns.columns[5].svarint(change.hlc &- lastHLC)
        lastHLC = change.hlc
        columns.columns[6].uvarint(UInt64(change.changedFields.count))
        for f in change.changedFields { columns.columns[6].sym(f, &fields) }
        if let body = change.body {
            columns.columns[7].uvarint(UInt64(body.count))
            body.withUnsafeBytes { columns.columns[8].raw($0) }
        }
        columns.count += 1
    }

    struct Mark {
        var counts: [Int]
        var itemCount: Int
        var symbols: (Int, Int, Int)
        var lastHLC: Int64
    }

    func mark() -> Mark {
        Mark(counts: columns.columnCounts(), itemCount: count, symbols: (collections.count, scopes.count, fields.count), lastHLC: lastHLC)
    }

    mutating func rollback(to mark: Mark) {
        columns.truncate(to: mark.counts, itemCount: mark.itemCount)
        collections.truncate(to: mark.symbols.0)
        scopes.truncate(to: mark.symbols.1)
        fields.truncate(to: mark.symbols.2)
        lastHLC = mark.lastHLC
    }

    static func decode(_ reader: inout ByteReader, _ context: DecodeContext) throws(WireError) -> [SyncRequest.Change] {
        let count = try reader.length(limit: context.limits.maxItems, what: "change count")
        if count == 0 { return [] }
        let columns = try openColumns(&reader, count: count, list: "changes", names: names, context)
        var flagsColumn = columns[0], collectionColumn = columns[1], idColumn = columns[2], scopeColumn = columns[3]
        var baseColumn = columns[4], hlcColumn = columns[5], fieldsColumn = columns[6], lengthColumn = columns[7], bodyColumn = columns[8]
        var collections = SymbolReadTable(), scopes = SymbolReadTable(), fields = SymbolReadTable()
        let limits = context.limits
        var out: [SyncRequest.Change] = []
        out.reserveCapacity(count)
        var hlc: Int64 = 0
        for i in 0..<count {
            do throws(WireError) {
                let flags = try flagsColumn.uvarint()
                if context.strict && flags & ~7 != 0 {
                    throw flagsColumn.fail(.malformed, "reserved flag bits set (0x\(String(flags, radix: 16)))")
                }
                guard let op = SyncRequest.Change.Operation(rawValue: UInt8(flags & 3)) else {
                    throw flagsColumn.fail(.malformed, "unknown operation \(flags & 3) (known: 0 upsert, 1 patch, 2 delete)")
                }
                let collection = try collectionColumn.sym(&collections, limits: limits, strict: context.strict)
                let id = try idColumn.compactID(limits: limits, strict: context.strict)
                let scope = try scopeColumn.sym(&scopes, limits: limits, strict: context.strict)
                let baseVersion = try baseColumn.svarint()
                hlc = hlc &+ (try hlcColumn.svarint())
                let fieldCount = try fieldsColumn.length(limit: limits.maxItems, what: "changed field count")
                var changedFields: [String] = []
                changedFields.reserveCapacity(fieldCount)
                for _ in 0..<fieldCount {
                    changedFields.append(try fieldsColumn.sym(&fields, limits: limits, strict: context.strict))
                }
                let body = flags & 4 != 0 ? try readBody(lengths: &lengthColumn, bodies: &bodyColumn, context) : nil
                out.append(SyncRequest.Change(
                    collection: collection, storedID: id, op: op, baseVersion: baseVersion, hlc: hlc, scope: scope,
                    body: body, changedFields: changedFields
                ))
            } catch {
                throw inItem(error, "changes", i)
            }
        }
        for column in [flagsColumn, collectionColumn, idColumn, scopeColumn, baseColumn, hlcColumn, fieldsColumn, lengthColumn, bodyColumn] {
            try expectEnd(column)
        }
        return out
    }
}

// MARK: - Change results

/// The columns of `SyncResponse.results`.
struct ResultListWriter {
    static let names = ["flags", "index", "version", "server_hlc", "reason", "conflict_id", "body_length", "body"]
    var columns = ColumnsWriter(columnCount: 8)
    var reasons = SymbolTable()
    var lastIndex: Int64 = -1
    var lastVersion: Int64 = 0
    var lastHLC: Int64 = 0

    var count: Int { columns.count }
    var encodedSize: Int { columns.encodedSize }

    mutating func append(_ result: SyncResponse.ChangeResult) {
        columns.columns[0].uvarint(UInt64(result.outcome.rawValue) | (result.body != nil ? 8 : 0))
        columns.columns[1].svarint(Int64(result.index) - (lastIndex + 1))
        lastIndex = Int64(result.index)
        columns.columns[2].svarint(result.version &- lastVersion)
        lastVersion = result.version
        columns.columns[3].svarint(result.serverHLC &- lastHLC)
        lastHLC = result.serverHLC
        columns.columns[4].sym(result.reason, &reasons)
        columns.columns[5].id(result.conflictID)
        if let body = result.body {
            columns.columns[6].uvarint(UInt64(body.count))
            body.withUnsafeBytes { columns.columns[7].raw($0) }
        }
        columns.count += 1
    }

    struct Mark {
        var counts: [Int]
        var itemCount: Int
        var reasons: Int
        var last: (Int64, Int64, Int64)
    }

    func mark() -> Mark {
        Mark(counts: columns.columnCounts(), itemCount: count, reasons: reasons.count, last: (lastIndex, lastVersion, lastHLC))
    }

    mutating func rollback(to mark: Mark) {
        columns.truncate(to: mark.counts, itemCount: mark.itemCount)
        reasons.truncate(to: mark.reasons)
        (lastIndex, lastVersion, lastHLC) = mark.last
    }

    static func decode(_ reader: inout ByteReader, _ context: DecodeContext) throws(WireError) -> [SyncResponse.ChangeResult] {
        let count = try reader.length(limit: context.limits.maxItems, what: "result count")
        if count == 0 { return [] }
        let columns = try openColumns(&reader, count: count, list: "results", names: names, context)
        var flagsColumn = columns[0], indexColumn = columns[1], versionColumn = columns[2], hlcColumn = columns[3]
        var reasonColumn = columns[4], conflictColumn = columns[5], lengthColumn = columns[6], bodyColumn = columns[7]
        var reasons = SymbolReadTable()
        let limits = context.limits
        var out: [SyncResponse.ChangeResult] = []
        out.reserveCapacity(count)
        var index: Int64 = -1
        var version: Int64 = 0
        var hlc: Int64 = 0
        for i in 0..<count {
            do throws(WireError) {
                let flags = try flagsColumn.uvarint()
                if context.strict && flags & ~15 != 0 {
                    throw flagsColumn.fail(.malformed, "reserved flag bits set (0x\(String(flags, radix: 16)))")
                }
                guard let outcome = SyncResponse.ChangeResult.Outcome(rawValue: UInt8(flags & 7)) else {
                    throw flagsColumn.fail(.malformed, "unknown outcome \(flags & 7) (known: 0-4)")
                }
                let delta = try indexColumn.svarint()
                let (next, overflow) = (index + 1).addingReportingOverflow(delta)
                guard !overflow, next >= 0, next <= Int64(UInt32.max) else {
                    throw indexColumn.fail(.malformed, "change index out of range 0...2^32-1")
                }
                index = next
                version = version &+ (try versionColumn.svarint())
                hlc = hlc &+ (try hlcColumn.svarint())
                let reason = try reasonColumn.sym(&reasons, limits: limits, strict: context.strict)
                let conflictID = try conflictColumn.id(limits: limits, strict: context.strict)
                let body = flags & 8 != 0 ? try readBody(lengths: &lengthColumn, bodies: &bodyColumn, context) : nil
                out.append(SyncResponse.ChangeResult(
                    index: UInt32(index), outcome: outcome, version: version, body: body, reason: reason,
                    conflictID: conflictID, serverHLC: hlc
                ))
            } catch {
                throw inItem(error, "results", i)
            }
        }
        for column in [flagsColumn, indexColumn, versionColumn, hlcColumn, reasonColumn, conflictColumn, lengthColumn, bodyColumn] {
            try expectEnd(column)
        }
        return out
    }
}

// MARK: - Pulled records

/// The columns of `SyncResponse.records`, in either layout (docs/PROTOCOL.md 5.2, 5.4).
///
/// Layout 1 writes every field of an item as it comes. Layout 2 (format version 2, response
/// flag bit 2) keeps three columns aside until the list is written: the 16 bytes of UUID
/// ids and the 8 bytes of HLCs as byte planes (byte 0 of every item, then byte 1, ...),
/// so that the near-constant high bytes of time-ordered values line up; and the bodies
/// grouped by collection, so that bodies of the same shape sit together for deflate.
struct RecordListWriter {
    static let names = ["flags", "collection", "id", "scope", "version", "hlc", "body_length", "body"]
    var columns = ColumnsWriter(columnCount: 8)
    var collections = SymbolTable()
    var scopes = SymbolTable()
    var lastVersion: Int64 = 0
    var lastHLC: Int64 = 0
    /// Layout 2: bodies grouped by collection.
    let grouped: Bool
    /// Layout 2: the UUID ids' bytes, 16 per UUID, in item order.
    var uuids: [UInt8] = []
    /// Layout 2: every item's HLC as 8 big-endian bytes, in item order.
    var hlcs: [UInt8] = []
    /// Layout 2: the bodies of each collection (indexed like the collection table).
    var groups: [[UInt8]] = []

    init(formatVersion: UInt8 = PierWire.formatVersion) {
        grouped = formatVersion >= 2
    }

    var count: Int { columns.count }

    /// The bytes `write(into:)` produces.
    var encodedSize: Int {
        if !grouped || count == 0 { return columns.encodedSize }
        var n = uvarintSize(UInt64(count)) + uvarintSize(UInt64(columns.columns.count))
        for (k, c) in columns.columns.enumerated() {
            let size: Int
            switch k {
            case 2: size = c.count + uuids.count
            case 5: size = hlcs.count
            case 7: size = groups.reduce(0) { $0 + $1.count }
            default: size = c.count
            }
            n += uvarintSize(UInt64(size)) + size
        }
        return n
    }

    mutating func append(_ record: SyncResponse.PulledRecord) {
        columns.columns[0].uvarint((record.deleted ? 1 : 0) | (record.body != nil ? 2 : 0))
        let collection = columns.columns[1].sym(record.collection, &collections)
        columns.columns[3].sym(record.scope, &scopes)
        columns.columns[4].svarint(record.version &- lastVersion)
        lastVersion = record.version
        if grouped {
            switch record.storedID {
            case .uuid(let high, let low):
                columns.columns[2].uvarint(0)
                withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { uuids.append(contentsOf: $0) }
            case .text:
                columns.columns[2].id(record.storedID)
            }
            withUnsafeBytes(of: record.hlc.bigEndian) { hlcs.append(contentsOf: $0) }
        } else {
            columns.columns[2].id(record.storedID)
            columns.columns[5].svarint(record.hlc &- lastHLC)
            lastHLC = record.hlc
        }
        if let body = record.body {
            columns.columns[6].uvarint(UInt64(body.count))
            if grouped {
                while groups.count <= collection { groups.append([]) }
                body.withUnsafeBytes { groups[collection].append(contentsOf: $0) }
            } else {
                body.withUnsafeBytes { columns.columns[7].raw($0) }
            }
        }
        columns.count += 1
    }

    /// Writes the list; in layout 2 the planes and the grouped bodies complete their columns.
    func write(into w: inout ByteWriter) {
        guard grouped, count > 0 else { return columns.write(into: &w) }
        w.uvarint(UInt64(count))
        w.uvarint(UInt64(columns.columns.count))
        for (k, c) in columns.columns.enumerated() {
            switch k {
            case 2:
                w.uvarint(UInt64(c.count + uuids.count))
                w.raw(c.bytes)
                w.planes(uuids, width: 16)
            case 5:
                w.uvarint(UInt64(hlcs.count))
                w.planes(hlcs, width: 8)
            case 7:
                w.uvarint(UInt64(groups.reduce(0) { $0 + $1.count }))
                for g in groups { w.raw(g) }
            default:
                w.uvarint(UInt64(c.count))
                w.raw(c.bytes)
            }
        }
    }

    struct Mark {
        var counts: [Int]
        var itemCount: Int
        var symbols: (Int, Int)
        var last: (Int64, Int64)
        var uuids: Int
        var groups: [Int]
    }

    func mark() -> Mark {
        Mark(counts: columns.columnCounts(), itemCount: count, symbols: (collections.count, scopes.count), last: (lastVersion, lastHLC),
             uuids: uuids.count, groups: groups.map(\.count))
    }

    mutating func rollback(to mark: Mark) {
        columns.truncate(to: mark.counts, itemCount: mark.itemCount)
        collections.truncate(to: mark.symbols.0)
        scopes.truncate(to: mark.symbols.1)
        (lastVersion, lastHLC) = mark.last
        if grouped {
            uuids.removeSubrange(mark.uuids...)
            hlcs.removeSubrange((8 * mark.itemCount)...)
            groups.removeSubrange(mark.groups.count...)
            for g in groups.indices where groups[g].count > mark.groups[g] { groups[g].removeSubrange(mark.groups[g]...) }
        }
    }

    static func decode(_ reader: inout ByteReader, _ context: DecodeContext, grouped: Bool) throws(WireError) -> [SyncResponse.PulledRecord] {
        let count = try reader.length(limit: context.limits.maxItems, what: "record count")
        if count == 0 { return [] }
        let columns = try openColumns(&reader, count: count, list: "records", names: names, context)
        if grouped { return try decodeGrouped(columns, count: count, context) }
        var flagsColumn = columns[0], collectionColumn = columns[1], idColumn = columns[2], scopeColumn = columns[3]
        var versionColumn = columns[4], hlcColumn = columns[5], lengthColumn = columns[6], bodyColumn = columns[7]
        var collections = SymbolReadTable(), scopes = SymbolReadTable()
        let limits = context.limits
        var version: Int64 = 0
        var hlc: Int64 = 0
        var out: [SyncResponse.PulledRecord] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            do throws(WireError) {
                let flags = try flagsColumn.uvarint()
                if context.strict && flags & ~3 != 0 {
                    throw flagsColumn.fail(.malformed, "reserved flag bits set (0x\(String(flags, radix: 16)))")
                }
                let collection = try collectionColumn.sym(&collections, limits: limits, strict: context.strict)
                let id = try idColumn.compactID(limits: limits, strict: context.strict)
                let scope = try scopeColumn.sym(&scopes, limits: limits, strict: context.strict)
                version = version &+ (try versionColumn.svarint())
                hlc = hlc &+ (try hlcColumn.svarint())
                let body = flags & 2 != 0 ? try readBody(lengths: &lengthColumn, bodies: &bodyColumn, context) : nil
                out.append(SyncResponse.PulledRecord(
                    collection: collection, storedID: id, version: version, scope: scope, hlc: hlc, deleted: flags & 1 != 0, body: body
                ))
            } catch {
                throw inItem(error, "records", i)
            }
        }
        for column in [flagsColumn, collectionColumn, idColumn, scopeColumn, versionColumn, hlcColumn, lengthColumn, bodyColumn] {
            try expectEnd(column)
        }
        return out
    }

    /// Layout 2. A first pass reads flags, collections, id heads and body lengths, which
    /// place every body in its collection's group and every UUID in the planes; a second
    /// reads the rest and builds the records.
    private static func decodeGrouped(_ columns: [ByteReader], count: Int, _ context: DecodeContext) throws(WireError) -> [SyncResponse.PulledRecord] {
        var flagsColumn = columns[0], collectionColumn = columns[1], idColumn = columns[2], scopeColumn = columns[3]
        var versionColumn = columns[4], hlcColumn = columns[5], lengthColumn = columns[6]
        let bodyColumn = columns[7]
        var collections = SymbolReadTable(), scopes = SymbolReadTable()
        let limits = context.limits
        var flags: [UInt8] = [], groupOf: [Int] = [], lengths: [Int] = [], texts: [String?] = []
        flags.reserveCapacity(count); groupOf.reserveCapacity(count); lengths.reserveCapacity(count); texts.reserveCapacity(count)
        var groupSizes: [Int] = []
        var bodyBytes = 0
        var uuidCount = 0
        for i in 0..<count {
            do throws(WireError) {
                let f = try flagsColumn.uvarint()
                if context.strict && f & ~3 != 0 {
                    throw flagsColumn.fail(.malformed, "reserved flag bits set (0x\(String(f, radix: 16)))")
                }
                flags.append(UInt8(truncatingIfNeeded: f & 3))
                let group = try collectionColumn.symIndex(&collections, limits: limits, strict: context.strict)
                groupOf.append(group)
                if group == groupSizes.count { groupSizes.append(0) }
                let text = try idColumn.idHead(limits: limits, strict: context.strict)
                if text == nil { uuidCount += 1 }
                texts.append(text)
                if f & 2 != 0 {
                    let n = try lengthColumn.length(limit: limits.maxBodyBytes, availableElsewhere: bodyColumn.remaining - bodyBytes, what: "body length")
                    bodyBytes += n
                    groupSizes[group] += n
                    lengths.append(n)
                } else {
                    lengths.append(-1)
                }
            } catch {
                throw inItem(error, "records", i)
            }
        }
        try expectEnd(lengthColumn)
        // What follows the id heads is exactly the UUID planes; the HLC column is exactly its planes.
        guard idColumn.remaining == 16 * uuidCount else {
            throw idColumn.fail(idColumn.remaining < 16 * uuidCount ? .truncated : .trailingBytes,
                                "id planes hold \(idColumn.remaining) bytes, \(uuidCount) UUIDs need \(16 * uuidCount)")
        }
        guard hlcColumn.remaining == 8 * count else {
            throw hlcColumn.fail(hlcColumn.remaining < 8 * count ? .truncated : .trailingBytes,
                                 "hlc planes hold \(hlcColumn.remaining) bytes, \(count) records need \(8 * count)")
        }
        guard bodyColumn.remaining == bodyBytes else {
            throw bodyColumn.fail(.trailingBytes, "\(bodyColumn.remaining - bodyBytes) bytes left over after the last body")
        }
        var next: [Int] = []
        next.reserveCapacity(groupSizes.count)
        var offset = bodyColumn.position
        for size in groupSizes { next.append(offset); offset += size }
        let planes = idColumn.pointer(at: idColumn.position)
        let hlcPlanes = hlcColumn.pointer(at: hlcColumn.position)
        var version: Int64 = 0
        var uuid = 0
        var out: [SyncResponse.PulledRecord] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            do throws(WireError) {
                let id: CompactID
                if let text = texts[i] {
                    id = .text(text)
                } else {
                    var high: UInt64 = 0, low: UInt64 = 0
                    for k in 0..<8 { high = high << 8 | UInt64(planes.load(fromByteOffset: k * uuidCount + uuid, as: UInt8.self)) }
                    for k in 8..<16 { low = low << 8 | UInt64(planes.load(fromByteOffset: k * uuidCount + uuid, as: UInt8.self)) }
                    uuid += 1
                    id = .uuid(high, low)
                }
                var h: UInt64 = 0
                for k in 0..<8 { h = h << 8 | UInt64(hlcPlanes.load(fromByteOffset: k * count + i, as: UInt8.self)) }
                let scope = try scopeColumn.sym(&scopes, limits: limits, strict: context.strict)
                version = version &+ (try versionColumn.svarint())
                var body: WireBytes? = nil
                if lengths[i] >= 0 {
                    let group = groupOf[i]
                    body = WireBytes(storage: context.storage, offset: context.payloadOffset + next[group], count: lengths[i])
                    next[group] += lengths[i]
                }
                out.append(SyncResponse.PulledRecord(
                    collection: collections.values[groupOf[i]], storedID: id, version: version, scope: scope, hlc: Int64(bitPattern: h),
                    deleted: flags[i] & 1 != 0, body: body
                ))
            } catch {
                throw inItem(error, "records", i)
            }
        }
        for column in [flagsColumn, collectionColumn, scopeColumn, versionColumn] {
            try expectEnd(column)
        }
        return out
    }
}

// MARK: - Conflicts

/// The columns of `SyncResponse.conflicts`.
struct ConflictListWriter {
    static let names = ["flags", "conflict_id", "collection", "id", "server_version", "base_version", "body_length", "body"]
    var columns = ColumnsWriter(columnCount: 8)
    var collections = SymbolTable()

    var count: Int { columns.count }
    var encodedSize: Int { columns.encodedSize }

    mutating func append(_ conflict: SyncResponse.ConflictInfo) {
        let flags = (conflict.localBody != nil ? 1 : 0) | (conflict.serverBody != nil ? 2 : 0) | (conflict.baseBody != nil ? 4 : 0)
        columns.columns[0].uvarint(UInt64(flags))
        columns.columns[1].id(conflict.conflictID)
        columns.columns[2].sym(conflict.collection, &collections)
        columns.columns[3].id(conflict.id)
        columns.columns[4].svarint(conflict.serverVersion)
        columns.columns[5].svarint(conflict.baseVersion)
        for body in [conflict.localBody, conflict.serverBody, conflict.baseBody] {
            if let body {
                columns.columns[6].uvarint(UInt64(body.count))
                body.withUnsafeBytes { columns.columns[7].raw($0) }
            }
        }
        columns.count += 1
    }

    struct Mark {
        var counts: [Int]
        var itemCount: Int
        var collections: Int
    }

    func mark() -> Mark { Mark(counts: columns.columnCounts(), itemCount: count, collections: collections.count) }

    mutating func rollback(to mark: Mark) {
        columns.truncate(to: mark.counts, itemCount: mark.itemCount)
        collections.truncate(to: mark.collections)
    }

    static func decode(_ reader: inout ByteReader, _ context: DecodeContext) throws(WireError) -> [SyncResponse.ConflictInfo] {
        let count = try reader.length(limit: context.limits.maxItems, what: "conflict count")
        if count == 0 { return [] }
        let columns = try openColumns(&reader, count: count, list: "conflicts", names: names, context)
        var flagsColumn = columns[0], conflictColumn = columns[1], collectionColumn = columns[2], idColumn = columns[3]
        var serverColumn = columns[4], baseColumn = columns[5], lengthColumn = columns[6], bodyColumn = columns[7]
        var collections = SymbolReadTable()
        let limits = context.limits
        var out: [SyncResponse.ConflictInfo] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            do throws(WireError) {
                let flags = try flagsColumn.uvarint()
                if context.strict && flags & ~7 != 0 {
                    throw flagsColumn.fail(.malformed, "reserved flag bits set (0x\(String(flags, radix: 16)))")
                }
                let conflictID = try conflictColumn.id(limits: limits, strict: context.strict)
                let collection = try collectionColumn.sym(&collections, limits: limits, strict: context.strict)
                let id = try idColumn.id(limits: limits, strict: context.strict)
                let serverVersion = try serverColumn.svarint()
                let baseVersion = try baseColumn.svarint()
                let local = flags & 1 != 0 ? try readBody(lengths: &lengthColumn, bodies: &bodyColumn, context) : nil
                let server = flags & 2 != 0 ? try readBody(lengths: &lengthColumn, bodies: &bodyColumn, context) : nil
                let base = flags & 4 != 0 ? try readBody(lengths: &lengthColumn, bodies: &bodyColumn, context) : nil
                out.append(SyncResponse.ConflictInfo(
                    conflictID: conflictID, collection: collection, id: id, serverVersion: serverVersion,
                    baseVersion: baseVersion, localBody: local, serverBody: server, baseBody: base
                ))
            } catch {
                throw inItem(error, "conflicts", i)
            }
        }
        for column in [flagsColumn, conflictColumn, collectionColumn, idColumn, serverColumn, baseColumn, lengthColumn, bodyColumn] {
            try expectEnd(column)
        }
        return out
    }
}
