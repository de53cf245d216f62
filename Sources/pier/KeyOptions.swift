import ArgumentParser
import Foundation
import Pier

/// How the CLI gets the key of an encrypted store. Never the passphrase itself on the
/// command line (it would show in `ps` and shell history): an environment variable or a
/// key file.
struct KeyOptions: ParsableArguments {
    @Option(name: .customLong("passphrase-env"), help: "Name of an environment variable holding the store's passphrase.")
    var passphraseEnv: String?

    @Option(name: .customLong("key-file"), help: "File holding the store's raw 32-byte key.")
    var keyFile: String?

    /// The encryption to open with, or nil for a plain store.
    func encryption() throws -> Encryption? {
        switch (passphraseEnv, keyFile) {
        case (nil, nil):
            return nil
        case (let name?, nil):
            guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
                throw failure(PierError(.invalid, "environment variable \(name) is not set or empty"))
            }
            return Encryption(.passphrase(value))
        case (nil, let file?):
            guard let data = FileManager.default.contents(atPath: file) else {
                throw failure(PierError(.notFound, "cannot read the key file \(file)"))
            }
            guard data.count == 32 else {
                throw failure(PierError(.invalid, "the key file \(file) holds \(data.count) bytes; a raw key is 32 bytes"))
            }
            return Encryption(.raw([UInt8](data)))
        default:
            throw failure(PierError(.invalid, "give --passphrase-env or --key-file, not both"))
        }
    }

    /// The key of a store that must be encrypted.
    func required() throws -> Encryption {
        guard let encryption = try encryption() else {
            throw failure(PierError(.invalid, "give the store's key: --passphrase-env NAME or --key-file FILE"))
        }
        return encryption
    }

    func apply(to options: inout StoreOptions) throws {
        options.encryption = try encryption()
    }
}
