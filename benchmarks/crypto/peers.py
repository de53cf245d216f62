#!/usr/bin/env python3
"""Encryption at rest, the peers' side: the workload of benchmarks/crypto/main.swift on
SQLite3 Multiple Ciphers (apsw-sqlite3mc) and on SQLCipher (sqlcipher3), each measured in
its own plain mode and in its encrypted mode in the same process, so that the ratio
encrypted/plain is taken on the same machine at the same moment, as Pier's is.

    peers.py --peer apsw-sqlite3mc-chacha20|apsw-sqlite3mc-sqlcipher|sqlcipher3
             [--records N] [--single-writes M] [--reads R] [--rounds K] [--dir TMPDIR]

Run it with the interpreter of the venv that benchmarks/crypto/setup-peers made for the
peer: .build-bench/venvs/mc/bin/python for the two apsw-sqlite3mc peers,
.build-bench/venvs/cipher/bin/python for sqlcipher3.

Output: one JSON object per line on stdout, one per mode and measure, e.g.
    {"peer": "sqlcipher3", "mode": "encrypted", "measure": "bulk_write", "seconds": 1.23, "ops": 20000, "rounds": 3}
A "file_bytes" line carries "bytes" instead of "seconds". Library versions go to stderr.
A timing never fails the program; a correctness check does (exit 1).

Workload (the definitions main.swift uses; change both together):

  schema       CREATE TABLE records(id TEXT PRIMARY KEY, body TEXT NOT NULL), page_size 4096,
               journal_mode=WAL, synchronous=NORMAL, cache_size=-16384 (16 MiB).
  record i     id = "c%06d" % i; body = JSON text
               {"name":"Customer <i>","city":"<CITIES[i % 8]>","balance":<i*37 % 100000>,
                "notes":"<120 + i % 80 lowercase letters>"}
               where the notes come from a 32-bit LCG seeded with i: x = (i*2654435761 + 1)
               mod 2^32, then per letter x = (x*1103515245 + 12345) mod 2^32 and the letter
               is "a" + (x >> 16) % 26.
  bulk_write   N records (0..N-1) inserted in one transaction into a new file.
  single_write M more records (N..N+M-1), each INSERT in its own autocommit transaction.
  read         close, reopen (cold SQLite page cache; the OS cache stays warm), then R point
               reads SELECT body FROM records WHERE id=? of ids id(SplitMix64(seed 42) % N),
               taken in sequence; seconds are the total for the R reads.
  open         median over 20 runs of: open connection + key + SELECT count(*) FROM
               sqlite_master + close, on the file the round wrote; seconds are one open.
  file_bytes   size of the database file after the round (the WAL is checkpointed and
               removed by the last close).

Each of --rounds rounds (default 3) runs the whole workload on a new file in plain mode and
then in encrypted mode; each figure printed is the median over the rounds. Alternating the
two modes makes drift on a shared machine hit both alike.

Keys, as main.swift uses them:
  encrypted             a raw 32-byte key (bytes 0..31), so no key derivation runs on open
                        and the figures show the cost of the page cipher alone.
  encrypted-passphrase  "open" only: the passphrase "correct horse battery staple" with the
                        library's default KDF (sqlite3mc ChaCha20: PBKDF2-HMAC-SHA256, 64,007
                        iterations; SQLCipher 4: PBKDF2-HMAC-SHA512, 256,000 iterations;
                        Pier: PBKDF2-HMAC-SHA256, 600,000), median of 5 opens of a fresh file.

The read ids use SplitMix64 rather than random.Random(42) because main.swift cannot
reproduce Python's Mersenne Twister, and both sides must read the same ids.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

CITIES = ["Oslo", "Bergen", "London", "Paris", "Rome", "Madrid", "Berlin", "Vienna"]
OPEN_RUNS = 20
PASSPHRASE_OPEN_RUNS = 5
RAW_KEY_HEX = bytes(range(32)).hex()
PASSPHRASE = "correct horse battery staple"
MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF
SQLITE_MAGIC = b"SQLite format 3\x00"


def record_id(i: int) -> str:
    return "c%06d" % i


def notes(i: int) -> str:
    x = (i * 2654435761 + 1) & MASK32
    letters = []
    for _ in range(120 + i % 80):
        x = (x * 1103515245 + 12345) & MASK32
        letters.append(chr(97 + (x >> 16) % 26))
    return "".join(letters)


def record(i: int) -> tuple[str, str]:
    """Record i of the workload as (id, body); the body is built as text, not with json.dumps,
    so that its bytes match main.swift's exactly (no spaces, this key order)."""
    body = (f'{{"name":"Customer {i}","city":"{CITIES[i % 8]}",'
            f'"balance":{i * 37 % 100000},"notes":"{notes(i)}"}}')
    return record_id(i), body


