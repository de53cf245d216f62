// The encrypting VFS shim "pier-aes256gcm". It wraps the default VFS and is registered
// without becoming the default, so other SQLite users in the process are unaffected.
//
// What it does to each file SQLite opens through it:
//   - main database: the physical file starts with the 4096-byte key header; SQLite's page
//     n lives at 4096 + (n-1)*pageSize, encrypted (PageCipher). Only whole-page writes are
//     accepted; partial reads (the 100-byte header read) decrypt the whole page.
//   - WAL: the 32-byte WAL header and the 24-byte frame headers stay as SQLite wrote them
//     (salts, page numbers, checksums: no content); every frame's page is encrypted.
//   - rollback journal: every page record's page is encrypted (a page-sized access at an
//     offset = 4 mod 8); journal headers and record numbers stay as written.
//   - anything else (temporary databases, statement journals, super-journals) is refused:
//     Pier keeps temporary storage in memory (temp_store=MEMORY).
// A page that fails authentication is PIER_SQLITE_IOERR_DATA (Pier's PIER_ECORRUPT); SQLite
// never receives ciphertext or forged data as a page.
internal import CSQLite
internal import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

internal enum CipherVFS {
    static let name = "pier-aes256gcm"
    static let uriKeyParameter = "pier_key"

    /// Registers the VFS once per process (idempotent, thread-safe).
    static func register() throws(HeaderFailure) {
        guard registered else { throw .io("cannot register the SQLite VFS \(name)") }
    }

    private static let registered: Bool = {
        guard let parent = sqlite3_vfs_find(nil) else { return false }
        root = parent
        let io = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
        io.initialize(to: makeIOMethods())
        methods = io
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        vfs.initialize(to: makeVFS(parent))
        return sqlite3_vfs_register(vfs, 0) == SQLITE_OK
    }()

    // MARK: Key registry: the URI parameter pier_key=<n> names a PageCipher here.

    private static let keys = Mutex<(next: UInt64, ciphers: [UInt64: PageCipher])>((1, [:]))

    static func add(_ cipher: PageCipher) -> UInt64 {
        keys.withLock { state in
            let handle = state.next
            state.next += 1
            state.ciphers[handle] = cipher
            return handle
        }
    }

    static func remove(_ handle: UInt64) {
        _ = keys.withLock { $0.ciphers.removeValue(forKey: handle) }
    }

    static func cipher(_ handle: UInt64) -> PageCipher? {
        keys.withLock { $0.ciphers[handle] }
    }

