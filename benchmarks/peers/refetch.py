"""The classic full-refetch sync, built the obvious way: the baseline of benchmarks/run.

The server has one JSON endpoint that returns every record; the client downloads it,
parses it, and replaces its local rows with what it got. No change tracking, no
cursors: every sync moves the whole dataset.

    python refetch.py serve DB PORT   serves GET /records from the table records(id, body)
                                      of DB: SQLite renders the JSON array itself
                                      (json_group_array, the fastest way to get JSON out of
                                      SQLite), zlib compresses it at level 6 (gzip).
    python refetch.py fetch URL DB    one sync: GET URL/records (gzip), gunzip, json.loads,
                                      then in one transaction DELETE every local row and
                                      INSERT each record again (its body serialised back to
                                      JSON text). Prints one JSON line: time, bytes on the
                                      wire, records, idle and peak resident set.

Both ends use SQLite with the pragmas Pier sets (WAL, synchronous=NORMAL).
"""

from __future__ import annotations

import gzip
import http.server
import json
import sqlite3
import sys
import time
import urllib.request

PRAGMAS = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;"
SCHEMA = "CREATE TABLE IF NOT EXISTS records(id TEXT PRIMARY KEY, body TEXT NOT NULL)"


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def serve(db_path: str, port: int) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path != "/records":
                self.send_error(404)
                return
            db = sqlite3.connect(db_path)
            try:
                (text,) = db.execute(
                    "SELECT json_group_array(json_object('id', id, 'body', json(body))) FROM records"
                ).fetchone()
            finally:
                db.close()
            payload = gzip.compress(text.encode(), compresslevel=6)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"refetch: listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def fetch(url: str, db_path: str) -> None:
    db = sqlite3.connect(db_path, isolation_level=None)
    db.executescript(PRAGMAS + SCHEMA)
    before = db.execute("SELECT count(*) FROM records").fetchone()[0]
    idle = status_kib("VmRSS:")
    start = time.perf_counter()
    request = urllib.request.Request(url + "/records", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=600) as response:
        compressed = response.read()
    text = gzip.decompress(compressed)
    records = json.loads(text)
    db.execute("BEGIN")
    db.execute("DELETE FROM records")
    db.executemany(
        "INSERT INTO records(id, body) VALUES (?, ?)",
        ((r["id"], json.dumps(r["body"], separators=(",", ":"), ensure_ascii=False)) for r in records),
    )
    db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    peak = status_kib("VmHWM:")
    after = db.execute("SELECT count(*) FROM records").fetchone()[0]
    db.close()
    print(json.dumps({
        "section": "refetch", "records_before": before, "records_after": after, "seconds": elapsed,
        "bytes_received": len(compressed), "json_bytes": len(text), "idle_rss_kib": idle, "peak_rss_kib": peak,
    }), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "fetch":
        fetch(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: refetch.py serve DB PORT | fetch URL DB")
