// pier-bench-crypto: encryption at rest (issue 6). The same workload on a plain and on an
// encrypted Pier store in this process, so the ratio is measured on the same machine at
// the same moment; benchmarks/run-crypto runs the peers (SQLite3 Multiple Ciphers,
// SQLCipher) on the same workload against their own plain mode. Not a test: it prints
// figures, it never fails on them.
//
//   pier-bench-crypto [--records N] [--single-writes M] [--reads R] [--rounds K] [--json]
//
// Workload (benchmarks/crypto/peers.py does the same in SQL):
//   record i: id "c%06d", body {"name":"Customer i","city":<8 cities>,"balance":i*37%100000,
//             "notes":<120+i%80 lowercase letters from an LCG seeded with i>}
//   bulk_write:   N records in one transaction into a new store
//   single_write: M more records, one transaction each (durability normal: WAL, synchronous=NORMAL)
//   read:         reopen (cold page cache), then R point reads of random bulk ids (seed 42)
//   open:         median of 20 open+close of the existing store
import Pier

#if canImport(Glibc)
import Glibc
#endif

func now() -> Double { Double(monotonicNanoseconds()) / 1e9 }

let cities = ["Oslo", "Bergen", "London", "Paris", "Rome", "Madrid", "Berlin", "Vienna"]

func id(_ i: Int) -> String {
    let digits = String(i)
    return "c" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
}

func notes(_ i: Int) -> String {
    var x = UInt32(truncatingIfNeeded: i &* 2654435761 &+ 1)
    var out = [UInt8]()
    for _ in 0..<(120 + i % 80) {
        x = x &* 1103515245 &+ 12345
        out.append(UInt8(ascii: "a") + UInt8((x >> 16) % 26))
    }
    return String(decoding: out, as: UTF8.self)
}

func body(_ i: Int) -> String {
    #"{"name":"Customer \#(i)","city":"\#(cities[i % 8])","balance":\#(i * 37 % 100000),"notes":"\#(notes(i))"}"#
}

/// A small deterministic generator for read ids (the same sequence every run).
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

func remove(_ path: String) {
    for suffix in ["", "-wal", "-shm", "-journal", ".pier-rewrite"] { unlink(path + suffix) }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

struct Figures {
    var bulk: [Double] = []
    var single: [Double] = []
    var read: [Double] = []
    var open: [Double] = []
    var fileBytes = 0
}

var records = 20_000
var singleWrites = 1_000
var reads = 20_000
var rounds = 3
var asJSON = false
var measurePassphrase = true
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--records": records = Int(arguments.next() ?? "") ?? records
    case "--single-writes": singleWrites = Int(arguments.next() ?? "") ?? singleWrites
    case "--reads": reads = Int(arguments.next() ?? "") ?? reads
    case "--rounds": rounds = Int(arguments.next() ?? "") ?? rounds
    case "--json": asJSON = true
    case "--no-passphrase": measurePassphrase = false  // for profiling the page path alone
    default:
        print("usage: pier-bench-crypto [--records N] [--single-writes M] [--reads R] [--rounds K] [--json]")
        exit(2)
    }
}

var template = Array("/tmp/pier-bench-crypto-XXXXXX".utf8CString)
let directory = String(cString: mkdtemp(&template)!)
let bulkRows = (0..<records).map { (id: id($0), body: body($0)) }
let singleRows = (records..<(records + singleWrites)).map { (id: id($0), body: body($0)) }
var generator = SplitMix(state: 42)
let readIDs = (0..<reads).map { _ in id(Int(generator.next() % UInt64(records))) }

func options(_ encryption: Encryption?) -> StoreOptions {
    var options = StoreOptions()
    options.encryption = encryption
    return options
}