    /// A URI that opens `path` through this VFS with the registered cipher `handle`.
    static func uri(path: String, handle: UInt64) -> String {
        var out = "file://"  // an empty authority, so a path starting with "//" stays a path
        for byte in absolutePath(path).utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "/"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%"
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 15)]))
            }
        }
        return out + "?vfs=\(name)&\(uriKeyParameter)=\(handle)"
    }

    static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cwd + "/" + path
    }

    nonisolated(unsafe) static var root: UnsafeMutablePointer<sqlite3_vfs>!
    nonisolated(unsafe) static var methods: UnsafeMutablePointer<sqlite3_io_methods>!

    /// Our sqlite3_file: { pMethods, Unmanaged<CipherFile>, the parent VFS's file... }.
    static let fileHeaderSize = 16

    static func file(_ p: UnsafeMutablePointer<sqlite3_file>) -> CipherFile {
        let raw = UnsafeMutableRawPointer(p).load(fromByteOffset: 8, as: UnsafeMutableRawPointer.self)
        return Unmanaged<CipherFile>.fromOpaque(raw).takeUnretainedValue()
    }

    private static func makeVFS(_ parent: UnsafeMutablePointer<sqlite3_vfs>) -> sqlite3_vfs {
        var vfs = sqlite3_vfs()
        vfs.iVersion = 2
        vfs.szOsFile = Int32(fileHeaderSize) + parent.pointee.szOsFile
        vfs.mxPathname = parent.pointee.mxPathname
        vfs.zName = UnsafePointer(strdup(name))
        vfs.xOpen = { _, name, file, flags, outFlags in CipherVFS.open(name, file, flags, outFlags) }
        vfs.xDelete = { _, name, sync in CipherVFS.root.pointee.xDelete(CipherVFS.root, name, sync) }
        vfs.xAccess = { _, name, flags, out in CipherVFS.root.pointee.xAccess(CipherVFS.root, name, flags, out) }
        vfs.xFullPathname = { _, name, n, out in CipherVFS.root.pointee.xFullPathname(CipherVFS.root, name, n, out) }
        vfs.xDlOpen = { _, name in CipherVFS.root.pointee.xDlOpen(CipherVFS.root, name) }
        vfs.xDlError = { _, n, out in CipherVFS.root.pointee.xDlError(CipherVFS.root, n, out) }
        vfs.xDlSym = { _, handle, symbol in CipherVFS.root.pointee.xDlSym(CipherVFS.root, handle, symbol) }
        vfs.xDlClose = { _, handle in CipherVFS.root.pointee.xDlClose(CipherVFS.root, handle) }
        vfs.xRandomness = { _, n, out in CipherVFS.root.pointee.xRandomness(CipherVFS.root, n, out) }
        vfs.xSleep = { _, micros in CipherVFS.root.pointee.xSleep(CipherVFS.root, micros) }
        vfs.xCurrentTime = { _, out in CipherVFS.root.pointee.xCurrentTime(CipherVFS.root, out) }
        vfs.xGetLastError = { _, n, out in CipherVFS.root.pointee.xGetLastError?(CipherVFS.root, n, out) ?? 0 }
        vfs.xCurrentTimeInt64 = { _, out in CipherVFS.root.pointee.xCurrentTimeInt64(CipherVFS.root, out) }
        return vfs
    }

    private static func open(
        _ name: UnsafePointer<CChar>?, _ file: UnsafeMutablePointer<sqlite3_file>?, _ flags: Int32, _ outFlags: UnsafeMutablePointer<Int32>?
    ) -> Int32 {
        guard let file else { return SQLITE_CANTOPEN }
        file.pointee.pMethods = nil
        let kind: FileKind
        if flags & SQLITE_OPEN_MAIN_DB != 0 {
            kind = .database
        } else if flags & SQLITE_OPEN_WAL != 0 {
            kind = .wal
        } else if flags & SQLITE_OPEN_MAIN_JOURNAL != 0 {
            kind = .journal
        } else {
            pier_sqlite_log(SQLITE_CANTOPEN, "\(CipherVFS.name): refusing a temporary file on disk (open flags \(flags)); use temp_store=MEMORY")
            return SQLITE_CANTOPEN
        }
        guard let name else { return SQLITE_CANTOPEN }
        let cipher: PageCipher
        if kind == .database {
            guard let text = sqlite3_uri_parameter(name, uriKeyParameter), let handle = UInt64(String(cString: text)),
                  let found = CipherVFS.cipher(handle) else {
                pier_sqlite_log(SQLITE_CANTOPEN, "\(CipherVFS.name): no key registered for this open")
                return SQLITE_CANTOPEN
            }
            cipher = found
        } else {
            guard let main = sqlite3_database_file_object(name), main.pointee.pMethods == UnsafePointer(methods) else {
                return SQLITE_CANTOPEN
            }
            cipher = CipherVFS.file(main).cipher
        }
        let under = UnsafeMutableRawPointer(file).advanced(by: fileHeaderSize).assumingMemoryBound(to: sqlite3_file.self)
        under.pointee.pMethods = nil
        let rc = root.pointee.xOpen(root, name, under, flags, outFlags)
        guard rc == SQLITE_OK else { return rc }
        let object = CipherFile(kind: kind, cipher: cipher, under: under)
        if kind == .database {
            let check = object.checkHeader()
            if check != SQLITE_OK {
                _ = under.pointee.pMethods?.pointee.xClose(under)
                return check
            }
        }
        UnsafeMutableRawPointer(file).storeBytes(of: Unmanaged.passRetained(object).toOpaque(), toByteOffset: 8, as: UnsafeMutableRawPointer.self)
        file.pointee.pMethods = UnsafePointer(methods)
        return SQLITE_OK
    }

    private static func makeIOMethods() -> sqlite3_io_methods {
        var io = sqlite3_io_methods()
        io.iVersion = 2  // no xFetch: pages are always read (and decrypted) through xRead
        io.xClose = { file in
            let raw = UnsafeMutableRawPointer(file!).load(fromByteOffset: 8, as: UnsafeMutableRawPointer.self)
            let object = Unmanaged<CipherFile>.fromOpaque(raw)
            let rc = object.takeUnretainedValue().close()
            object.release()
            return rc
        }
        io.xRead = { file, buffer, amount, offset in CipherVFS.file(file!).read(buffer!, Int(amount), offset) }
        io.xWrite = { file, buffer, amount, offset in CipherVFS.file(file!).write(buffer!, Int(amount), offset) }
        io.xTruncate = { file, size in CipherVFS.file(file!).truncate(size) }
        io.xSync = { file, flags in let u = CipherVFS.file(file!).under; return u.pointee.pMethods.pointee.xSync(u, flags) }
        io.xFileSize = { file, out in CipherVFS.file(file!).fileSize(out!) }
        io.xLock = { file, lock in let u = CipherVFS.file(file!).under; return u.pointee.pMethods.pointee.xLock(u, lock) }
        io.xUnlock = { file, lock in let u = CipherVFS.file(file!).under; return u.pointee.pMethods.pointee.xUnlock(u, lock) }
        io.xCheckReservedLock = { file, out in
            let u = CipherVFS.file(file!).under
            return u.pointee.pMethods.pointee.xCheckReservedLock(u, out)
        }
        io.xFileControl = { file, op, arg in CipherVFS.file(file!).fileControl(op, arg) }
        io.xSectorSize = { file in let u = CipherVFS.file(file!).under; return u.pointee.pMethods.pointee.xSectorSize(u) }
        io.xDeviceCharacteristics = { file in
            let u = CipherVFS.file(file!).under
            // No batch-atomic writes: every page goes through xWrite as a whole page.
            return u.pointee.pMethods.pointee.xDeviceCharacteristics(u) & ~Int32(SQLITE_IOCAP_BATCH_ATOMIC)
        }
        io.xShmMap = { file, region, size, extend, out in
            let u = CipherVFS.file(file!).under
            return u.pointee.pMethods.pointee.xShmMap(u, region, size, extend, out)
        }
        io.xShmLock = { file, offset, n, flags in
            let u = CipherVFS.file(file!).under
            return u.pointee.pMethods.pointee.xShmLock(u, offset, n, flags)
        }
        io.xShmBarrier = { file in let u = CipherVFS.file(file!).under; u.pointee.pMethods.pointee.xShmBarrier(u) }
        io.xShmUnmap = { file, delete in
            let u = CipherVFS.file(file!).under
            return u.pointee.pMethods.pointee.xShmUnmap(u, delete)
        }
        return io
    }
}

