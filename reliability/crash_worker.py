"""One client process of the kill -9 crash test (reliability/crash.py runs and kills it).

It opens its store and loops: random writes on its own records (collection ``items``,
ids ``<name>-NN``: creates, updates, merge patches, deletes, and now and then a host
transaction of several writes), and a sync against the loopback server every few
writes. Around every write it appends to its journal, one ``os.write`` per line (a
SIGKILL never loses what ``write`` returned from; the page cache survives the process):

    I <seq> <txn> <op> <record id>   before the write (intent; a transaction's intents share txn)
    A <txn>                          after the write or the transaction's commit returned (ack)
    S <outcome>                      after a sync: ``ok``, ``replayed`` (it resent a batch whose
                                     reply was lost) or the PierError class name

Every body carries the ``seq`` of the write that produced it (a patch sets it too), so the
checker knows exactly which write a stored value came from. ``seq`` continues across
restarts: it starts after the largest seq in the journal.

The process ends (exit 0) when the stop file appears, after ``--max-seconds``, or when its
parent is gone; it is normally ended by SIGKILL, from the driver or from a crash point
armed through ``PIER_TEST_CRASH_POINT``. Any other failure is a traceback and exit 1,
which the driver reports.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import API_KEY  # noqa: E402  (sets up the import path of the binding)

import pier  # noqa: E402

COLLECTION = "items"
#: Records per worker: few enough that records are updated, deleted and created again often.
POOL = 24


def next_seq(journal: Path) -> int:
    """The seq after the largest one in the journal (1 for a new journal).

    Seqs only grow down the file, so the last intent line holds the largest: only the
    journal's tail is read (a full run's journal has a million lines). A line torn by a
    kill (no trailing newline) is closed with a newline first, so the next line starts
    clean; a torn intent never ran its write, so its seq may be used again.
    """
    if not journal.exists():
        return 1
    with open(journal, "rb") as source:
        size = source.seek(0, os.SEEK_END)
        source.seek(max(0, size - 65536))
        tail = source.read()
    if tail and not tail.endswith(b"\n"):
        with open(journal, "ab") as out:
            out.write(b"\n")
    lines = tail.decode("utf-8", "replace").splitlines()
    if size > len(tail):
        lines = lines[1:]  # the first line of the tail may be cut
    for line in reversed(lines):
        parts = line.split()
        if len(parts) == 5 and parts[0] == "I" and parts[1].isdigit():
            return int(parts[1]) + 1
    if size > len(tail):
        raise RuntimeError(f"{journal}: no intent line in its last {len(tail)} bytes")
    return 1


class Journal:
    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def line(self, text: str) -> None:
        os.write(self.fd, (text + "\n").encode("utf-8"))


def live(db: pier.Database, record_id: str) -> bool:
    try:
        db.get(COLLECTION, record_id)
        return True
    except pier.NotFoundError:
        return False


def write_one(db: pier.Database, rng: random.Random, name: str, record_id: str, seq: int) -> Tuple[str, Optional[Dict[str, Any]]]:
    """Chooses the operation for one record from its local state; returns (op, body or
    patch, None for a delete)."""
    if not live(db, record_id):
        op = "put"
    else:
        op = rng.choices(["put", "patch", "delete"], weights=[4, 4, 2])[0]
    if op == "put":
        return op, {"id": record_id, "w": name, "seq": seq, "pad": "x" * rng.randrange(0, 300)}
    if op == "patch":
        return op, {"seq": seq, "patched": seq}
    return op, None


def apply(db: pier.Database, op: str, record_id: str, argument: Optional[Dict[str, Any]]) -> None:
    if op == "delete":
        db.delete(COLLECTION, record_id)
    elif argument is not None:
        (db.put if op == "put" else db.patch)(COLLECTION, record_id, argument)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--stop", required=True, help="the process ends cleanly once this file exists")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    journal_path = Path(args.journal)
    seq = next_seq(journal_path)
    journal = Journal(journal_path)
    stop = Path(args.stop)
    parent = os.getppid()
    ends = time.monotonic() + args.max_seconds
    ids = [f"{args.name}-{n:02d}" for n in range(POOL)]

    db = pier.Database(args.store)
    while not stop.exists() and time.monotonic() < ends and os.getppid() == parent:
        if rng.random() < 0.15:
            # A host transaction: its writes commit together or not at all.
            txn = seq
            with db.transaction():
                for record_id in rng.sample(ids, rng.randint(2, 4)):
                    op, argument = write_one(db, rng, args.name, record_id, seq)
                    journal.line(f"I {seq} {txn} {op} {record_id}")
                    apply(db, op, record_id, argument)
                    seq += 1
            journal.line(f"A {txn}")
        else:
            record_id = rng.choice(ids)
            op, argument = write_one(db, rng, args.name, record_id, seq)
            journal.line(f"I {seq} {seq} {op} {record_id}")
            apply(db, op, record_id, argument)
            journal.line(f"A {seq}")
            seq += 1
        if rng.random() < 0.35:
            try:
                report = db.sync(url=args.url, token=API_KEY, retries=0, timeout=5, connect_timeout=2)
                journal.line("S replayed" if report.replayed_batch else "S ok")
            except pier.PierError as error:
                journal.line(f"S {type(error).__name__}")
        time.sleep(rng.uniform(0, 0.004))
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
