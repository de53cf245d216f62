// PierCrypto: encryption at rest for the local store (DESIGN.md section 9).
//
// Owns: the key header (KeyHeader.swift), page encryption (PageCipher.swift), the
// encrypting SQLite VFS (CipherVFS.swift), and the file operations below: opening,
// changing the passphrase, rotating the data key, encrypting a plain store and decrypting
// to a plain copy. Depends on PierStore (errors, connections), SQLite and swift-crypto
// (AES-GCM, SHA-256, PBKDF2), which uses FoundationEssentials only.
public import PierStore
internal import CSQLite
internal import Crypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Encryption at rest for a store: pass it as `StoreOptions.encryption`.
///
/// ```swift
/// var options = StoreOptions()
/// options.encryption = Encryption(.passphrase("correct horse battery staple"))
/// let db = try Database(path: "field.pier", options: options)
/// ```
public struct Encryption: StoreEncryption, Sendable {
    public var key: StoreKey
    /// PBKDF2 iterations used when this passphrase wraps a data key (a new file, a changed
    /// passphrase, a rekey). Opening reads the count from the file.
    public var iterations: Int

    public init(_ key: StoreKey, iterations: Int = StoreKey.defaultIterations) {
        self.key = key
        self.iterations = iterations
    }

    public func prepare(path: String, readOnly: Bool) throws(PierError) -> EncryptedOpening {
        do throws(HeaderFailure) {
            try CipherVFS.register()
            if !readOnly && (fileSize(path) ?? 0) == 0 {
                try Encryption.createHeader(path: path, key: key, iterations: iterations, pageSize: HeaderLayout.defaultPageSize)
            }
            let (header, dataKey) = try Encryption.unlock(path: path, key: key)
            guard let cipher = PageCipher(key: dataKey, fileID: header.fileID, pageSize: header.pageSize, reserve: header.reserveBytes) else {
                throw .invalid("cannot set up AES-256-GCM")
            }
            let handle = CipherVFS.add(cipher)
            if header.needsRepair && !readOnly {
                do throws(HeaderFailure) {
                    try Encryption.finishInterruptedChange(path: path, handle: handle, slot: header.slot)
                } catch {
                    CipherVFS.remove(handle)
                    throw error
                }
            }
            return EncryptedOpening(
                sqliteFilename: CipherVFS.uri(path: path, handle: handle), pageSize: header.pageSize,
                reserveBytes: header.reserveBytes, release: { CipherVFS.remove(handle) })
        } catch {
            throw error.pierError(path)
        }
    }

    // MARK: Inspection

    /// What the key header of `path` says, without the key; nil for a file that is not
    /// encrypted.
    public static func info(path: String) throws(PierError) -> EncryptionInfo? {
        guard let file = RawFile(path: path, writable: false) else {
            throw PierError(.notFound, "cannot open \(path)")
        }
        guard let prefix = file.read(count: 16, at: 0), KeyHeader.isEncrypted(prefix: prefix) else { return nil }
        guard let bytes = file.read(count: HeaderLayout.size, at: 0) else {
            throw PierError(.corrupt, "\(path): the key header is truncated")
        }
        do throws(HeaderFailure) {
            let header = try KeyHeader.parse(bytes)
            return EncryptionInfo(
                cipher: "AES-256-GCM", kdf: header.kdf, iterations: header.iterations, pageSize: header.pageSize,
                reserveBytes: header.reserveBytes, headerBytes: HeaderLayout.size, keyGeneration: header.generation,
                interruptedKeyChange: header.needsRepair)
        } catch {
            throw error.pierError(path)
        }
    }

    // MARK: Changing keys

    /// Rewraps the data key under `newKey`: O(1), the pages are not touched, and other
    /// connections may stay open. A crash leaves either the old or the new key working.
    public static func changeKey(path: String, from current: Encryption, to newKey: Encryption) throws(PierError) {
        do throws(HeaderFailure) {
            try KeyHeader.validate(newKey.key, iterations: newKey.iterations)
            // Hold the database write lock so two changes cannot interleave their slots.
            let connection = try open(path: path, key: current, readOnly: false)
            defer { connection.close() }
            try HeaderFailure.wrap { () throws(PierError) in try connection.connection.execute("BEGIN IMMEDIATE") }
            defer { try? connection.connection.execute("ROLLBACK") }
            var (header, dataKey) = try unlock(path: path, key: current.key)
            header.slot = try header.makeSlot(wrapping: dataKey, with: newKey.key, iterations: newKey.iterations, generation: header.generation + 1)
            // The slot that is not current first (then a crash keeps the old key working),
            // then the current one, each synced.
            let current = header.currentSlotIndex
            try writeSlots(path: path, header: header, order: [1 - current, current])
        } catch {
            throw error.pierError(path)
        }
    }

