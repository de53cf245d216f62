import NIOCore
import PierStore
import PostgresNIO

/// Typed access to the cells of one result row; a cell of the wrong type is
/// `.internalError` (the schema and the queries are Pier's own).
struct Columns {
    private let cells: [PostgresCell]

    init(_ row: PostgresRow) {
        cells = Array(row)
    }

    private func decode<T: PostgresDecodable>(_ index: Int, _ type: T.Type) throws(PierError) -> T {
        do {
            return try cells[index].decode(T.self)
        } catch {
            throw PierError(.internalError, "PostgreSQL column \(index) (\(cells[index].columnName)) is not a \(T.self)",
                            underlying: String(reflecting: error))
        }
    }

    func int(_ index: Int) throws(PierError) -> Int64 { try decode(index, Int64.self) }
    func optionalInt(_ index: Int) throws(PierError) -> Int64? { try decode(index, Int64?.self) }
    func bool(_ index: Int) throws(PierError) -> Bool { try decode(index, Bool.self) }
    func string(_ index: Int) throws(PierError) -> String { try decode(index, String.self) }

    /// A bytea cell as bytes; nil for NULL.
    func bytes(_ index: Int) throws(PierError) -> [UInt8]? {
        guard let buffer = try decode(index, ByteBuffer?.self) else { return nil }
        return Array(buffer.readableBytesView)
    }
}

extension Optional where Wrapped == [UInt8] {
    /// Bytes to bind as bytea (NULL for nil).
    var byteBuffer: ByteBuffer? { map { ByteBuffer(bytes: $0) } }
}
