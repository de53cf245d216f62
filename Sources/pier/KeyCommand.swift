import ArgumentParser
import Foundation
import Pier

/// `pier key`: change the passphrase, rotate the data key, encrypt a plain store, write a
/// plain copy (docs/SECURITY.md). Keys come from environment variables or files, never
/// from the command line.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Change, rotate, add or remove a store's encryption key.",
        subcommands: [Change.self, Rekey.self, Encrypt.self, Decrypt.self])

    struct Change: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change the passphrase or key (rewraps the data key; no page is rewritten).")
        @Argument(help: "Path of an encrypted Pier store.") var path: String
        @OptionGroup var key: KeyOptions
        @OptionGroup var newKey: NewKeyOptions

        func run() throws {
            let current = try key.required()
            let target = try newKey.required()
            do { try Encryption.changeKey(path: path, from: current, to: target) } catch { throw failure(error) }
            print("changed the key of \(path)")
        }
    }

    struct Rekey: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate the data key: rewrite every page under a new key (crash-safe; needs the store to itself).")
        @Argument(help: "Path of an encrypted Pier store.") var path: String
        @OptionGroup var key: KeyOptions
        @OptionGroup var newKey: NewKeyOptions

        func run() throws {
            let current = try key.required()
            let target = try newKey.optional()
            do { try Encryption.rekey(path: path, key: current, newKey: target) } catch { throw failure(error) }
            print("rotated the data key of \(path)")
        }
    }

    struct Encrypt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt a plain store, in place (crash-safe) or into a new file.")
        @Argument(help: "Path of a plain Pier store.") var path: String
        @Option(help: "Write the encrypted copy here instead of replacing the file.") var to: String?
        @OptionGroup var newKey: NewKeyOptions

        func run() throws {
            let target = try newKey.required()
            do { try Encryption.encrypt(path: path, to: to, key: target) } catch { throw failure(error) }
            print("encrypted \(to ?? path)")
        }
    }

    struct Decrypt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a plain (unencrypted) copy of an encrypted store; the original is not changed.")
        @Argument(help: "Path of an encrypted Pier store.") var path: String
        @Option(help: "The plain copy (must not exist).") var to: String
        @OptionGroup var key: KeyOptions

        func run() throws {
            let current = try key.required()
            do { try Encryption.decrypt(path: path, key: current, to: to) } catch { throw failure(error) }
            print("wrote a plain copy to \(to)")
        }
    }
}

/// The new passphrase or key of `pier key`.
struct NewKeyOptions: ParsableArguments {
    @Option(name: .customLong("new-passphrase-env"), help: "Name of an environment variable holding the new passphrase.")
    var passphraseEnv: String?

    @Option(name: .customLong("new-key-file"), help: "File holding the new raw 32-byte key.")
    var keyFile: String?

    @Option(help: "PBKDF2 iterations for a new passphrase (default 600000; lower only for tests).")
    var iterations: Int = StoreKey.defaultIterations

    func optional() throws -> Encryption? {
        var key = KeyOptions()
        key.passphraseEnv = passphraseEnv
        key.keyFile = keyFile
        guard var encryption = try key.encryption() else { return nil }
        encryption.iterations = iterations
        return encryption
    }

    func required() throws -> Encryption {
        guard let encryption = try optional() else {
            throw failure(PierError(.invalid, "give the new key: --new-passphrase-env NAME or --new-key-file FILE"))
        }
        return encryption
    }
}
