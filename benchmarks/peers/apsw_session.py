"""Items 1 and 2 of benchmarks/run as a Python programmer sees them: apsw (with SQLite's
session extension) against Pier's Python binding, in one process, on the same rows.

    python apsw_session.py N ROUNDS DIR      (run in the venv that has apsw)

Sides, best of ROUNDS, interleaved, fresh files each round; the pragmas Pier sets:
- writes, bulk: N inserts in one transaction with apsw (executemany), the same with a
  session attached (the changeset taken inside the timing), and Pier's
  ``Database.put_many`` (one transaction);
- apply: the same N rows inserted with apsw executemany, and ``Changeset.apply`` of a
  changeset holding those inserts.

Prints one JSON object per figure. Pier's library comes from $PIER_LIBRARY.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import apsw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bindings" / "python" / "src"))
import pier  # noqa: E402

PRAGMAS = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;"
SCHEMA = "CREATE TABLE records(id TEXT PRIMARY KEY, body TEXT NOT NULL)"
CITIES = ["Oslo", "Bergen", "London", "Paris", "Rome", "Madrid", "Berlin", "Vienna", "Prague", "Lisbon",
          "Dublin", "Warsaw", "Zurich", "Geneva", "Milan", "Turin", "Lyon", "Nice", "Porto", "Seville"]


def make_rows(count: int) -> list[tuple[str, str]]:
    """The customer bodies of pier-bench-sync and bench_local (same generator), UUIDv7 ids."""
    state = 42
    mask = (1 << 64) - 1

    def nxt() -> int:
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) & mask
        return state >> 17

    rows = []
    for i in range(count):
        city = CITIES[nxt() % 20]
        phone, street, balance, tier, notes = (10_000_000 + nxt() % 89_999_999, nxt() % 400, nxt() % 100_000,
                                               nxt() % 5, nxt() % 1000)
        body = (f'{{"name":"Customer {i}","city":"{city}","phone":"+47 {phone}","street":"{street} Harbour Road",'
                f'"balance":{balance},"tier":{tier},"notes":"serviced on schedule {notes}"}}')
        rows.append((pier.new_id(), body))
    return rows


def remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def open_raw(path: Path) -> apsw.Connection:
    remove(path)
    db = apsw.Connection(str(path))
    db.execute(PRAGMAS)
    db.execute(SCHEMA)
    return db


def raw_bulk(path: Path, rows: list[tuple[str, str]], session: bool) -> tuple[float, bytes]:
    db = open_raw(path)
    recorder = None
    if session:
        recorder = apsw.Session(db, "main")
        recorder.attach("records")
    start = time.perf_counter()
    with db:
        db.executemany("INSERT INTO records(id, body) VALUES (?, ?)", rows)
    changeset = recorder.changeset() if recorder else b""
    elapsed = time.perf_counter() - start
    if recorder:
        recorder.close()
    db.close()
    remove(path)
    return elapsed, changeset


def pier_bulk(path: Path, rows: list[tuple[str, str]]) -> float:
    remove(path)
    db = pier.Database(str(path))
    start = time.perf_counter()
    db.put_many("customers", rows)
    elapsed = time.perf_counter() - start
    assert db.count("customers") == len(rows)
    db.close()
    remove(path)
    return elapsed


def apply_changeset(path: Path, changeset: bytes, count: int) -> float:
    db = open_raw(path)
    start = time.perf_counter()
    with db:
        apsw.Changeset.apply(changeset, db)
    elapsed = time.perf_counter() - start
    assert db.execute("SELECT count(*) FROM records").fetchall()[0][0] == count
    db.close()
    remove(path)
    return elapsed


def main() -> None:
    count, rounds, folder = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    rows = make_rows(count)
    best: dict[str, float] = {}
    changeset = b""

    def keep(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, float("inf")), seconds)

    for _ in range(rounds):
        seconds, _ = raw_bulk(folder / "apsw-raw.db", rows, session=False)
        keep("raw", seconds)
        seconds, changeset = raw_bulk(folder / "apsw-session.db", rows, session=True)
        keep("session", seconds)
        keep("pier", pier_bulk(folder / "apsw-pier.pier", rows))
        keep("changeset", apply_changeset(folder / "apsw-apply.db", changeset, count))
    meta = {"apsw": apsw.apsw_version(), "sqlite": apsw.sqlite_lib_version(), "pier": pier.version()}
    for side in ("raw", "session", "pier"):
        print(json.dumps({"section": "writes-python", "kind": "bulk", "side": side, "records": count,
                          "seconds": best[side], "rate": count / best[side], **meta}))
    print(json.dumps({"section": "apply-python", "kind": "insert", "side": "raw", "records": count,
                      "seconds": best["raw"], "rate": count / best["raw"], **meta}))
    print(json.dumps({"section": "apply-python", "kind": "insert", "side": "changeset", "records": count,
                      "seconds": best["changeset"], "rate": count / best["changeset"],
                      "changeset_bytes": len(changeset), **meta}))


if __name__ == "__main__":
    main()