    /// Rotates the data key: every page is rewritten under a new random data key (and a new
    /// file id) into a temporary file beside `path`, which is synced and renamed over it.
    /// A crash leaves either the old file (old key) or the new one (`newKey`, or the
    /// current key when nil). Needs the store to itself: no other connection may have it
    /// open (`.busy` otherwise). Needs free space for a second copy.
    public static func rekey(path: String, key current: Encryption, newKey: Encryption? = nil) throws(PierError) {
        let target = newKey ?? current
        do throws(HeaderFailure) {
            try KeyHeader.validate(target.key, iterations: target.iterations)
            let source = try open(path: path, key: current, readOnly: false)
            defer { source.close() }
            try rewrite(from: source, path: path, to: nil, key: target)
        } catch {
            throw error.pierError(path)
        }
    }

    /// Encrypts the plain store at `path` into `destination` (which must not exist), or in
    /// place (crash-safely, through a temporary file and a rename) when it is nil.
    public static func encrypt(path: String, to destination: String? = nil, key: Encryption) throws(PierError) {
        do throws(HeaderFailure) {
            try KeyHeader.validate(key.key, iterations: key.iterations)
            guard fileSize(path) != nil else { throw .io("no file at \(path)") }
            if isEncryptedFile(path) { throw .invalid("\(path) is already encrypted; use rekey or changeKey") }
            let source = try HeaderFailure.wrap { () throws(PierError) in
                OpenFile(connection: try Connection(path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, displayPath: path), release: nil)
            }
            defer { source.close() }
            try rewrite(from: source, path: path, to: destination, key: key)
        } catch {
            throw error.pierError(path)
        }
    }

    /// Writes a plain (unencrypted) copy of the encrypted store at `path` to `destination`,
    /// which must not exist. The original is not modified.
    public static func decrypt(path: String, key: Encryption, to destination: String) throws(PierError) {
        do throws(HeaderFailure) {
            guard fileSize(destination) == nil else { throw .invalid("\(destination) already exists; choose a new file for the plain copy") }
            let source = try open(path: path, key: key, readOnly: true)
            defer { source.close() }
            guard let plain = sqlite3_vfs_find(nil).map({ String(cString: $0.pointee.zName) }) else { throw .io("no default SQLite VFS") }
            do throws(HeaderFailure) {
                try HeaderFailure.wrap { () throws(PierError) in
                    try source.connection.execute("PRAGMA temp_store=MEMORY")
                    try source.connection.execute("VACUUM INTO \(sqlQuote(plainURI(destination, vfs: plain)))")
                }
                try syncFile(destination)
            } catch {
                // No partial plain copy is left behind (a damaged page stops the copy).
                _ = unlink(destination)
                throw error
            }
            syncDirectory(of: destination)
        } catch {
            throw error.pierError(path)
        }
    }

    // MARK: Internals

    struct OpenFile {
        let connection: Connection
        let release: (@Sendable () -> Void)?

        func close() {
            connection.close()
            release?()
        }
    }

    /// A private connection to an encrypted file (not a Pier store: any SQLite content).
    static func open(path: String, key: Encryption, readOnly: Bool) throws(HeaderFailure) -> OpenFile {
        guard fileSize(path) != nil else { throw .io("no file at \(path)") }
        let opening = try HeaderFailure.wrap { () throws(PierError) in try key.prepare(path: path, readOnly: true) }
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_URI
        do {
            let connection = try Connection(path: opening.sqliteFilename, flags: flags, displayPath: path)
            sqlite3_busy_timeout(connection.db, 5000)
            return OpenFile(connection: connection, release: opening.release)
        } catch {
            opening.release()
            throw .pier(error)
        }
    }

