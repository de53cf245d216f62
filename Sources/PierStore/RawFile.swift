import CSQLite

/// A file opened through SQLite's default VFS, for the few bytes Pier reads or writes
/// outside SQLite (the key header of an encrypted store, a file's magic).
///
/// Never a raw descriptor: closing any descriptor of a file drops every POSIX lock this
/// process holds on it, including those of open SQLite connections. SQLite's unix VFS
/// shares descriptors per file and defers such closes.
package final class RawFile {
    private let vfs: UnsafeMutablePointer<sqlite3_vfs>
    private let file: UnsafeMutablePointer<sqlite3_file>
    private let name: sqlite3_filename

    /// Opens an existing file; nil when it does not exist or cannot be opened.
    package init?(path: String, writable: Bool) {
        guard let vfs = sqlite3_vfs_find(nil), fileSize(path) != nil else { return nil }
        var full = [CChar](repeating: 0, count: Int(vfs.pointee.mxPathname) + 1)
        guard vfs.pointee.xFullPathname(vfs, path, Int32(full.count), &full) == SQLITE_OK,
              let name = sqlite3_create_filename(full, "", "", 0, nil) else { return nil }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: Int(vfs.pointee.szOsFile), alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: Int(vfs.pointee.szOsFile))
        let file = raw.assumingMemoryBound(to: sqlite3_file.self)
        let flags = (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_MAIN_DB
        var outFlags: Int32 = 0
        guard vfs.pointee.xOpen(vfs, name, file, flags, &outFlags) == SQLITE_OK else {
            if let methods = file.pointee.pMethods { _ = methods.pointee.xClose(file) }
            raw.deallocate()
            sqlite3_free_filename(name)
            return nil
        }
        self.vfs = vfs
        self.file = file
        self.name = name
    }

    deinit {
        if let methods = file.pointee.pMethods { _ = methods.pointee.xClose(file) }
        file.deallocate()
        sqlite3_free_filename(name)
    }

    /// Exactly `count` bytes at `offset`, or nil (a short file, an I/O error).
    package func read(count: Int, at offset: Int64) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let rc = bytes.withUnsafeMutableBytes { file.pointee.pMethods.pointee.xRead(file, $0.baseAddress, Int32(count), offset) }
        return rc == SQLITE_OK ? bytes : nil
    }

    package func write(_ bytes: [UInt8], at offset: Int64) -> Bool {
        bytes.withUnsafeBytes { file.pointee.pMethods.pointee.xWrite(file, $0.baseAddress, Int32(bytes.count), offset) } == SQLITE_OK
    }

    package func sync() -> Bool {
        file.pointee.pMethods.pointee.xSync(file, SQLITE_SYNC_FULL) == SQLITE_OK
    }

    package var size: Int64? {
        var size: Int64 = 0
        return file.pointee.pMethods.pointee.xFileSize(file, &size) == SQLITE_OK ? size : nil
    }
}