/// One file opened through the VFS.
final class CipherFile {
    let kind: FileKind
    let cipher: PageCipher
    let under: UnsafeMutablePointer<sqlite3_file>
    private let pageSize: Int
    private let headerSize = Int64(HeaderLayout.size)
    private let scratch: UnsafeMutableRawPointer
    private let scratch2: UnsafeMutableRawPointer

    init(kind: FileKind, cipher: PageCipher, under: UnsafeMutablePointer<sqlite3_file>) {
        self.kind = kind
        self.cipher = cipher
        self.under = under
        self.pageSize = cipher.pageSize
        scratch = UnsafeMutableRawPointer.allocate(byteCount: cipher.pageSize, alignment: 16)
        scratch2 = UnsafeMutableRawPointer.allocate(byteCount: cipher.pageSize, alignment: 16)
    }

    deinit {
        scratch.deallocate()
        scratch2.deallocate()
    }

    private var io: sqlite3_io_methods { under.pointee.pMethods.pointee }

    func close() -> Int32 {
        under.pointee.pMethods?.pointee.xClose(under) ?? SQLITE_OK
    }

    /// The database file must start with a key header naming the cipher's file id.
    func checkHeader() -> Int32 {
        let header = UnsafeMutableRawPointer.allocate(byteCount: HeaderLayout.size, alignment: 16)
        defer { header.deallocate() }
        let rc = io.xRead(under, header, Int32(HeaderLayout.size), 0)
        guard rc == SQLITE_OK else {
            pier_sqlite_log(SQLITE_CANTOPEN, "\(CipherVFS.name): the file has no complete key header")
            return SQLITE_CANTOPEN
        }
        let bytes = Array(UnsafeRawBufferPointer(start: header, count: 40))
        guard KeyHeader.isEncrypted(prefix: bytes), Array(bytes[24..<40]) == cipher.fileID else {
            pier_sqlite_log(SQLITE_NOTADB, "\(CipherVFS.name): the key header does not belong to the key given")
            return SQLITE_NOTADB
        }
        return SQLITE_OK
    }

    private func physicalSize() -> Int64 {
        var size: Int64 = 0
        return io.xFileSize(under, &size) == SQLITE_OK ? size : 0
    }

