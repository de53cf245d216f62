// Page encryption: AES-256-GCM over the first (pageSize - 28) bytes of a page, with a fresh
// random 96-bit nonce per write; the nonce and the 16-byte tag fill the page's 28 reserved
// bytes. The associated data binds each page to its file (file id), the kind of file
// (database, WAL, journal) and its offset there, so pages cannot be moved or swapped.
internal import Crypto
internal import FoundationEssentials

internal enum FileKind: UInt8 {
    case database = 1
    case wal = 2
    case journal = 3

    var name: String {
        switch self {
        case .database: return "database"
        case .wal: return "WAL"
        case .journal: return "journal"
        }
    }
}

/// The data key of one open store and the page geometry it encrypts.
internal final class PageCipher: @unchecked Sendable {
    let key: SymmetricKey
    let fileID: [UInt8]
    let pageSize: Int
    let reserve: Int

    init(key: SymmetricKey, fileID: [UInt8], pageSize: Int, reserve: Int) {
        self.key = key
        self.fileID = fileID
        self.pageSize = pageSize
        self.reserve = reserve
    }

    @inline(__always)
    private func aad(_ kind: FileKind, _ offset: Int64) -> [UInt8] {
        var out = fileID
        out.reserveCapacity(25)
        out.append(kind.rawValue)
        var value = UInt64(bitPattern: offset)
        for _ in 0..<8 {
            out.append(UInt8(truncatingIfNeeded: value))
            value >>= 8
        }
        return out
    }

    /// Encrypts the page at `plain` into `out` (both `pageSize` bytes).
    func seal(_ plain: UnsafeRawPointer, into out: UnsafeMutableRawPointer, kind: FileKind, offset: Int64) -> Bool {
        let body = pageSize - reserve
        do {
            let sealed = try AES.GCM.seal(
                UnsafeRawBufferPointer(start: plain, count: body), using: key, nonce: AES.GCM.Nonce(),
                authenticating: aad(kind, offset))
            sealed.ciphertext.withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: body) }
            sealed.nonce.withUnsafeBytes { out.advanced(by: body).copyMemory(from: $0.baseAddress!, byteCount: 12) }
            sealed.tag.withUnsafeBytes { out.advanced(by: body + 12).copyMemory(from: $0.baseAddress!, byteCount: 16) }
            return true
        } catch {
            return false
        }
    }

    /// Decrypts the page at `page` in place; false when it fails authentication (then the
    /// buffer is zeroed, so no ciphertext is ever handed to SQLite as data).
    func open(_ page: UnsafeMutableRawPointer, kind: FileKind, offset: Int64) -> Bool {
        let body = pageSize - reserve
        do {
            let nonce = try AES.GCM.Nonce(data: UnsafeRawBufferPointer(start: page.advanced(by: body), count: 12))
            let box = try AES.GCM.SealedBox(
                nonce: nonce, ciphertext: UnsafeRawBufferPointer(start: page, count: body),
                tag: UnsafeRawBufferPointer(start: page.advanced(by: body + 12), count: 16))
            let plain = try AES.GCM.open(box, using: key, authenticating: aad(kind, offset))
            guard plain.count == body else { throw CryptoKitError.incorrectParameterSize }
            plain.withUnsafeBytes { page.copyMemory(from: $0.baseAddress!, byteCount: body) }
            page.advanced(by: body).initializeMemory(as: UInt8.self, repeating: 0, count: reserve)
            return true
        } catch {
            page.initializeMemory(as: UInt8.self, repeating: 0, count: pageSize)
            return false
        }
    }
}
