// The key header of an encrypted store: the first 4096 bytes of the file, before SQLite's
// first page. It holds everything needed to turn a passphrase or raw key into the data
// key, so the key material can never be separated from the file it unlocks.
//
//   offset  size  field (little-endian)
//   0       16    magic "Pier encrypted" 0x00 0x01
//   16      4     page size of the SQLite pages that follow
//   20      1     reserved bytes per page (nonce + tag)
//   21      1     cipher: 1 = AES-256-GCM
//   22      2     zero
//   24      16    file id (random; part of every page's associated data)
//   40      24    zero
//   512     512   key slot A
//   1024    512   key slot B
//   1536    2560  zero
//
// A key slot:
//   0   8   generation (the slot with the highest valid generation is current)
//   8   1   KDF: 1 = PBKDF2-HMAC-SHA256 over a passphrase, 2 = raw 32-byte key
//   9   3   zero
//   12  4   iterations (PBKDF2; 0 for a raw key)
//   16  32  salt (random; zero for a raw key)
//   48  12  nonce of the wrap
//   60  32  data key, encrypted with AES-256-GCM under the key-encryption key
//   92  16  tag of the wrap; associated data = header bytes 0..63 + slot bytes 8..47
//   108 32  SHA-256 of header bytes 0..63 + slot bytes 0..107 (detects damage, not keys)
//   140 372 zero
//
// Both slots hold the same content except while the passphrase is being changed: the new
// wrap goes to one slot (generation + 1), is synced, then copied over the other.
internal import Crypto
internal import CryptoExtras
internal import PierStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

internal enum HeaderLayout {
    static let size = 4096
    static let prefixSize = 64
    static let slotOffsets = [512, 1024]
    static let slotSize = 512
    static let slotUsed = 140
    static let magic: [UInt8] = Array("Pier encrypted".utf8) + [0, 1]
    static let cipherAES256GCM: UInt8 = 1
    /// Nonce (12) + GCM tag (16) at the end of each page.
    static let reserveBytes = 28
    static let defaultPageSize = 4096
}

/// How the key-encryption key is obtained.
public enum KeyDerivation: UInt8, Sendable, CustomStringConvertible {
    case pbkdf2SHA256 = 1
    case rawKey = 2

    public var description: String {
        switch self {
        case .pbkdf2SHA256: return "PBKDF2-HMAC-SHA256"
        case .rawKey: return "raw 256-bit key"
        }
    }
}

/// What the caller knows: a passphrase or a raw 32-byte key.
public enum StoreKey: Sendable, Equatable {
    case passphrase(String)
    case raw([UInt8])

    /// OWASP's Password Storage Cheat Sheet count for PBKDF2-HMAC-SHA256 (2023 onwards).
    public static let defaultIterations = 600_000
    /// The smallest count accepted. Anything under the default is for tests and
    /// benchmarks; it makes a stolen file cheaper to attack.
    public static let minimumIterations = 1_000
}

/// Why a key header could not be used.
internal enum HeaderFailure: Error {
    /// The file is not encrypted by Pier (plain SQLite, or something else).
    case notEncrypted(String)
    /// The header is damaged (checksum, impossible field values).
    case damaged(String)
    /// The key or passphrase does not unwrap the data key.
    case wrongKey(String)
    /// The caller's arguments are unusable.
    case invalid(String)
    case io(String)
    /// A store-level failure (SQLite, locking) on the way.
    case pier(PierError)
}

internal struct KeySlot: Equatable {
    var generation: UInt64
    var kdf: KeyDerivation
    var iterations: UInt32
    var salt: [UInt8]        // 32
    var nonce: [UInt8]       // 12
    var wrappedKey: [UInt8]  // 32
    var tag: [UInt8]         // 16
}

/// A parsed key header.
internal struct KeyHeader {
    var pageSize: Int
    var reserveBytes: Int
    var fileID: [UInt8]
    /// The current slot (highest valid generation).
    var slot: KeySlot
    /// True when the two slots differ: an interrupted passphrase change to finish.
    var needsRepair: Bool
    /// Which slot (0 or 1) holds `slot`.
    var currentSlotIndex: Int = 0

    var kdf: KeyDerivation { slot.kdf }
    var iterations: Int { Int(slot.iterations) }
    var generation: UInt64 { slot.generation }

    static func isEncrypted(prefix: [UInt8]) -> Bool {
        prefix.count >= 16 && Array(prefix[0..<16]) == HeaderLayout.magic
    }

