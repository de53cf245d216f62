"""Concurrency: many clients on a few hot records lose no update, on SQLite and PostgreSQL.

Issue 7 of the reliability harness. One ``pier serve`` per master store (an SQLite file, a
fresh PostgreSQL database) and N client threads, each with its own ``pier.Database``
(syncing over HTTP releases the GIL, so the syncs really overlap), work for R rounds on
100 shared hot records:

- 50 counters in a ``manual`` collection: a client increments a counter on its local copy
  (``put`` of n + 1; the increment is acknowledged when ``put`` returns) and syncs with a
  resolver that rebases: merged n = server n + (local n - base n). A lost update, or a
  resolution applied twice, breaks "every counter equals the sum of the increments
  acknowledged to it".
- 50 sets in a ``merge_fields`` collection: a client adds an element as a new field
  (``patch``); every acknowledged element must be in the set, and nothing else.

After the rounds every client syncs until a whole pass moves nothing, a fresh client
pulls the server's records, and: every counter and set holds exactly what was
acknowledged; every client's records equal the server's, with nothing pending and no
conflict left; the business log shows no change applied twice (``common.audit_log``, read
with psql for PostgreSQL); ``PRAGMA integrity_check`` passes on the SQLite stores.

PostgreSQL: the URL comes from ``PIER_TEST_POSTGRES_URL``; without it a throwaway cluster
is started with ``scripts/pg-cluster`` (its own state file in the work folder) and
stopped at the end. Each run creates, and drops on success, its own database.

Run: ``python3 reliability/concurrency.py`` (CI: 8 clients), ``--full`` (32 clients),
``--clients N --rounds R --stores sqlite,postgres --seed S``. The result names the
command that repeats the run; exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import functools
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from common import (
    API_KEY,
    ROOT,
    Serve,
    audit_log,
    audit_log_postgres,
    integrity,
    local_records,
    psql_rows,
    run_threads,
    write_result,
)

import pier

COUNTERS = "counters"
SETS = "sets"
COLLECTIONS = [COUNTERS, SETS]
HOT_RECORDS = 100
COUNTER_IDS = [f"k{n:02d}" for n in range(HOT_RECORDS // 2)]
SET_IDS = [f"s{n:02d}" for n in range(HOT_RECORDS - HOT_RECORDS // 2)]
QUIESCE_PASSES = 10
#: The bound on the clients' rounds, per store.
ROUNDS_TIMEOUT = 600.0


def merge(conflict: pier.Conflict) -> Dict[str, Any]:
    """The resolver's rebase: the server's state plus what this client did since its base."""
    server = conflict.server_body or {}
    local = conflict.local_body or {}
    base = conflict.base_body or {}
    if conflict.collection == COUNTERS:
        return {"n": int(server.get("n", 0)) + int(local.get("n", 0)) - int(base.get("n", 0))}
    return {**server, **local}  # a set only grows: the union


class Worker:
    """One client thread: its store and the increments and elements it was acknowledged."""

    def __init__(self, number: int, path: Path, url: str, rng: random.Random) -> None:
        self.number = number
        self.path = path
        self.url = url
        self.rng = rng
        self.db = pier.Database(str(path))
        self.increments: Counter[str] = Counter()
        self.elements: Dict[str, Set[str]] = {}
        self.resolved = 0
        self.reported_conflicts = 0
        self.syncs = 0
        self.sync_errors: Counter[str] = Counter()

    def resolver(self, conflict: pier.Conflict) -> Dict[str, Any]:
        self.resolved += 1
        return merge(conflict)

    def sync(self) -> Optional[pier.SyncReport]:
        self.syncs += 1
        try:
            report = self.db.sync(url=self.url, token=API_KEY, timeout=60, resolver=self.resolver)
        except pier.PierError as error:
            self.sync_errors[type(error).__name__] += 1
            return None
        self.reported_conflicts += report.conflicts
        return report

    def increment(self) -> None:
        counter = self.rng.choice(COUNTER_IDS)
        value = int(self.db.get(COUNTERS, counter)["n"])
        self.db.put(COUNTERS, counter, {"n": value + 1})
        self.increments[counter] += 1

    def add(self, added: int) -> None:
        target = self.rng.choice(SET_IDS)
        element = f"c{self.number}-e{added}"
        self.db.patch(SETS, target, {element: True})
        self.elements.setdefault(target, set()).add(element)

    def run(self, rounds: int, start: threading.Barrier) -> None:
        start.wait(60)
        added = 0
        for _ in range(rounds):
            for _ in range(self.rng.randint(1, 6)):
                self.increment()
            for _ in range(self.rng.randint(0, 3)):
                added += 1
                self.add(added)
            self.sync()
            time.sleep(self.rng.uniform(0, 0.01))


def seed_records(folder: Path, url: str) -> None:
    """Creates every hot record once, so that every client edits a shared server copy."""
    with pier.Database(str(folder / "seeder.pier")) as db:
        with db.transaction():
            for counter in COUNTER_IDS:
                db.put(COUNTERS, counter, {"n": 0})
            for target in SET_IDS:
                db.put(SETS, target, {})
        db.sync(url=url, token=API_KEY, timeout=60)


def quiesce(workers: List[Worker]) -> List[str]:
    """Syncs every client in turn until a whole pass moves nothing."""
    for _ in range(QUIESCE_PASSES):
        quiet = True
        for worker in workers:
            report = worker.sync()
            quiet = quiet and report is not None and report.pushed == 0 and report.pulled == 0
        if quiet and all(not w.db.info()["pending"] and not w.db.conflicts() for w in workers):
            return []
    return [f"not quiet after {QUIESCE_PASSES} passes: pending " + ", ".join(str(w.db.info()["pending"]) for w in workers)]


def check(workers: List[Worker], folder: Path, url: str) -> Tuple[List[str], Dict[str, int]]:
    """The invariants: (violations, figures)."""
    violations: List[str] = []
    with pier.Database(str(folder / "reader.pier")) as reader:
        reader.sync(url=url, token=API_KEY, timeout=60)
        server = local_records(reader, COLLECTIONS)
    mismatches = 0
    for counter in COUNTER_IDS:
        expected = sum(worker.increments[counter] for worker in workers)
        actual = (server.get((COUNTERS, counter)) or {}).get("n")
        if actual != expected:
            mismatches += 1
            violations.append(f"{COUNTERS}/{counter}: {actual} on the server, {expected} increments acknowledged")
    for target in SET_IDS:
        expected_set = set().union(*(worker.elements.get(target, set()) for worker in workers))
        actual_set = set(server.get((SETS, target)) or {})
        if actual_set != expected_set:
            mismatches += 1
            missing = sorted(expected_set - actual_set)
            extra = sorted(actual_set - expected_set)
            violations.append(f"{SETS}/{target}: missing {len(missing)} acknowledged elements {missing[:5]}, {len(extra)} never added {extra[:5]}")
    for worker in workers:
        local = local_records(worker.db, COLLECTIONS)
        if local != server:
            mismatches += 1
            differing = sorted(k for k in set(local) | set(server) if local.get(k) != server.get(k))
            violations.append(f"client {worker.number} differs from the server on {len(differing)} records, e.g. {differing[:3]}")
        info = worker.db.info()
        if info["pending"] or info["conflicts"]:
            violations.append(f"client {worker.number}: {info['pending']} pending, {info['conflicts']} conflicts after quiescing")
    figures = {
        "increments_acknowledged": sum(sum(w.increments.values()) for w in workers),
        "elements": sum(len(e) for w in workers for e in w.elements.values()),
        "mismatches": mismatches,
    }
    return violations, figures


@contextlib.contextmanager
def postgres_database(work: Path) -> Iterator[str]:
    """A fresh database's URL on ``$PIER_TEST_POSTGRES_URL``'s server, or on a cluster started here."""
    url = os.environ.get("PIER_TEST_POSTGRES_URL")
    cluster_env = dict(os.environ, PIER_PG_STATE=str(work / "pg-cluster.state"))
    started = False
    if not url:
        started = True
        completed = subprocess.run(
            [str(ROOT / "scripts" / "pg-cluster"), "start"], env=cluster_env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=120,
        )
        lines = [line for line in completed.stdout.splitlines() if line.startswith("PIER_TEST_POSTGRES_URL=")]
        if completed.returncode != 0 or not lines:
            raise RuntimeError(f"scripts/pg-cluster start failed: {completed.stderr.strip()}")
        url = lines[-1].split("=", 1)[1]
    name = f"pier_concurrency_{os.getpid()}_{random.SystemRandom().randrange(16**8):08x}"
    parts = urllib.parse.urlsplit(url)
    database_url = urllib.parse.urlunsplit(parts._replace(path="/" + name))
    try:
        psql_rows(url, "SELECT 1")  # fail early and clearly when the server is not there
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", f"CREATE DATABASE {name}"],
                       stdin=subprocess.DEVNULL, check=True, capture_output=True, timeout=120)
        yield database_url
        subprocess.run(["psql", "-X", "-q", url, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    finally:
        if started:
            subprocess.run([str(ROOT / "scripts" / "pg-cluster"), "stop"], env=cluster_env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=120)


def run_store(kind: str, store: str, folder: Path, clients: int, rounds: int, seed: int) -> Dict[str, Any]:
    started = time.monotonic()
    rng = random.Random(f"concurrency:{seed}:{kind}")
    config = {
        "collections": {COUNTERS: {"policy": "manual"}, SETS: {"policy": "merge_fields"}},
        # Every client may sync at once (no 429): the contention is on the records.
        "http": {"max_concurrent_syncs": clients},
    }
    violations: List[str] = []
    with Serve(folder / "server", store, config) as serve:
        seed_records(folder, serve.url)
        workers = [Worker(n, folder / f"client{n:02d}.pier", serve.url, random.Random(rng.getrandbits(64))) for n in range(clients)]
        try:
            for worker in workers:
                worker.sync()  # every client starts from the server's copies
            barrier = threading.Barrier(clients)
            run_threads({f"client {w.number}": functools.partial(w.run, rounds, barrier) for w in workers},
                        ROUNDS_TIMEOUT, f"{kind}, {rounds} rounds")
            rounds_seconds = time.monotonic() - started
            violations += quiesce(workers)
            found, figures = check(workers, folder, serve.url)
            violations += found
        finally:
            for worker in workers:
                worker.db.close()
    if kind == "sqlite":
        master = Path(store)
        audit = audit_log(master)
        for path in [master] + [worker.path for worker in workers]:
            result = integrity(path)
            if result != "ok":
                violations.append(f"integrity of {path.name}: {result}")
    else:
        audit = audit_log_postgres(store)
    if not audit.ok:
        violations.append(f"business log: applied twice {audit.applied_twice[:5]}, inconsistent {audit.inconsistent[:5]}")
    errors: Counter[str] = Counter()
    for worker in workers:
        errors.update(worker.sync_errors)
    return {
        "clients": clients,
        "rounds": rounds,
        "hot_records": HOT_RECORDS,
        "counters": len(COUNTER_IDS),
        "sets": len(SET_IDS),
        **figures,
        "conflicts_resolved": sum(w.resolved for w in workers),
        "conflicts_reported": sum(w.reported_conflicts for w in workers),
        "syncs": sum(w.syncs for w in workers),
        "failed_syncs": dict(sorted(errors.items())),
        "log_rows": audit.rows,
        "applied_twice": len(audit.applied_twice),
        "rounds_duration_s": round(rounds_seconds, 1),
        "duration_s": round(time.monotonic() - started, 1),
        "violations": violations,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the full run: 32 clients")
    parser.add_argument("--clients", type=int, help="client threads (default 8, --full 32)")
    parser.add_argument("--rounds", type=int, default=40, help="rounds of writes and a sync per client (default 40)")
    parser.add_argument("--stores", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: random)")
    parser.add_argument("--work", help="folder for stores and logs (default: a temporary folder)")
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    clients = args.clients or (32 if args.full else 8)
    stores = [name.strip() for name in args.stores.split(",") if name.strip()]
    unknown = sorted(set(stores) - {"sqlite", "postgres"})
    if unknown or not stores:
        parser.error(f"--stores takes sqlite and/or postgres, got {args.stores!r}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="pier-concurrency-"))
    work.mkdir(parents=True, exist_ok=True)
    command = f"python3 reliability/concurrency.py --clients {clients} --rounds {args.rounds} --stores {','.join(stores)} --seed {seed}"

    started = time.monotonic()
    results: Dict[str, Dict[str, Any]] = {}
    for kind in stores:
        folder = work / kind
        print(f"concurrency: {kind}, {clients} clients, {args.rounds} rounds ...", file=sys.stderr)
        if kind == "sqlite":
            results[kind] = run_store(kind, str(folder / "master.pier"), folder, clients, args.rounds, seed)
        else:
            with postgres_database(work) as url:
                results[kind] = run_store(kind, url, folder, clients, args.rounds, seed)
    failed = {kind: result.pop("violations") for kind, result in results.items()}
    failed = {kind: violations for kind, violations in failed.items() if violations}
    write_result(args.json, {
        "part": "concurrency",
        "ok": not failed,
        "seed": seed,
        "stores": results,
        "duration_s": round(time.monotonic() - started, 1),
        "command": command,
        **({"violations": [f"{kind}: {line}" for kind, lines in failed.items() for line in lines], "work": str(work)} if failed else {}),
    })
    if failed:
        for kind, violations in failed.items():
            print(f"concurrency: {kind} broke an invariant (repeat: {command}):", file=sys.stderr)
            for line in violations[:30]:
                print(f"  {line}", file=sys.stderr)
        return 1
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