def splitmix64(seed: int):
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        yield z ^ (z >> 31)


def read_ids(records: int, reads: int) -> list[str]:
    numbers = splitmix64(42)
    return [record_id(next(numbers) % records) for _ in range(reads)]


# --- Peers -----------------------------------------------------------------------------
#
# A peer knows how to open a connection in each mode. Connections of both libraries offer
# execute(sql, params) returning a cursor with fetchone(), executemany and close(), which
# is all the workload needs.


class Peer:
    name = ""

    def connect(self, path: str, key: str | None):
        """Opens path and applies key ("raw" or "passphrase"), or no key for plain mode.
        Only what must precede the first read belongs here: it is what "open" times."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class SQLite3MC(Peer):
    """apsw built with SQLite3 Multiple Ciphers. The cipher is chosen per connection with
    PRAGMA cipher before the key; without a key the library is plain SQLite."""

    def __init__(self, cipher: str):
        try:
            import apsw
        except ImportError:
            sys.exit("peers.py: no module apsw; run benchmarks/crypto/setup-peers and use "
                     ".build-bench/venvs/mc/bin/python")
        self.apsw = apsw
        self.cipher = cipher
        self.name = f"apsw-sqlite3mc-{cipher}"
        probe = apsw.Connection(":memory:")
        try:
            self.mc_version = probe.execute("SELECT sqlite3mc_version()").fetchall()[0][0]
        except apsw.SQLError:
            # Plain apsw would run the whole benchmark unencrypted without a word.
            sys.exit("peers.py: this apsw is not the SQLite3 Multiple Ciphers build "
                     "(pip install apsw-sqlite3mc in a venv without apsw)")
        finally:
            probe.close()

    def connect(self, path, key):
        con = self.apsw.Connection(path)
        if key is None:
            return con
        con.execute(f"PRAGMA cipher = '{self.cipher}'")
        if self.cipher == "sqlcipher":
            # legacy=4 is SQLCipher 4's own format (page 1 encrypted whole, PBKDF2-SHA512,
            # HMAC-SHA512), so the file is one SQLCipher itself could open.
            con.execute("PRAGMA legacy = 4")
        if key == "raw":
            # Each scheme has its own literal for a raw key (sqlite3mc docs, "PRAGMA key").
            literal = (f"'raw:{RAW_KEY_HEX}'" if self.cipher == "chacha20"
                       else f"\"x'{RAW_KEY_HEX}'\"")
            con.execute(f"PRAGMA key = {literal}")
        else:
            con.execute(f"PRAGMA key = '{PASSPHRASE}'")
        return con

    def describe(self):
        return (f"apsw {self.apsw.apsw_version()}, SQLite {self.apsw.sqlite_lib_version()}, "
                f"{self.mc_version}, cipher {self.cipher}")


class SQLCipher(Peer):
    """sqlcipher3 (or sqlcipher3-binary, which installs the same module): SQLCipher 4 with
    its default settings. With no key it reads and writes ordinary SQLite files."""

    name = "sqlcipher3"

    def __init__(self):
        try:
            import sqlcipher3
        except ImportError:
            sys.exit("peers.py: no module sqlcipher3; run benchmarks/crypto/setup-peers and use "
                     ".build-bench/venvs/cipher/bin/python")
        self.sqlcipher3 = sqlcipher3

    def connect(self, path, key):
        # isolation_level=None: no implicit BEGIN, so a lone INSERT commits by itself and
        # the bulk write's BEGIN/COMMIT are the only transaction, as with apsw.
        con = self.sqlcipher3.connect(path, isolation_level=None)
        if key == "raw":
            con.execute(f"PRAGMA key = \"x'{RAW_KEY_HEX}'\"")
        elif key == "passphrase":
            con.execute(f"PRAGMA key = '{PASSPHRASE}'")
        return con

    def describe(self):
        con = self.sqlcipher3.connect(":memory:")
        con.execute("PRAGMA key = 'describe'")  # the provider is chosen once a key is set
        version = con.execute("PRAGMA cipher_version").fetchone()[0]
        provider = con.execute("PRAGMA cipher_provider").fetchone()[0]
        provider_version = con.execute("PRAGMA cipher_provider_version").fetchone()[0]
        con.close()
        return (f"SQLite {self.sqlcipher3.sqlite_version}, SQLCipher {version}, "
                f"{provider} {provider_version}")


PEERS = {
    "apsw-sqlite3mc-chacha20": lambda: SQLite3MC("chacha20"),
    "apsw-sqlite3mc-sqlcipher": lambda: SQLite3MC("sqlcipher"),
    "sqlcipher3": SQLCipher,
}


# --- Workload --------------------------------------------------------------------------


def remove(path: str):
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def configure(con):
    """The per-connection settings every working connection gets (journal_mode and
    page_size live in the file and are set once, in create)."""
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("PRAGMA cache_size = -16384")


def create(peer: Peer, path: str, key: str | None):
    remove(path)
    con = peer.connect(path, key)
    # page_size only takes effect before the first table exists, and must come before the
    # switch to WAL, which fixes the page size.
    con.execute("PRAGMA page_size = 4096")
    con.execute("PRAGMA journal_mode = WAL").fetchone()
    configure(con)
    con.execute("CREATE TABLE records(id TEXT PRIMARY KEY, body TEXT NOT NULL)")
    return con


class Failure(Exception):
    pass


def check(path: str, con, key: str | None, expected_rows: int, bulk_rows, single_rows):
    """Guards the figures: the rows are there and right, the file has the page size asked
    for, and encrypted mode really encrypted (an ignored PRAGMA key would otherwise yield
    a fast 'encrypted' figure that is plain SQLite)."""
    count = con.execute("SELECT count(*) FROM records").fetchone()[0]
    if count != expected_rows:
        raise Failure(f"{path}: {count} rows, expected {expected_rows}")
    for rid, body in [bulk_rows[0], bulk_rows[-1]] + single_rows[-1:]:
        got = con.execute("SELECT body FROM records WHERE id = ?", (rid,)).fetchone()
        if got is None or got[0] != body:
            raise Failure(f"{path}: record {rid} reads back wrong")
    # int(): SQLCipher answers this pragma with text once a key is set.
    page_size = int(con.execute("PRAGMA page_size").fetchone()[0])
    if page_size != 4096:
        raise Failure(f"{path}: page_size {page_size}, expected 4096")
    mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    if mode.lower() != "wal":
        raise Failure(f"{path}: journal_mode {mode}, expected wal")
    with open(path, "rb") as f:
        plaintext = f.read(16) == SQLITE_MAGIC
    if plaintext != (key is None):
        raise Failure(f"{path}: the file is {'plain' if plaintext else 'not plain'} "
                      f"in {'plain' if key is None else 'encrypted'} mode")


def round_(peer: Peer, path: str, key: str | None, bulk_rows, single_rows, ids) -> dict:
    """One pass of the workload in one mode; returns its figures in seconds (and bytes)."""
    figures = {}
    con = create(peer, path, key)
    start = time.perf_counter()
    con.execute("BEGIN")
    con.executemany("INSERT INTO records(id, body) VALUES (?, ?)", bulk_rows)
    con.execute("COMMIT")
    figures["bulk_write"] = time.perf_counter() - start

    start = time.perf_counter()
    for row in single_rows:
        con.execute("INSERT INTO records(id, body) VALUES (?, ?)", row)
    figures["single_write"] = time.perf_counter() - start
    con.close()

    con = peer.connect(path, key)
    configure(con)
    total = 0
    start = time.perf_counter()
    for rid in ids:
        total += len(con.execute("SELECT body FROM records WHERE id = ?", (rid,)).fetchone()[0])
    figures["read"] = time.perf_counter() - start
    if ids and total == 0:
        raise Failure(f"{path}: the reads returned nothing")
    check(path, con, key, len(bulk_rows) + len(single_rows), bulk_rows, single_rows)
    con.close()

    opens = []
    for _ in range(OPEN_RUNS):
        start = time.perf_counter()
        con = peer.connect(path, key)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        con.close()
        opens.append(time.perf_counter() - start)
    figures["open"] = statistics.median(opens)
    figures["file_bytes"] = os.path.getsize(path)
    return figures


def passphrase_open(peer: Peer, path: str) -> float:
    """Median open of a small file keyed with a passphrase: one KDF run per open."""
    con = create(peer, path, "passphrase")
    con.execute("INSERT INTO records(id, body) VALUES (?, ?)", record(0))
    con.close()
    opens = []
    for _ in range(PASSPHRASE_OPEN_RUNS):
        start = time.perf_counter()
        con = peer.connect(path, "passphrase")
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        con.close()
        opens.append(time.perf_counter() - start)
    return statistics.median(opens)


def emit(line: dict):
    print(json.dumps(line), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", required=True, choices=sorted(PEERS))
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--single-writes", type=int, default=1_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None,
                        help="where to make the temporary directory for the files "
                             "(default: $TMPDIR or /tmp)")
    args = parser.parse_args(argv)
    if args.records < 2 or args.single_writes < 0 or args.reads < 0 or args.rounds < 1:
        parser.error("need --records >= 2, --single-writes >= 0, --reads >= 0, --rounds >= 1")

    peer = PEERS[args.peer]()
    print(f"peers.py: {peer.name}: {peer.describe()}", file=sys.stderr)

    # Built before any timing, as main.swift builds its rows, so that making the JSON text
    # is not part of any figure.
    bulk_rows = [record(i) for i in range(args.records)]
    single_rows = [record(i) for i in range(args.records, args.records + args.single_writes)]
    ids = read_ids(args.records, args.reads)

    directory = tempfile.mkdtemp(prefix="pier-bench-peers-", dir=args.dir)
    try:
        results = {"plain": [], "encrypted": []}
        for _ in range(args.rounds):
            results["plain"].append(round_(peer, os.path.join(directory, "plain.db"), None,
                                           bulk_rows, single_rows, ids))
            results["encrypted"].append(round_(peer, os.path.join(directory, "encrypted.db"),
                                               "raw", bulk_rows, single_rows, ids))
        passphrase = passphrase_open(peer, os.path.join(directory, "passphrase.db"))
    except Failure as failure:
        print(f"peers.py: {peer.name}: {failure}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    ops = {"bulk_write": args.records, "single_write": args.single_writes, "read": args.reads}
    for mode, rounds in results.items():
        for measure in ("bulk_write", "single_write", "read", "open"):
            line = {"peer": peer.name, "mode": mode, "measure": measure,
                    "seconds": round(statistics.median(r[measure] for r in rounds), 6)}
            if measure == "open":
                line["runs"] = OPEN_RUNS
            else:
                line["ops"] = ops[measure]
            line["rounds"] = args.rounds
            emit(line)
        # The size is the same every round: the last one stands for all.
        emit({"peer": peer.name, "mode": mode, "measure": "file_bytes",
              "bytes": rounds[-1]["file_bytes"]})
    emit({"peer": peer.name, "mode": "encrypted-passphrase", "measure": "open",
          "seconds": round(passphrase, 6), "runs": PASSPHRASE_OPEN_RUNS})
    return 0


if __name__ == "__main__":
    sys.exit(main())
