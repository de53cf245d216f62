import ArgumentParser
import Pier
import PierStore

/// `pier inspect <db>`: what is in a local store and what is waiting to sync.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a store's collections, record counts, pending changes, conflicts, client id and cursor.")

    @Argument(help: "Path of a Pier store.") var path: String
    @Flag(help: "Print JSON instead of a table.") var json = false
    @OptionGroup var key: KeyOptions

    func run() throws {
        var options = StoreOptions()
        options.readOnly = true
        try key.apply(to: &options)
        // The key header needs no key: an encrypted store says so even when its contents
        // cannot be read.
        let encryption: EncryptionInfo?
        do { encryption = try Encryption.info(path: path) } catch { throw failure(error) }
        if let encryption, options.encryption == nil {
            if json {
                print(#"{"path":\#(jsonString(path)),"encrypted":true,"encryption":\#(encryptionJSON(encryption))}"#)
            } else {
                print("store          \(path)")
                printEncryption(encryption)
                print("")
                print("(contents need the key: --passphrase-env NAME or --key-file FILE)")
            }
            return
        }
        let store: Store
        do { store = try Store(path: path, options: options) } catch { throw failure(error) }
        defer { store.close() }
        do {
            if json {
                var summary = try store.summaryJSON().string
                summary.removeLast()
                if let encryption {
                    summary += #","encrypted":true,"encryption":\#(encryptionJSON(encryption))}"#
                } else {
                    summary += #","encrypted":false}"#
                }
                print(summary)
                return
            }
            let collections = try store.collections()
            print("store          \(path)")
            if let encryption { printEncryption(encryption) } else { print("encrypted      no") }
            print("schema version \(try store.schemaVersion())")
            print("client id      \(store.clientID)")
            print("pull cursor    \(try store.pullCursor())")
            print("pending        \(collections.reduce(0) { $0 + $1.pending })")
            print("conflicts      \(collections.reduce(0) { $0 + $1.conflicts })")
            print("")
            let header = ["collection", "records", "pending", "conflicts", "tombstones"]
            var rows = [header]
            for c in collections {
                rows.append([c.name, String(c.records), String(c.pending), String(c.conflicts), String(c.tombstones)])
            }
            if collections.isEmpty { rows.append(["(none)", "", "", "", ""]) }
            printTable(rows, rightAligned: [1, 2, 3, 4])
        } catch { throw failure(error) }
    }
}

func printEncryption(_ info: EncryptionInfo) {
    print("encrypted      yes: \(info.cipher), page \(info.pageSize) bytes, \(info.reserveBytes) reserved bytes (nonce + tag)")
    if info.kdf == .rawKey {
        print("key            raw 256-bit key, key generation \(info.keyGeneration)")
    } else {
        print("key            passphrase, \(info.kdf) with \(info.iterations) iterations, key generation \(info.keyGeneration)")
    }
    if info.interruptedKeyChange {
        print("note           a passphrase change was interrupted; the next read-write open finishes it")
    }
}

func encryptionJSON(_ info: EncryptionInfo) -> String {
    let kdf = info.kdf == .rawKey ? "raw" : "PBKDF2-HMAC-SHA256"
    return #"{"cipher":"\#(info.cipher)","kdf":"\#(kdf)","iterations":\#(info.iterations),"page_size":\#(info.pageSize),"#
        + #""reserve_bytes":\#(info.reserveBytes),"header_bytes":\#(info.headerBytes),"key_generation":\#(info.keyGeneration),"#
        + #""interrupted_key_change":\#(info.interruptedKeyChange)}"#
}

func jsonString(_ text: String) -> String {
    var writer = JSONWriter()
    writer.string(text)
    return writer.string
}