    func fileSize(_ out: UnsafeMutablePointer<Int64>) -> Int32 {
        var size: Int64 = 0
        let rc = io.xFileSize(under, &size)
        guard rc == SQLITE_OK else { return rc }
        out.pointee = kind == .database ? max(0, size - headerSize) : size
        return SQLITE_OK
    }

    func truncate(_ size: Int64) -> Int32 {
        io.xTruncate(under, kind == .database ? size + headerSize : size)
    }

    func fileControl(_ op: Int32, _ arg: UnsafeMutableRawPointer?) -> Int32 {
        if op == SQLITE_FCNTL_SIZE_HINT, kind == .database, let arg {
            var hint = arg.load(as: Int64.self) + headerSize
            return io.xFileControl(under, op, &hint)
        }
        return io.xFileControl(under, op, arg)
    }

    // MARK: Reads

    func read(_ buffer: UnsafeMutableRawPointer, _ amount: Int, _ offset: Int64) -> Int32 {
        switch kind {
        case .database: return readDatabase(buffer, amount, offset)
        case .wal: return readWAL(buffer, amount, offset)
        case .journal: return readJournal(buffer, amount, offset)
        }
    }

    private func corrupt(_ what: String, _ offset: Int64) -> Int32 {
        pier_sqlite_log(PIER_SQLITE_IOERR_DATA, "\(CipherVFS.name): \(kind.name) \(what) at offset \(offset) fails authentication")
        return PIER_SQLITE_IOERR_DATA
    }

    /// Reads and decrypts database page `index` (0-based) into `into`.
    private func readPage(_ index: Int64, into: UnsafeMutableRawPointer) -> Int32 {
        let logical = index * Int64(pageSize)
        let rc = io.xRead(under, into, Int32(pageSize), headerSize + logical)
        if rc == PIER_SQLITE_IOERR_SHORT_READ {
            if headerSize + logical >= physicalSize() {
                into.initializeMemory(as: UInt8.self, repeating: 0, count: pageSize)
                return PIER_SQLITE_IOERR_SHORT_READ
            }
            return corrupt("page \(index + 1) (truncated)", logical)
        }
        guard rc == SQLITE_OK else { return rc }
        return cipher.open(into, kind: .database, offset: logical) ? SQLITE_OK : corrupt("page \(index + 1)", logical)
    }

    private func readDatabase(_ buffer: UnsafeMutableRawPointer, _ amount: Int, _ offset: Int64) -> Int32 {
        let size = Int64(pageSize)
        if amount == pageSize && offset % size == 0 {
            return readPage(offset / size, into: buffer)
        }
        var done = 0
        var result = SQLITE_OK
        while done < amount {
            let position = offset + Int64(done)
            let within = Int(position % size)
            let n = min(pageSize - within, amount - done)
            let rc = readPage(position / size, into: scratch)
            if rc == PIER_SQLITE_IOERR_SHORT_READ {
                result = rc
            } else if rc != SQLITE_OK {
                return rc
            }
            buffer.advanced(by: done).copyMemory(from: scratch.advanced(by: within), byteCount: n)
            done += n
        }
        return result
    }

    private var frameSize: Int64 { Int64(pageSize) + 24 }

    /// Offset of frame `k`'s page in the WAL.
    private func walPage(_ k: Int64) -> Int64 { 32 + k * frameSize + 24 }

    /// The last frame header SQLite wrote (it writes a frame's header, then its page).
    private var lastHeaderOffset: Int64 = -1
    private var lastHeader = [UInt8](repeating: 0, count: 24)

    /// The page number and salts of the frame whose page starts at `pageOffset`.
    private func walBinding(pageOffset: Int64) -> PageBinding? {
        if lastHeaderOffset == pageOffset - 24 {
            return lastHeader.withUnsafeBytes { PageBinding.walFrame(header: $0.baseAddress!) }
        }
        return withUnsafeTemporaryAllocation(byteCount: 24, alignment: 8) { header in
            io.xRead(under, header.baseAddress, 24, pageOffset - 24) == SQLITE_OK ? PageBinding.walFrame(header: header.baseAddress!) : nil
        }
    }