/// One round of the workload on a new store.
func run(_ name: String, _ encryption: Encryption?, into figures: inout Figures) throws(PierError) {
    let path = directory + "/\(name).pier"
    remove(path)
    var db = try Database(path: path, options: options(encryption))
    var start = now()
    try db.putMany("records", bulkRows)
    figures.bulk.append(now() - start)
    start = now()
    for row in singleRows { try db.put("records", id: row.id, body: row.body) }
    figures.single.append(now() - start)
    db.close()
    db = try Database(path: path, options: options(encryption))
    start = now()
    var bytes = 0
    for id in readIDs { bytes += try db.get("records", id: id).utf8.count }
    figures.read.append(now() - start)
    precondition(bytes > 0)
    db.close()
    var opens: [Double] = []
    for _ in 0..<20 {
        start = now()
        let opened = try Database(path: path, options: options(encryption))
        opened.close()
        opens.append(now() - start)
    }
    figures.open.append(median(opens))
    var st = stat()
    stat(path, &st)
    figures.fileBytes = Int(st.st_size)
}

let rawKey = Encryption(.raw((0..<32).map { UInt8($0) }))
let passphrase = Encryption(.passphrase("correct horse battery staple"))
var plain = Figures()
var encrypted = Figures()
do {
    for _ in 0..<rounds {
        // Alternate, so drift on a shared machine hits both sides alike.
        try run("plain", nil, into: &plain)
        try run("encrypted", rawKey, into: &encrypted)
    }
    // Opening with a passphrase costs one PBKDF2 at the default 600,000 iterations.
    let path = directory + "/passphrase.pier"
    remove(path)
    if measurePassphrase { try Database(path: path, options: options(passphrase)).close() }
    var passphraseOpens: [Double] = [0]
    for _ in 0..<(measurePassphrase ? 5 : 0) {
        let start = now()
        try Database(path: path, options: options(passphrase)).close()
        passphraseOpens.append(now() - start)
    }
    let passphraseOpen = median(passphraseOpens)

    let lines: [(String, Double, Double)] = [
        ("bulk_write", median(plain.bulk), median(encrypted.bulk)),
        ("single_write", median(plain.single), median(encrypted.single)),
        ("read", median(plain.read), median(encrypted.read)),
        ("open", median(plain.open), median(encrypted.open)),
    ]
    if asJSON {
        for (measure, p, e) in lines {
            print(#"{"peer":"pier","mode":"plain","measure":"\#(measure)","seconds":\#(p)}"#)
            print(#"{"peer":"pier","mode":"encrypted","measure":"\#(measure)","seconds":\#(e)}"#)
        }
        print(#"{"peer":"pier","mode":"encrypted-passphrase","measure":"open","seconds":\#(passphraseOpen)}"#)
        print(#"{"peer":"pier","mode":"plain","measure":"file_bytes","bytes":\#(plain.fileBytes)}"#)
        print(#"{"peer":"pier","mode":"encrypted","measure":"file_bytes","bytes":\#(encrypted.fileBytes)}"#)
    } else {
        print("pier-bench-crypto: \(records) records bulk, \(singleWrites) single writes, \(reads) reads, median of \(rounds) rounds")
        for (measure, p, e) in lines {
            let pad = String(repeating: " ", count: max(0, 13 - measure.count))
            print("  \(measure)\(pad) plain \(format6(p)) s   encrypted \(format6(e)) s   encrypted/plain \(format2(e / p))")
        }
        print("  open with a passphrase (PBKDF2, \(StoreKey.defaultIterations) iterations): \(format6(passphraseOpen)) s")
        print("  file bytes: plain \(plain.fileBytes), encrypted \(encrypted.fileBytes)")
    }
} catch {
    print("pier-bench-crypto: \(error)")
    exit(1)
}
for name in ["plain", "encrypted", "passphrase"] { remove(directory + "/\(name).pier") }
rmdir(directory)

func format6(_ value: Double) -> String {
    let scaled = Int((value * 1_000_000).rounded())
    let whole = scaled / 1_000_000
    let fraction = String(scaled % 1_000_000)
    return "\(whole)." + String(repeating: "0", count: 6 - fraction.count) + fraction
}

func format2(_ value: Double) -> String {
    let scaled = Int((value * 100).rounded())
    let fraction = String(scaled % 100)
    return "\(scaled / 100)." + String(repeating: "0", count: 2 - fraction.count) + fraction
}
