"""Could another compressor or layout bring a pull page under 0.7 of gzip-6 JSON? (issue 3)

A diagnostic, not part of the recorded figures. It reads the pages `pier-bench-wire --dump
PREFIX` writes (the message bytes PierWire compresses, the gzip baseline's JSON array and
the records one per line) and reports, for each compressor and level, the bytes per
record against gzip -6 of the JSON array and the compression speed in MB/s of message
bytes, measured here, in Python, so only the comparison between the rows means anything:

  zlib         the deflate PierWire's format version 1 carries, through Python's zlib
  libdeflate   the deflater PierWire uses (the `deflate` package), same format
  zstd         Zstandard (the `zstandard` package), a candidate algorithm for a later format
  brotli       Brotli (the `brotli` package), the same
  xz           LZMA2 raw (Python's lzma), the same

and two layout changes without parsing a body (format version 2 adopted both, with HLC
byte planes, on 2026-11-24; the dumped message bytes are now version 2's, and the .tsv
columns below still show what each change saves from version 1's layout):

  grouped      bodies in the body column grouped by collection (the collection column
               already says which body is whose), so like bodies sit together
  id planes    the 16-byte ids stored as 16 planes (byte 0 of every id, then byte 1, ...),
               so the constant and near-constant bytes of UUIDv7 timestamps line up

Run through benchmarks/wire/codecs, which builds the bench, makes a virtual environment
with the three packages and passes PREFIX.
"""

import gzip
import lzma
import sys
import time
import zlib

import brotli
import deflate
import zstandard


def timed(compress, data, rounds=3):
    best = float("inf")
    out = b""
    for _ in range(rounds):
        start = time.perf_counter()
        out = compress(data)
        best = min(best, time.perf_counter() - start)
    return len(out), len(data) / best / 1e6


def raw_deflate(level):
    def run(data):
        c = zlib.compressobj(level, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()
    return run


def main(prefix):
    for workload in ("field", "counters"):
        payload = open(f"{prefix}-{workload}.payload", "rb").read()
        json_array = open(f"{prefix}-{workload}.json", "rb").read()
        rows = [line.split(b"\t", 4) for line in open(f"{prefix}-{workload}.tsv", "rb").read().split(b"\n") if line]
        count = len(rows)
        gzip_json = len(gzip.compress(json_array, 6))
        print(f"## {workload}: {count} records, message {len(payload)} B, "
              f"gzip -6 JSON {gzip_json / count:.1f} B/record (0.7 of it: {0.7 * gzip_json / count:.1f})")
        print()
        print("| compressor | B/record | / gzip-6 JSON | MB/s |")
        print("|---|---:|---:|---:|")
        candidates = [(f"zlib {lv}", raw_deflate(lv)) for lv in (6, 9)]
        candidates += [(f"libdeflate {lv}", lambda d, lv=lv: deflate.deflate_compress(d, lv)) for lv in (6, 9, 12)]
        candidates += [(f"zstd {lv}", lambda d, lv=lv: zstandard.ZstdCompressor(level=lv).compress(d)) for lv in (3, 9, 15, 19)]
        candidates += [(f"brotli {q}", lambda d, q=q: brotli.compress(d, quality=q, lgwin=22)) for q in (5, 7, 9, 11)]
        candidates += [(f"xz {p}", lambda d, p=p: lzma.compress(d, format=lzma.FORMAT_RAW,
                                                                   filters=[{"id": lzma.FILTER_LZMA2, "preset": p}]))
                       for p in (1, 6)]
        for name, compress in candidates:
            size, speed = timed(compress, payload)
            print(f"| {name} | {size / count:.1f} | {size / gzip_json:.3f} | {speed:.1f} |")
        print()

        # Layout changes, measured on their own columns with libdeflate 6 (PierWire's default).
        bodies = [r[4] for r in rows]
        order = {c: i for i, c in enumerate(dict.fromkeys(r[0] for r in rows))}
        grouped = b"".join(b for _, b in sorted(zip((order[r[0]] for r in rows), bodies), key=lambda x: x[0]))
        ids = [bytes.fromhex(r[1].decode().replace("-", "")) for r in rows]
        planes = b"".join(bytes(i[k] for i in ids) for k in range(16))
        d6 = lambda d: len(deflate.deflate_compress(d, 6))
        print("| column (libdeflate 6) | as today, B/record | changed, B/record | saved, B/record |")
        print("|---|---:|---:|---:|")
        print(f"| bodies grouped by collection | {d6(b''.join(bodies)) / count:.1f} | {d6(grouped) / count:.1f} | "
              f"{(d6(b''.join(bodies)) - d6(grouped)) / count:.1f} |")
        print(f"| ids as 16 byte planes | {d6(b''.join(ids)) / count:.1f} | {d6(planes) / count:.1f} | "
              f"{(d6(b''.join(ids)) - d6(planes)) / count:.1f} |")
        print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pier-wire")
