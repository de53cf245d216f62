// The C API of encryption at rest (pier.h, "Encryption at rest").
public import CPier
import Pier
import PierCrypto
import PierStore

/// Reads a `pier_key` according to its version field.
func storeKey(_ pointer: UnsafePointer<pier_key>?, _ name: String) throws(PierError) -> Encryption {
    guard let pointer else { throw PierError(.invalid, "\(name) is NULL; pass a pier_key initialised with PIER_KEY_INIT") }
    let key = pointer.pointee
    guard key.version >= 1 else { throw PierError(.invalid, "\(name)->version is 0; initialise it with PIER_KEY_INIT") }
    let iterations = key.kdf_iterations == 0 ? StoreKey.defaultIterations : Int(key.kdf_iterations)
    switch (key.passphrase, key.raw_key) {
    case (let passphrase?, nil):
        guard let text = String(validatingCString: passphrase) else { throw PierError(.invalid, "\(name)->passphrase is not valid UTF-8") }
        return Encryption(.passphrase(text), iterations: iterations)
    case (nil, let raw?):
        guard key.raw_key_len == 32 else { throw PierError(.invalid, "\(name)->raw_key_len must be 32, got \(key.raw_key_len)") }
        return Encryption(.raw(Array(UnsafeBufferPointer(start: raw, count: 32))), iterations: iterations)
    case (nil, nil):
        throw PierError(.invalid, "\(name) has neither a passphrase nor a raw_key")
    case (_?, _?):
        throw PierError(.invalid, "\(name) has both a passphrase and a raw_key; set exactly one")
    }
}

@_cdecl("pier_db_change_key")
public func pier_db_change_key(_ handle: OpaquePointer?, _ newKey: UnsafePointer<pier_key>?) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in
        try database.changeKey(to: try storeKey(newKey, "new_key"))
    }
}

@_cdecl("pier_db_rekey")
public func pier_db_rekey(_ handle: OpaquePointer?, _ newKey: UnsafePointer<pier_key>?) -> Int32 {
    withDatabase(handle) { (database) throws(PierError) in
        let key = try newKey.map { (pointer) throws(PierError) in try storeKey(pointer, "new_key") }
        try database.rekey(to: key)
    }
}

@_cdecl("pier_encrypt_file")
public func pier_encrypt_file(_ path: UnsafePointer<CChar>?, _ dest: UnsafePointer<CChar>?, _ key: UnsafePointer<pier_key>?) -> Int32 {
    do throws(PierError) {
        let source = try text(path, "path")
        let target = try dest.map { (pointer) throws(PierError) in try text(pointer, "dest") }
        try Encryption.encrypt(path: source, to: target, key: try storeKey(key, "key"))
        return 0
    } catch {
        return fail(error)
    }
}

@_cdecl("pier_decrypt_file")
public func pier_decrypt_file(_ path: UnsafePointer<CChar>?, _ key: UnsafePointer<pier_key>?, _ dest: UnsafePointer<CChar>?) -> Int32 {
    do throws(PierError) {
        try Encryption.decrypt(path: try text(path, "path"), key: try storeKey(key, "key"), to: try text(dest, "dest"))
        return 0
    } catch {
        return fail(error)
    }
}

@_cdecl("pier_encryption_info")
public func pier_encryption_info(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ outLength: UnsafeMutablePointer<Int>?) -> Int32 {
    clear(out, outLength)
    do throws(PierError) {
        let out = try required(out, "out_json")
        let file = try text(path, "path")
        var json = JSONWriter()
        if let info = try Encryption.info(path: file) {
            json.raw("{"); json.key("encrypted"); json.bool(true)
            json.raw(","); json.key("cipher"); json.string(info.cipher)
            json.raw(","); json.key("kdf"); json.string(info.kdf == .rawKey ? "raw" : "PBKDF2-HMAC-SHA256")
            json.raw(","); json.key("iterations"); json.number(Int64(info.iterations))
            json.raw(","); json.key("page_size"); json.number(Int64(info.pageSize))
            json.raw(","); json.key("reserve_bytes"); json.number(Int64(info.reserveBytes))
            json.raw(","); json.key("header_bytes"); json.number(Int64(info.headerBytes))
            json.raw(","); json.key("key_generation"); json.number(Int64(info.keyGeneration))
            json.raw(","); json.key("interrupted_key_change"); json.bool(info.interruptedKeyChange)
            json.raw("}")
        } else {
            json.raw("{\"encrypted\":false}")
        }
        try hand(json, out, outLength)
        return 0
    } catch {
        return fail(error)
    }
}
