// Page encryption: AES-256-GCM over the first (pageSize - 28) bytes of a page, with a fresh
// random 96-bit nonce per write; the nonce and the 16-byte tag fill the page's 28 reserved
// bytes. The associated data binds each page to its file (file id), the kind of file
// (database, WAL, journal) and its offset there, so pages cannot be moved or swapped.
//
// This is the hot path of every page SQLite reads from disk or writes, so it calls the
// BoringSSL AEAD that swift-crypto is built on directly (CCryptoBoringSSL, part of the
// swift-crypto package): one EVP_AEAD_CTX per open store (the AES key schedule and GHASH
// tables computed once, not per page), encryption and decryption in place, nonces from
// BoringSSL's RAND_bytes (a user-space DRBG, no system call per page). Through CryptoKit's
// API each page cost about 5 us more in allocations, copies, a key schedule and a
// getrandom call; the key header, used once per open, stays on CryptoKit's API.
internal import CCryptoBoringSSL
internal import Crypto
internal import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package enum FileKind: UInt8 {
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
final class PageCipher: @unchecked Sendable {
    let fileID: [UInt8]
    let pageSize: Int
    let reserve: Int
    /// Read-only after init; BoringSSL allows concurrent seal/open on one context.
    private let context: UnsafeMutablePointer<EVP_AEAD_CTX>
    /// Nonces are drawn from a buffer that RAND_bytes fills 4 KiB at a time: one call per
    /// 341 pages instead of one per page (each call costs about a microsecond). Refilled
    /// after a fork, so a child never reuses its parent's unused nonces.
    private let nonces = Mutex<NoncePool>(NoncePool())

    init?(key: SymmetricKey, fileID: [UInt8], pageSize: Int, reserve: Int) {
        let context = UnsafeMutablePointer<EVP_AEAD_CTX>.allocate(capacity: 1)
        CCryptoBoringSSL_EVP_AEAD_CTX_zero(context)
        let ok = key.withUnsafeBytes { bytes in
            CCryptoBoringSSL_EVP_AEAD_CTX_init(
                context, CCryptoBoringSSL_EVP_aead_aes_256_gcm(), bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                bytes.count, 16, nil)
        }
        guard ok == 1 else {
            context.deallocate()
            return nil
        }
        self.context = context
        self.fileID = fileID
        self.pageSize = pageSize
        self.reserve = reserve
    }

    deinit {
        CCryptoBoringSSL_EVP_AEAD_CTX_cleanup(context)
        context.deallocate()
    }

    /// fileID (16) + kind (1) + offset (8, little-endian) + what identifies the page in its
    /// file kind's own header (`bound`: a WAL frame's page number and salts, a journal
    /// record's page number; nothing for the database, where the offset is the page
    /// number), on the stack.
    @inline(__always)
    private func withAAD<T>(_ kind: FileKind, _ offset: Int64, _ bound: PageBinding, _ body: (UnsafePointer<UInt8>, Int) -> T) -> T {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 25 + 12) { aad in
            for i in 0..<16 { aad[i] = fileID[i] }
            aad[16] = kind.rawValue
            var value = UInt64(bitPattern: offset)
            for i in 17..<25 {
                aad[i] = UInt8(truncatingIfNeeded: value)
                value >>= 8
            }
            let count = bound.count
            bound.copy(into: aad.baseAddress!.advanced(by: 25))
            return body(UnsafePointer(aad.baseAddress!), 25 + count)
        }
    }

    /// Fills `count` bytes with random data (a page SQLite must reject by its checksum).
    func fillRandom(_ pointer: UnsafeMutableRawPointer, count: Int) {
        _ = CCryptoBoringSSL_RAND_bytes(pointer.assumingMemoryBound(to: UInt8.self), count)
    }

    /// Encrypts the page at `plain` into `out` (both `pageSize` bytes; they may not overlap).
    func seal(_ plain: UnsafeRawPointer, into out: UnsafeMutableRawPointer, kind: FileKind, offset: Int64, bound: PageBinding = .none) -> Bool {
        let body = pageSize - reserve
        let output = out.assumingMemoryBound(to: UInt8.self)
        let nonce = output.advanced(by: body)
        let tag = output.advanced(by: body + 12)
        guard nonces.withLock({ $0.take(12, into: nonce) }) else { return false }
        var tagLength = 0
        let ok = withAAD(kind, offset, bound) { aad, aadLength in
            CCryptoBoringSSL_EVP_AEAD_CTX_seal_scatter(
                context, output, tag, &tagLength, 16, nonce, 12,
                plain.assumingMemoryBound(to: UInt8.self), body, nil, 0, aad, aadLength)
        }
        return ok == 1 && tagLength == 16
    }

    /// Decrypts the page at `page` in place; false when it fails authentication (then the
    /// buffer is zeroed, so no ciphertext is ever handed to SQLite as data).
    func open(_ page: UnsafeMutableRawPointer, kind: FileKind, offset: Int64, bound: PageBinding = .none) -> Bool {
        let body = pageSize - reserve
        let bytes = page.assumingMemoryBound(to: UInt8.self)
        let ok = withAAD(kind, offset, bound) { aad, aadLength in
            CCryptoBoringSSL_EVP_AEAD_CTX_open_gather(
                context, bytes, bytes.advanced(by: body), 12, bytes, body, bytes.advanced(by: body + 12), 16, aad, aadLength)
        }
        if ok == 1 {
            page.advanced(by: body).initializeMemory(as: UInt8.self, repeating: 0, count: reserve)
            return true
        }
        page.initializeMemory(as: UInt8.self, repeating: 0, count: pageSize)
        return false
    }
}