    /// Copies the database behind `source` into a new encrypted file under `key`: to
    /// `destination`, or over `path` through a temporary file and a rename.
    private static func rewrite(from source: OpenFile, path: String, to destination: String?, key: Encryption) throws(HeaderFailure) {
        try CipherVFS.register()
        if let destination, fileSize(destination) != nil {
            throw .invalid("\(destination) already exists; choose a new file")
        }
        let target = destination ?? path + ".pier-rewrite"
        let connection = source.connection
        if destination == nil {
            // In place: take the file for ourselves. In WAL mode every open connection holds
            // a shared lock, so this fails while any other connection has it open. (A
            // connection still opening finds out afterwards: Store checks that the file it
            // opened was not renamed over meanwhile.)
            try HeaderFailure.wrap { () throws(PierError) in
                try connection.execute("PRAGMA locking_mode=EXCLUSIVE")
                do throws(PierError) {
                    try connection.execute("BEGIN EXCLUSIVE; COMMIT")
                } catch where error.code == .busy {
                    throw PierError(.busy, "\(path) is open in another connection; close every other handle first", underlying: error.message)
                }
                // Leave WAL mode now, while the file is ours: the WAL is checkpointed and
                // deleted before the rename, so closing this connection afterwards cannot
                // delete (by name) a WAL that belongs to the new file.
                if try scalar(connection, "PRAGMA journal_mode") == "wal" {
                    guard try scalar(connection, "PRAGMA journal_mode=DELETE") == "delete" else {
                        throw PierError(.busy, "cannot leave WAL mode on \(path) to rewrite it")
                    }
                }
            }
            _ = unlink(target)  // a leftover of an interrupted rewrite (we hold the lock now)
        }
        let pageSize = try HeaderFailure.wrap { () throws(PierError) in Int(try scalar(connection, "PRAGMA page_size")) ?? 4096 }
        try createHeader(path: target, key: key.key, iterations: key.iterations, pageSize: pageSize)
        var finished = false
        defer { if !finished { _ = unlink(target) } }
        let (header, dataKey) = try unlock(path: target, key: key.key)
        guard let cipher = PageCipher(key: dataKey, fileID: header.fileID, pageSize: header.pageSize, reserve: header.reserveBytes) else {
            throw .invalid("cannot set up AES-256-GCM")
        }
        let handle = CipherVFS.add(cipher)
        defer { CipherVFS.remove(handle) }
        try HeaderFailure.wrap { () throws(PierError) in
            var reserve = Int32(header.reserveBytes)
            _ = sqlite3_file_control(connection.db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve)
            try connection.execute("PRAGMA temp_store=MEMORY")
            try connection.execute("VACUUM INTO \(sqlQuote(CipherVFS.uri(path: target, handle: handle)))")
        }
        try syncFile(target)
        if destination == nil {
            guard rename(target, path) == 0 else { throw .io("cannot rename \(target) over \(path): errno \(errno)") }
            syncDirectory(of: path)
        }
        finished = true
    }