    /// Parses and checks a header; does not need the key.
    static func parse(_ bytes: [UInt8]) throws(HeaderFailure) -> KeyHeader {
        guard bytes.count >= HeaderLayout.size else {
            throw .damaged("the key header is truncated (\(bytes.count) of \(HeaderLayout.size) bytes)")
        }
        guard isEncrypted(prefix: bytes) else {
            if bytes.starts(with: Array("SQLite format 3".utf8) + [0]) {
                throw .notEncrypted("the file is a plain SQLite database, not encrypted")
            }
            throw .notEncrypted("the file has no Pier key header")
        }
        let pageSize = Int(readLE32(bytes, 16))
        let reserve = Int(bytes[20])
        guard bytes[21] == HeaderLayout.cipherAES256GCM else {
            throw .damaged("unknown cipher id \(bytes[21]) in the key header")
        }
        guard pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0, reserve == HeaderLayout.reserveBytes else {
            throw .damaged("impossible page size \(pageSize) or reserve \(reserve) in the key header")
        }
        // Every byte outside the fields must be zero: a changed byte anywhere is damage.
        for range in [22..<24, 40..<64, 64..<512, 1536..<4096] where bytes[range].contains(where: { $0 != 0 }) {
            throw .damaged("unused bytes \(range.lowerBound)..<\(range.upperBound) of the key header are not zero")
        }
        let slots = HeaderLayout.slotOffsets.map { parseSlot(bytes, $0) }
        var currentIndex = -1
        for (index, slot) in slots.enumerated() {
            guard let slot else { continue }
            if currentIndex < 0 || slot.generation > slots[currentIndex]!.generation { currentIndex = index }
        }
        guard currentIndex >= 0, let current = slots[currentIndex] else {
            throw .damaged("both key slots of the header fail their checksum")
        }
        return KeyHeader(
            pageSize: pageSize, reserveBytes: reserve, fileID: Array(bytes[24..<40]),
            slot: current, needsRepair: slots[0] == nil || slots[1] == nil || slots[0]! != slots[1]!,
            currentSlotIndex: currentIndex
        )
    }

    private static func parseSlot(_ bytes: [UInt8], _ offset: Int) -> KeySlot? {
        let slot = Array(bytes[offset..<(offset + HeaderLayout.slotSize)])
        var hasher = SHA256()
        hasher.update(data: bytes[0..<HeaderLayout.prefixSize])
        hasher.update(data: slot[0..<108])
        guard Array(hasher.finalize()) == Array(slot[108..<140]) else { return nil }
        guard slot[9..<12].allSatisfy({ $0 == 0 }), slot[140...].allSatisfy({ $0 == 0 }) else { return nil }
        guard let kdf = KeyDerivation(rawValue: slot[8]) else { return nil }
        return KeySlot(
            generation: readLE64(slot, 0), kdf: kdf, iterations: readLE32(slot, 12),
            salt: Array(slot[16..<48]), nonce: Array(slot[48..<60]),
            wrappedKey: Array(slot[60..<92]), tag: Array(slot[92..<108])
        )
    }

    /// The 64 immutable bytes that start the file.
    var prefix: [UInt8] {
        var out = HeaderLayout.magic
        appendLE32(&out, UInt32(pageSize))
        out.append(UInt8(reserveBytes))
        out.append(HeaderLayout.cipherAES256GCM)
        out += [0, 0]
        out += fileID
        out += [UInt8](repeating: 0, count: HeaderLayout.prefixSize - out.count)
        return out
    }

    func encodeSlot(_ slot: KeySlot) -> [UInt8] {
        var out: [UInt8] = []
        appendLE64(&out, slot.generation)
        out.append(slot.kdf.rawValue)
        out += [0, 0, 0]
        appendLE32(&out, slot.iterations)
        out += slot.salt + slot.nonce + slot.wrappedKey + slot.tag
        var hasher = SHA256()
        hasher.update(data: prefix)
        hasher.update(data: out)
        out += Array(hasher.finalize())
        out += [UInt8](repeating: 0, count: HeaderLayout.slotSize - out.count)
        return out
    }

    /// The whole 4096-byte header with `slot` in both places.
    func encode() -> [UInt8] {
        var out = prefix
        out += [UInt8](repeating: 0, count: HeaderLayout.slotOffsets[0] - out.count)
        let encoded = encodeSlot(slot)
        out += encoded
        out += encoded
        out += [UInt8](repeating: 0, count: HeaderLayout.size - out.count)
        return out
    }

    private func wrapAAD(_ slot: KeySlot) -> [UInt8] {
        var aad = prefix
        aad.append(slot.kdf.rawValue)
        aad += [0, 0, 0]
        appendLE32(&aad, slot.iterations)
        aad += slot.salt
        return aad
    }