    private func readWAL(_ buffer: UnsafeMutableRawPointer, _ amount: Int, _ offset: Int64) -> Int32 {
        let rc = io.xRead(under, buffer, Int32(amount), offset)
        guard rc == SQLITE_OK || rc == PIER_SQLITE_IOERR_SHORT_READ else { return rc }
        let end = offset + Int64(amount)
        let validEnd = rc == SQLITE_OK ? end : min(end, physicalSize())
        var k = offset <= walPage(0) ? 0 : (offset - walPage(0)) / frameSize
        while walPage(k) < end {
            let start = walPage(k)
            let stop = start + Int64(pageSize)
            defer { k += 1 }
            if stop <= offset { continue }
            if start >= validEnd { break }  // beyond the end of the file: zeros, as SQLite expects
            // A read that includes the frame's header is WAL recovery reading whole frames.
            let withHeader = start - 24 >= offset
            let binding: PageBinding
            if withHeader {
                binding = PageBinding.walFrame(header: UnsafeRawPointer(buffer.advanced(by: Int(start - 24 - offset))))
            } else {
                guard let found = walBinding(pageOffset: start) else { return corrupt("frame \(k + 1) (no header)", start) }
                binding = found
            }
            let whole = start >= offset && stop <= end && stop <= validEnd
            let page = whole ? buffer.advanced(by: Int(start - offset)) : scratch
            if !whole {
                // The read covers part of a page (or a page cut short by the end of file).
                let rc2 = io.xRead(under, scratch, Int32(pageSize), start)
                if rc2 == PIER_SQLITE_IOERR_SHORT_READ {
                    guard withHeader, discardable(k, binding) else { return corrupt("frame \(k + 1) (truncated)", start) }
                    cipher.fillRandom(scratch, count: pageSize)
                } else if rc2 != SQLITE_OK {
                    return rc2
                }
            }
            if !cipher.open(page, kind: .wal, offset: start, bound: binding) {
                guard withHeader, discardable(k, binding) else { return corrupt("frame \(k + 1)", start) }
                // SQLite's checksum rejects random bytes, so recovery ends the WAL here,
                // exactly as it does for a torn frame in a plain database.
                cipher.fillRandom(page, count: pageSize)
            }
            if !whole {
                let from = max(start, offset)
                let to = min(stop, validEnd)
                if to > from {
                    buffer.advanced(by: Int(from - offset)).copyMemory(from: scratch.advanced(by: Int(from - start)), byteCount: Int(to - from))
                }
            }
        }
        return rc
    }

    /// During recovery, whether frame `k` (which failed authentication) is one SQLite would
    /// drop anyway rather than a damaged committed frame:
    ///   - its salts are not the WAL header's: a leftover of an earlier generation of the
    ///     WAL, or a header torn by a crash;
    ///   - or no later frame of this generation ends a transaction: it belongs to a
    ///     transaction that never committed, torn by a power cut while it was written.
    /// A frame followed by a commit frame of its generation was part of a committed
    /// transaction: its failure is damage, PIER_ECORRUPT.
    private func discardable(_ k: Int64, _ binding: PageBinding) -> Bool {
        guard case .walFrame(_, let frameSalts) = binding else { return false }
        var walHeader = [UInt8](repeating: 0, count: 32)
        guard io.xRead(under, &walHeader, 32, 0) == SQLITE_OK else { return true }
        var salts: UInt64 = 0
        for i in 16..<24 { salts = salts << 8 | UInt64(walHeader[i]) }
        if salts != frameSalts { return true }
        var header = [UInt8](repeating: 0, count: 24)
        var j = k + 1
        while io.xRead(under, &header, 24, 32 + j * frameSize) == SQLITE_OK {
            var frame: UInt64 = 0
            for i in 8..<16 { frame = frame << 8 | UInt64(header[i]) }
            let commit = header[4] | header[5] | header[6] | header[7] != 0
            if frame == salts && commit { return false }
            j += 1
        }
        return true
    }

    /// The last 4-byte write (a journal record's page number, written before its page).
    private var lastNumberOffset: Int64 = -1
    private var lastNumber = [UInt8](repeating: 0, count: 4)

    private func journalBinding(pageOffset: Int64) -> PageBinding? {
        if lastNumberOffset == pageOffset - 4 {
            return lastNumber.withUnsafeBytes { PageBinding.journalRecord($0.baseAddress!) }
        }
        return withUnsafeTemporaryAllocation(byteCount: 4, alignment: 4) { number in
            io.xRead(under, number.baseAddress, 4, pageOffset - 4) == SQLITE_OK ? PageBinding.journalRecord(number.baseAddress!) : nil
        }
    }