    /// Writes the key header of a new file. A missing file is created whole (header
    /// written to a temporary name, synced, then linked into place, so a racing creator
    /// either wins or finds a complete header); an empty one gets the header written in.
    static func createHeader(path: String, key: StoreKey, iterations: Int, pageSize: Int) throws(HeaderFailure) {
        let (header, _) = try KeyHeader.create(key: key, iterations: iterations, pageSize: pageSize)
        let bytes = header.encode()
        if let existing = RawFile(path: path, writable: true) {
            guard existing.size == 0 else { return }
            guard existing.write(bytes, at: 0), existing.sync() else { throw .io("cannot write the key header of \(path)") }
            return
        }
        let temporary = path + ".pier-new-\(UInt32.random(in: 0 ... .max))"
        let fd = posixOpen(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("cannot create \(temporary): errno \(errno)") }
        defer { _ = unlink(temporary) }
        let written = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress, bytes.count) }
        let synced = fsync(fd) == 0
        posixClose(fd)
        guard written == bytes.count, synced else { throw .io("cannot write the key header of \(path)") }
        if link(temporary, path) != 0 {
            guard errno == EEXIST else { throw .io("cannot create \(path): errno \(errno)") }
            return  // another process created it first: use theirs
        }
        syncDirectory(of: path)
    }

    /// Reads the header of `path` and unwraps its data key.
    static func unlock(path: String, key: StoreKey) throws(HeaderFailure) -> (KeyHeader, SymmetricKey) {
        guard let file = RawFile(path: path, writable: false) else { throw .io("cannot open \(path)") }
        guard let bytes = file.read(count: HeaderLayout.size, at: 0) else {
            let prefix = file.read(count: 16, at: 0) ?? []
            if prefix.starts(with: Array("SQLite format 3".utf8)) { throw .notEncrypted("the file is a plain SQLite database") }
            if KeyHeader.isEncrypted(prefix: prefix) { throw .damaged("the key header is truncated") }
            throw .notEncrypted("the file has no Pier key header")
        }
        let header = try KeyHeader.parse(bytes)
        let kek = try KeyHeader.deriveKEK(key, kdf: header.kdf, iterations: header.iterations, salt: header.slot.salt)
        return (header, try header.unwrap(with: kek))
    }

    /// Copies the current slot over the other one, under the database write lock (so it
    /// cannot undo a key change another process makes meanwhile): an interrupted passphrase
    /// change is finished, and the old passphrase's wrap does not linger.
    static func finishInterruptedChange(path: String, handle: UInt64, slot: KeySlot) throws(HeaderFailure) {
        let connection = try HeaderFailure.wrap { () throws(PierError) in
            try Connection(path: CipherVFS.uri(path: path, handle: handle), flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, displayPath: path)
        }
        defer { connection.close() }
        sqlite3_busy_timeout(connection.db, 5000)
        try HeaderFailure.wrap { () throws(PierError) in try connection.execute("BEGIN IMMEDIATE") }
        defer { try? connection.execute("ROLLBACK") }
        guard let file = RawFile(path: path, writable: false), let bytes = file.read(count: HeaderLayout.size, at: 0) else {
            throw .io("cannot read the key header of \(path)")
        }
        var header = try KeyHeader.parse(bytes)
        // Only when the slot we unlocked is still the current one and the other differs.
        guard header.needsRepair, header.slot == slot else { return }
        header.needsRepair = false
        try writeSlots(path: path, header: header, order: [1 - header.currentSlotIndex])
    }

    /// Writes `header.slot` into the slots in `order`, syncing after each.
    static func writeSlots(path: String, header: KeyHeader, order: [Int]) throws(HeaderFailure) {
        guard let file = RawFile(path: path, writable: true) else { throw .io("cannot open \(path) for writing") }
        let encoded = header.encodeSlot(header.slot)
        for index in order {
            guard file.write(encoded, at: Int64(HeaderLayout.slotOffsets[index])), file.sync() else {
                throw .io("cannot write key slot \(index) of \(path)")
            }
        }
    }

    private static func scalar(_ connection: Connection, _ sql: String) throws(PierError) -> String {
        let statement = try connection.prepare(sql)
        defer { statement.reset() }
        guard try statement.step() else { return "" }
        return sqlite3_column_text(statement.stmt, 0).map { String(cString: $0) } ?? ""
    }

    private static func plainURI(_ path: String, vfs: String) -> String {
        let uri = CipherVFS.uri(path: path, handle: 0)
        return String(uri[..<uri.firstIndex(of: "?")!]) + "?vfs=\(vfs)"
    }

    private static func sqlQuote(_ text: String) -> String {
        "'" + text.replacing("'", with: "''") + "'"
    }

    private static func syncFile(_ path: String) throws(HeaderFailure) {
        // The file is not open in any SQLite connection of this process (VACUUM INTO
        // closed it), so a plain descriptor is safe here.
        let fd = posixOpen(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("cannot open \(path) to sync it: errno \(errno)") }
        defer { posixClose(fd) }
        guard fsync(fd) == 0 else { throw .io("cannot sync \(path): errno \(errno)") }
    }

    private static func syncDirectory(of path: String) {
        let absolute = CipherVFS.absolutePath(path)
        let directory = absolute.lastIndex(of: "/").map { String(absolute[..<$0]) } ?? "."
        let fd = posixOpen(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        posixClose(fd)
    }
}

/// What `Encryption.info` reads from a key header.
public struct EncryptionInfo: Sendable, Equatable {
    public var cipher: String
    public var kdf: KeyDerivation
    /// PBKDF2 iterations (0 for a raw key).
    public var iterations: Int
    public var pageSize: Int
    public var reserveBytes: Int
    public var headerBytes: Int
    /// Starts at 1; each passphrase change adds one.
    public var keyGeneration: UInt64
    /// True when a passphrase change was interrupted (finished at the next read-write open).
    public var interruptedKeyChange: Bool
}

extension HeaderFailure {
    static func wrap<T>(_ body: () throws(PierError) -> T) throws(HeaderFailure) -> T {
        do { return try body() } catch { throw .pier(error) }
    }

    func pierError(_ path: String) -> PierError {
        switch self {
        case .notEncrypted(let why):
            return PierError(.key, "\(path) is not encrypted (\(why)); open it without a key, or encrypt it first")
        case .damaged(let why): return PierError(.corrupt, "\(path): \(why)")
        case .wrongKey(let why): return PierError(.key, "\(path): \(why)")
        case .invalid(let why): return PierError(.invalid, why)
        case .io(let why): return PierError(.io, why)
        case .pier(let error): return error
        }
    }
}

// File-scope wrappers: inside `Encryption`, `open` names the static method.
private func posixOpen(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 { open(path, flags, mode) }
private func posixWrite(_ fd: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int { write(fd, bytes, count) }
private func posixClose(_ fd: Int32) { _ = close(fd) }
