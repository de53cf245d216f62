// The seam between the store and encryption at rest. PierStore knows only that an
// encrypted store is opened through another SQLite filename (a URI naming the encrypting
// VFS and its key) with reserved bytes on every page; PierCrypto supplies the rest.

/// Opens encrypted stores: implemented by PierCrypto's `Encryption`.
public protocol StoreEncryption: Sendable {
    /// Checks the key against an existing file (or, unless `readOnly`, writes the key header
    /// of a missing or empty one) and says how SQLite must open it.
    func prepare(path: String, readOnly: Bool) throws(PierError) -> EncryptedOpening
}

/// How to open one encrypted file; `release` runs once the connection is closed.
public struct EncryptedOpening: Sendable {
    public var sqliteFilename: String
    public var pageSize: Int
    public var reserveBytes: Int
    public var release: @Sendable () -> Void

    public init(sqliteFilename: String, pageSize: Int, reserveBytes: Int, release: @escaping @Sendable () -> Void) {
        self.sqliteFilename = sqliteFilename
        self.pageSize = pageSize
        self.reserveBytes = reserveBytes
        self.release = release
    }
}

/// The first 16 bytes of a file encrypted by Pier (the key header's magic).
public let encryptedFileMagic: [UInt8] = Array("Pier encrypted".utf8) + [0, 1]

/// True when the file at `path` starts with Pier's key header magic. Needs no key.
public func isEncryptedFile(_ path: String) -> Bool {
    guard let file = RawFile(path: path, writable: false), let prefix = file.read(count: 16, at: 0) else { return false }
    return prefix == encryptedFileMagic
}