    /// Unwraps the data key with a key-encryption key.
    func unwrap(with kek: SymmetricKey) throws(HeaderFailure) -> SymmetricKey {
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: slot.nonce), ciphertext: slot.wrappedKey, tag: slot.tag)
            let plain = try AES.GCM.open(box, using: kek, authenticating: wrapAAD(slot))
            return SymmetricKey(data: plain)
        } catch {
            throw .wrongKey(slot.kdf == .rawKey ? "the key does not open this file" : "the passphrase does not open this file")
        }
    }

    /// A new slot wrapping `dataKey` under `key` (fresh salt and nonce), generation `generation`.
    func makeSlot(wrapping dataKey: SymmetricKey, with key: StoreKey, iterations: Int, generation: UInt64) throws(HeaderFailure) -> KeySlot {
        let kdf: KeyDerivation
        let salt: [UInt8]
        let count: UInt32
        switch key {
        case .passphrase:
            kdf = .pbkdf2SHA256
            salt = randomBytes(32)
            count = UInt32(iterations)
        case .raw:
            kdf = .rawKey
            salt = [UInt8](repeating: 0, count: 32)
            count = 0
        }
        var slot = KeySlot(generation: generation, kdf: kdf, iterations: count, salt: salt, nonce: [], wrappedKey: [], tag: [])
        let kek = try KeyHeader.deriveKEK(key, kdf: kdf, iterations: Int(count), salt: salt)
        do {
            let sealed = try dataKey.withUnsafeBytes { (bytes) in
                try AES.GCM.seal(Array(bytes), using: kek, nonce: AES.GCM.Nonce(), authenticating: wrapAAD(slot))
            }
            slot.nonce = Array(sealed.nonce)
            slot.wrappedKey = Array(sealed.ciphertext)
            slot.tag = Array(sealed.tag)
        } catch {
            throw .invalid("cannot wrap the data key: \(error)")
        }
        return slot
    }

    /// Derives the key-encryption key for a slot's parameters.
    static func deriveKEK(_ key: StoreKey, kdf: KeyDerivation, iterations: Int, salt: [UInt8]) throws(HeaderFailure) -> SymmetricKey {
        switch (key, kdf) {
        case (.raw(let bytes), .rawKey):
            guard bytes.count == 32 else { throw .invalid("a raw key must be 32 bytes, got \(bytes.count)") }
            return SymmetricKey(data: bytes)
        case (.passphrase(let text), .pbkdf2SHA256):
            guard !text.isEmpty else { throw .invalid("the passphrase must not be empty") }
            guard iterations >= StoreKey.minimumIterations else {
                throw .damaged("PBKDF2 iteration count \(iterations) is below the minimum \(StoreKey.minimumIterations)")
            }
            do {
                return try KDF.Insecure.PBKDF2.deriveKey(
                    from: Array(text.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations)
            } catch {
                throw .invalid("PBKDF2 failed: \(error)")
            }
        case (.raw, .pbkdf2SHA256):
            throw .wrongKey("the file is protected by a passphrase; a raw key was given")
        case (.passphrase, .rawKey):
            throw .wrongKey("the file is protected by a raw key; a passphrase was given")
        }
    }

    /// A header for a new file: random data key and file id.
    static func create(key: StoreKey, iterations: Int, pageSize: Int) throws(HeaderFailure) -> (KeyHeader, dataKey: SymmetricKey) {
        try validate(key, iterations: iterations)
        var header = KeyHeader(
            pageSize: pageSize, reserveBytes: HeaderLayout.reserveBytes, fileID: randomBytes(16),
            slot: KeySlot(generation: 1, kdf: .rawKey, iterations: 0, salt: [], nonce: [], wrappedKey: [], tag: []),
            needsRepair: false
        )
        let dataKey = SymmetricKey(size: .bits256)
        header.slot = try header.makeSlot(wrapping: dataKey, with: key, iterations: iterations, generation: 1)
        return (header, dataKey)
    }

    static func validate(_ key: StoreKey, iterations: Int) throws(HeaderFailure) {
        switch key {
        case .raw(let bytes):
            guard bytes.count == 32 else { throw .invalid("a raw key must be 32 bytes, got \(bytes.count)") }
        case .passphrase(let text):
            guard !text.isEmpty else { throw .invalid("the passphrase must not be empty") }
            guard iterations >= StoreKey.minimumIterations, iterations <= Int(UInt32.max) else {
                throw .invalid("kdf_iterations must be \(StoreKey.minimumIterations)...\(UInt32.max), got \(iterations)")
            }
        }
    }
}

// MARK: - Bytes

func readLE32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    var value: UInt32 = 0
    for i in 0..<4 { value |= UInt32(bytes[at + i]) << (8 * i) }
    return value
}

func readLE64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
    var value: UInt64 = 0
    for i in 0..<8 { value |= UInt64(bytes[at + i]) << (8 * i) }
    return value
}

func appendLE32(_ out: inout [UInt8], _ value: UInt32) {
    for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
}

func appendLE64(_ out: inout [UInt8], _ value: UInt64) {
    for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
}

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
}