/// The header fields SQLite keeps beside a page in the WAL and the journal, bound into
/// the page's associated data so they cannot be relabelled: SQLite's own checksums over
/// them are unkeyed sums an attacker can recompute.
enum PageBinding {
    case none
    /// A WAL frame: page number (4 bytes) and the WAL generation's salts (8 bytes), as in
    /// the frame header.
    case walFrame(UInt32, UInt64)
    /// A journal record: its page number.
    case journalRecord(UInt32)

    var count: Int {
        switch self {
        case .none: return 0
        case .walFrame: return 12
        case .journalRecord: return 4
        }
    }

    func copy(into out: UnsafeMutablePointer<UInt8>) {
        switch self {
        case .none:
            break
        case .walFrame(let page, let salts):
            for i in 0..<4 { out[i] = UInt8(truncatingIfNeeded: page >> (8 * i)) }
            for i in 0..<8 { out[4 + i] = UInt8(truncatingIfNeeded: salts >> (8 * i)) }
        case .journalRecord(let page):
            for i in 0..<4 { out[i] = UInt8(truncatingIfNeeded: page >> (8 * i)) }
        }
    }

    /// From a 24-byte WAL frame header (big-endian page number at 0, salts at 8..15).
    static func walFrame(header: UnsafeRawPointer) -> PageBinding {
        let bytes = header.assumingMemoryBound(to: UInt8.self)
        var page: UInt32 = 0
        for i in 0..<4 { page = page << 8 | UInt32(bytes[i]) }
        var salts: UInt64 = 0
        for i in 8..<16 { salts = salts << 8 | UInt64(bytes[i]) }
        return .walFrame(page, salts)
    }

    /// From the 4 big-endian bytes before a journal record's page.
    static func journalRecord(_ pointer: UnsafeRawPointer) -> PageBinding {
        let bytes = pointer.assumingMemoryBound(to: UInt8.self)
        var page: UInt32 = 0
        for i in 0..<4 { page = page << 8 | UInt32(bytes[i]) }
        return .journalRecord(page)
    }
}

/// Random bytes drawn ahead of need (see `PageCipher.nonces`).
struct NoncePool: ~Copyable {
    private var bytes = [UInt8](repeating: 0, count: 4096)
    private var used = 4096
    private var owner: pid_t = 0

    mutating func take(_ count: Int, into out: UnsafeMutablePointer<UInt8>) -> Bool {
        let pid = getpid()
        if used + count > bytes.count || owner != pid {
            let ok = bytes.withUnsafeMutableBufferPointer { CCryptoBoringSSL_RAND_bytes($0.baseAddress, $0.count) }
            guard ok == 1 else { return false }
            used = 0
            owner = pid
        }
        bytes.withUnsafeBufferPointer { out.update(from: $0.baseAddress!.advanced(by: used), count: count) }
        // Never hand out the same bytes twice.
        bytes.withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: used).update(repeating: 0, count: count) }
        used += count
        return true
    }
}