    private func readJournal(_ buffer: UnsafeMutableRawPointer, _ amount: Int, _ offset: Int64) -> Int32 {
        let rc = io.xRead(under, buffer, Int32(amount), offset)
        guard amount == pageSize && offset % 8 == 4 else { return rc }
        if rc == PIER_SQLITE_IOERR_SHORT_READ {
            // A record cut short by the end of the journal ends playback, as in SQLite.
            buffer.initializeMemory(as: UInt8.self, repeating: 0, count: amount)
            return rc
        }
        guard rc == SQLITE_OK else { return rc }
        guard let binding = journalBinding(pageOffset: offset) else { return corrupt("page record (no page number)", offset) }
        return cipher.open(buffer, kind: .journal, offset: offset, bound: binding) ? SQLITE_OK : corrupt("page record", offset)
    }

    // MARK: Writes

    func write(_ buffer: UnsafeRawPointer, _ amount: Int, _ offset: Int64) -> Int32 {
        switch kind {
        case .database:
            guard amount == pageSize, offset % Int64(pageSize) == 0 else {
                pier_sqlite_log(PIER_SQLITE_IOERR_WRITE, "\(CipherVFS.name): partial page write (\(amount) bytes at \(offset)) refused")
                return PIER_SQLITE_IOERR_WRITE
            }
            if offset == 0 {
                // Page 1 carries SQLite's header: the page size and reserved bytes must be
                // ours, or SQLite would keep data where the nonce and tag go.
                let bytes = buffer.assumingMemoryBound(to: UInt8.self)
                let storedSize = Int(bytes[16]) << 8 | Int(bytes[17])
                let size = storedSize == 1 ? 65536 : storedSize
                guard size == pageSize, Int(bytes[20]) == cipher.reserve else {
                    pier_sqlite_log(PIER_SQLITE_IOERR_WRITE, "\(CipherVFS.name): page 1 has page size \(size) and \(bytes[20]) reserved bytes; expected \(pageSize) and \(cipher.reserve)")
                    return PIER_SQLITE_IOERR_WRITE
                }
            }
            return sealAndWrite(buffer, kind: .database, logical: offset, physical: headerSize + offset)
        case .wal:
            if amount == pageSize && offset >= walPage(0) && (offset - walPage(0)) % frameSize == 0 {
                guard let binding = walBinding(pageOffset: offset) else {
                    pier_sqlite_log(PIER_SQLITE_IOERR_WRITE, "\(CipherVFS.name): WAL page without its frame header at \(offset)")
                    return PIER_SQLITE_IOERR_WRITE
                }
                return sealAndWrite(buffer, kind: .wal, logical: offset, physical: offset, bound: binding)
            }
            // Anything else must be a WAL or frame header, never part of a page.
            let end = offset + Int64(amount)
            var k = offset <= walPage(0) ? 0 : (offset - walPage(0)) / frameSize
            while walPage(k) < end {
                if walPage(k) + Int64(pageSize) > offset {
                    pier_sqlite_log(PIER_SQLITE_IOERR_WRITE, "\(CipherVFS.name): partial WAL page write (\(amount) bytes at \(offset)) refused")
                    return PIER_SQLITE_IOERR_WRITE
                }
                k += 1
            }
            let rc = io.xWrite(under, buffer, Int32(amount), offset)
            if rc == SQLITE_OK && amount == 24 && offset >= 32 && (offset - 32) % frameSize == 0 {
                lastHeader.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: buffer, count: 24)) }
                lastHeaderOffset = offset
            } else if offset == 0 {
                lastHeaderOffset = -1  // a new WAL generation
            }
            return rc
        case .journal:
            if amount == pageSize && offset % 8 == 4 {
                guard let binding = journalBinding(pageOffset: offset) else {
                    pier_sqlite_log(PIER_SQLITE_IOERR_WRITE, "\(CipherVFS.name): journal page without its page number at \(offset)")
                    return PIER_SQLITE_IOERR_WRITE
                }
                return sealAndWrite(buffer, kind: .journal, logical: offset, physical: offset, bound: binding)
            }
            let rc = io.xWrite(under, buffer, Int32(amount), offset)
            if rc == SQLITE_OK && amount == 4 {
                lastNumber.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: buffer, count: 4)) }
                lastNumberOffset = offset
            }
            return rc
        }
    }

    private func sealAndWrite(_ buffer: UnsafeRawPointer, kind: FileKind, logical: Int64, physical: Int64, bound: PageBinding = .none) -> Int32 {
        guard cipher.seal(buffer, into: scratch2, kind: kind, offset: logical, bound: bound) else {
            pier_sqlite_log(PIER_SQLITE_IOERR_WRITE, "\(CipherVFS.name): encryption failed")
            return PIER_SQLITE_IOERR_WRITE
        }
        return io.xWrite(under, scratch2, Int32(pageSize), physical)
    }
}
