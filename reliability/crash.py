"""Kill -9 crash test (issue 7): no acknowledged write lost, none applied twice.

Two client processes (reliability/crash_worker.py, each with its own store that lives
through all of its process's deaths) do random writes on their own records and sync every
few writes with a loopback ``pier serve`` (SQLite master). The driver kills them with
SIGKILL, and separately kills the server, in four kinds, each a quarter of the kills:

* ``client_random``: a worker is killed after a random delay;
* ``client_named``: a worker is armed with ``PIER_TEST_CRASH_POINT=point:n`` (n random) at
  ``client.after_local_commit``, ``client.after_batch_built``, ``client.after_send`` or
  ``client.before_apply_commit`` and kills itself there; it counts only when the process
  died with -9 and the driver sent no signal;
* ``server_random``: the server is killed after a random delay and restarted on its port;
* ``server_named``: the server kills itself at ``server.before_commit`` or
  ``server.after_commit``.

An armed process that does not reach its point in time is killed by the driver and counted
as a random kill (and reported under ``named_missed``).

Every write is journalled by its worker (intent before, acknowledgement after) and every
body carries the seq of the write that produced it. Each of a worker's records must hold
the value of its last acknowledged write or of a later intended one (any of which may
have committed before its process died), never an older one (a lost write) nor anything
else; a delete acknowledged last means absent unless a later intent exists; a transaction
interrupted by a death committed all of its writes or none. The driver checks this on
the worker's store after each of its deaths, before the next life can hide a loss by
writing the record again, and at each full check (every ``--check-every`` kills and at
the end), where the workers are stopped, the server restarted without crash points and
every store synced until nothing is pending, and then also:

* the server's records equal every store's (all replicas converge);
* the master's business log shows no change applied twice and explains every record's
  version (``common.audit_log``); every change to a record came from its owner, was
  applied, was based on the server's current version (or on none, re-creating a deleted
  record) and carries a client HLC later than the previous one;
* ``PRAGMA integrity_check`` is ok on every store and the master; no store has a pending
  change or a conflict.

Any violation ends the run with exit code 1 and the first violations. Usage::

    python3 reliability/crash.py                    # CI size: 200 kills, about 2-3 minutes
    python3 reliability/crash.py --kills 40         # quick
    python3 reliability/crash.py --full             # 10,000 kills
    python3 reliability/crash.py --seed 1234 --json crash.json --work /tmp/crash

The seed drives every random choice of the driver and of the workers (plans, delays, the
n of each crash point, the writes), but which process ends first, and so the order of
those choices, depends on timing: a repeated run is alike, not identical. The run uses
copies of ``pier`` and libpier made at its start (``$PIER_BIN``, ``$PIER_LIBRARY``, by
default the debug build and build/lib). The work folder (stores, journals, master, logs)
is kept (without those copies) when the run fails or when ``--work`` is given.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import API_KEY, Serve, audit_log, integrity, local_records, pier_binary, server_records, write_result  # noqa: E402

WORKER = Path(__file__).resolve().parent / "crash_worker.py"
COLLECTION = "items"
WORKERS = ("w0", "w1")
#: Named points and the range of n: how many times the point is passed before the kill.
CLIENT_POINTS: Dict[str, Tuple[int, int]] = {
    "client.after_local_commit": (1, 40),
    "client.after_batch_built": (1, 6),
    "client.after_send": (1, 8),
    "client.before_apply_commit": (1, 8),
}
SERVER_POINTS: Dict[str, Tuple[int, int]] = {
    "server.before_commit": (1, 12),
    "server.after_commit": (1, 12),
}
KINDS = ("client_random", "client_named", "server_random", "server_named")
#: A random kill comes this many seconds after the start (a worker's) or after the server
#: listens.
RANDOM_DELAY = (0.05, 1.5)
#: An armed process that has not reached its point after this long is killed by the driver.
NAMED_DEADLINE = 20.0
#: Seconds a worker may take to notice the stop file (a sync in progress times out in 5).
STOP_TIMEOUT = 30.0
#: Seconds a settling sync may take.
SETTLE_TIMEOUT = 60.0
#: Violations listed in the output.
SHOWN = 20


class HarnessError(Exception):
    """A process of the test failed in a way that is not a kill (a worker traceback, a
    server that exited by itself): the run is a failure."""


@dataclass
class Plan:
    """How the current life of a process ends: ``random`` (the driver kills it ``delay``
    seconds after its start), ``named`` (it kills itself at ``point``; the driver kills it
    after ``delay`` if it has not) or ``none`` (not killed: the kind's quota is full)."""

    kind: str
    point: Optional[str] = None
    n: int = 0
    delay: Optional[float] = None
    deadline: Optional[float] = None

    def started(self) -> None:
        if self.delay is not None:
            self.deadline = time.monotonic() + self.delay

    @property
    def armed(self) -> Optional[str]:
        return f"{self.point}:{self.n}" if self.kind == "named" else None


@dataclass
class Tally:
    quota: int
    kills: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)
    #: Named plans in progress, per point (so a second process does not pick a full one).
    arming: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def remaining(self, kind: str) -> int:
        return self.quota - self.by_kind[kind]

    def done(self) -> bool:
        return all(self.remaining(kind) <= 0 for kind in KINDS)

    def count(self, role: str, plan: Plan, by_itself: bool) -> None:
        """Counts one kill of ``role`` (client or server) that ended ``plan``."""
        if plan.kind == "named":
            self.arming[plan.point or ""] -= 1
        if by_itself:
            if plan.kind != "named" or not plan.point:
                raise HarnessError(f"a {role} process died of a SIGKILL nobody sent (plan {plan})")
            self.kills[plan.point] += 1
            self.by_kind[f"{role}_named"] += 1
        else:
            if plan.kind == "named":
                self.missed[plan.point or ""] += 1
            self.kills[f"{role}.random"] += 1
            self.by_kind[f"{role}_random"] += 1

    def cancel(self, plan: Plan) -> None:
        if plan.kind == "named":
            self.arming[plan.point or ""] -= 1

    def plan(self, role: str, rng: random.Random, points: Dict[str, Tuple[int, int]], in_flight: int) -> Plan:
        """The plan of a new life: random or named by the quotas left, the named point the
        one with the fewest kills so far (ties broken at random)."""
        random_left = max(0, self.remaining(f"{role}_random") - in_flight)
        named_left = max(0, self.remaining(f"{role}_named") - sum(self.arming[p] for p in points))
        if random_left + named_left == 0:
            return Plan("none")
        if rng.randrange(random_left + named_left) < random_left:
            return Plan("random", delay=rng.uniform(*RANDOM_DELAY))
        point = min(points, key=lambda p: (self.kills[p] + self.arming[p], rng.random()))
        self.arming[point] += 1
        return Plan("named", point=point, n=rng.randint(*points[point]), delay=NAMED_DEADLINE)


# ---------------------------------------------------------------------------------------
# Journals and their expectations
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    seq: int
    txn: int
    op: str  # put, patch or delete

    @property
    def outcome(self) -> Optional[int]:
        """The seq a record holds after this write, None for absent."""
        return None if self.op == "delete" else self.seq


@dataclass
class History:
    """The writes to one record that can still explain its value: the last acknowledged
    one (``writes[0]`` when ``acked``) and every intent after it."""

    writes: List[Write] = field(default_factory=list)
    acked: bool = False

    def allowed(self) -> List[Optional[int]]:
        """The values the record may hold: the outcome of the last acknowledged write or of
        any later intent (each may have committed before its process died), or absent
        when nothing was acknowledged yet."""
        return [w.outcome for w in self.writes] + ([] if self.acked else [None])


@dataclass
class Journal:
    """A worker's journal, read incrementally (a full run's journal has a million lines)."""

    path: Path
    offset: int = 0
    records: Dict[str, History] = field(default_factory=dict)
    #: Transactions (single writes too) not acknowledged (yet), by txn: (record id, write).
    open: Dict[int, List[Tuple[str, Write]]] = field(default_factory=dict)
    intended: int = 0
    acknowledged: int = 0
    syncs: Counter[str] = field(default_factory=Counter)
    #: Lines cut by a kill in the middle of a write(2); their write never started.
    torn: int = 0
    #: Acknowledgements of nothing intended: the journal itself is wrong.
    stray_acks: List[int] = field(default_factory=list)

    def update(self) -> None:
        """Reads the lines added since the last call (up to the last complete line)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as source:
            source.seek(self.offset)
            data = source.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].decode("utf-8", "replace").splitlines():
            parts = line.split()
            if len(parts) == 5 and parts[0] == "I" and parts[1].isdigit() and parts[2].isdigit() and parts[3] in ("put", "patch", "delete"):
                write = Write(int(parts[1]), int(parts[2]), parts[3])
                self.records.setdefault(parts[4], History()).writes.append(write)
                self.open.setdefault(write.txn, []).append((parts[4], write))
                self.intended += 1
            elif len(parts) == 2 and parts[0] == "A" and parts[1].isdigit():
                self.acknowledge(int(parts[1]))
            elif len(parts) == 2 and parts[0] == "S":
                self.syncs[parts[1]] += 1
            else:
                self.torn += 1

    def acknowledge(self, txn: int) -> None:
        members = self.open.pop(txn, None)
        if members is None:
            self.stray_acks.append(txn)
            return
        for record_id, write in members:
            history = self.records[record_id]
            history.writes = history.writes[history.writes.index(write):]
            history.acked = True
            self.acknowledged += 1


@dataclass
class Findings:
    violations: List[str] = field(default_factory=list)
    lost: int = 0
    unexpected: int = 0
    torn_transactions: int = 0
    applied_twice: int = 0
    records_checked: int = 0

    def add(self, text: str) -> None:
        self.violations.append(text)


def check_worker(name: str, journal: Journal, local: Dict[str, Dict[str, Any]], findings: Findings) -> None:
    """Checks one worker's own records (``local``: id -> body) against its journal."""
    for txn in journal.stray_acks:
        findings.add(f"{name}: journal acknowledges txn {txn}, which has no intent")
    for record_id in sorted(set(journal.records) | set(local)):
        findings.records_checked += 1
        history = journal.records.get(record_id, History())
        body = local.get(record_id)
        value: Optional[int] = None if body is None else body.get("seq")
        where = f"{name}: {COLLECTION}/{record_id}"
        if body is not None:
            source = next((w for w in history.writes if w.seq == value), None)
            if body.get("id") != record_id or body.get("w") != name or not isinstance(value, int):
                findings.unexpected += 1
                findings.add(f"{where}: body {brief(body)} belongs to another record")
                continue
            if source is not None and ((source.op == "patch") != ("patched" in body) or body.get("patched", source.seq) != source.seq):
                findings.unexpected += 1
                findings.add(f"{where}: body {brief(body)} is not what write {source.seq} ({source.op}) made")
                continue
        allowed = history.allowed()
        if value in allowed:
            continue
        shown = "absent" if value is None else f"seq {value}"
        if history.acked and (value is None or value < history.writes[0].seq):
            last = history.writes[0]
            findings.lost += 1
            findings.add(f"{where}: LOST acknowledged {last.op} seq {last.seq}: holds {shown}, allowed {allowed} (absent = None)")
        else:
            findings.unexpected += 1
            findings.add(f"{where}: holds {shown}, allowed {allowed} (absent = None)")
    # A transaction that was not acknowledged committed all of its writes or none. Its
    # write to a record tells only when it is the record's last intent and no other
    # allowed value looks the same.
    superseded: List[int] = []
    for txn, members in journal.open.items():
        if all(journal.records[record_id].writes[-1] != write for record_id, write in members):
            superseded.append(txn)  # every record was written again: it can never tell
            continue
        applied: Dict[str, bool] = {}
        for record_id, write in members:
            history = journal.records[record_id]
            if history.writes[-1] != write or history.allowed().count(write.outcome) > 1:
                continue
            body = local.get(record_id)
            applied[record_id] = (None if body is None else body.get("seq")) == write.outcome
        if len(set(applied.values())) > 1:
            findings.torn_transactions += 1
            done = sorted(k for k, v in applied.items() if v)
            findings.add(f"{name}: transaction {txn} committed its writes to {done} only, not to {sorted(set(applied) - set(done))}")
    for txn in superseded:
        del journal.open[txn]


def brief(body: Optional[Dict[str, Any]]) -> str:
    """A body as a message shows it: its seq and its fields but the padding."""
    if body is None:
        return "absent"
    return str({k: v for k, v in body.items() if k != "pad"} | {"pad": len(body.get("pad", ""))})


def check_log(master: Path, owners: Dict[str, str], findings: Findings) -> Counter[str]:
    """The business log of one-writer records: every change came from the record's owner,
    was applied, was based on the server's current version (or on none, recreating a
    deleted record), and carries a client HLC later than the record's previous change.
    Then ``common.audit_log``: nothing applied twice, every version explained."""
    outcomes: Counter[str] = Counter()
    # (collection, id) -> (version, deleted, client HLC) after the last applied change
    state: Dict[Tuple[str, str], Tuple[int, bool, int]] = {}
    connection = sqlite3.connect(f"file:{master}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute(
            "SELECT client_id, collection, record_id, op, outcome, base_version, new_version, client_hlc FROM business_log ORDER BY seq"
        ).fetchall()
    finally:
        connection.close()
    for client, collection, record_id, op, outcome, base, new_version, hlc in rows:
        outcomes[outcome] += 1
        where = f"business log {collection}/{record_id} {op} -> version {new_version}"
        owner = owners.get(record_id.split("-")[0])
        if client != owner:
            findings.add(f"{where}: change from client {client}, the record's owner is {owner}")
        if outcome not in ("applied", "merged"):
            findings.add(f"{where}: outcome {outcome} (a record with one writer has every change applied)")
            continue
        key = (collection, record_id)
        version, deleted, previous_hlc = state.get(key, (0, True, 0))
        if base != version and not (base == 0 and deleted):
            findings.add(f"{where}: based on version {base}, the server had version {version}")
        if hlc <= previous_hlc:
            findings.add(f"{where}: client HLC {hlc} not after the previous change's {previous_hlc}")
        state[key] = (max(version, new_version), op == "delete", hlc)
    audit = audit_log(master)
    findings.applied_twice += len(audit.applied_twice)
    for change in audit.applied_twice:
        findings.add(f"applied twice: {change}")
    for text in audit.inconsistent:
        findings.add(f"business log inconsistent: {text}")
    return outcomes


# ---------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------


@dataclass
class Worker:
    name: str
    store: Path
    journal: Journal
    log: Path
    process: Optional[subprocess.Popen[bytes]] = None
    plan: Plan = field(default_factory=lambda: Plan("none"))
    lives: int = 0


class Driver:
    def __init__(self, work: Path, kills: int, seed: int, check_every: int) -> None:
        self.rng = random.Random(seed)
        self.tally = Tally(quota=math.ceil(kills / len(KINDS)))
        self.check_every = check_every
        self.next_check = check_every
        self.master = work / "server" / "master.pier"
        self.serve = Serve(work / "server", str(self.master))
        self.server_plan = Plan("none")
        self.stop_file = work / "stop"
        self.workers = [
            Worker(name, work / f"{name}.pier", Journal(work / f"{name}.journal"), work / f"{name}.log") for name in WORKERS
        ]
        self.findings = Findings()
        self.restart_checks = 0
        self.checks = 0
        self.replayed_in_settle = 0
        self.last: Dict[str, Any] = {}

    # -- workers --------------------------------------------------------------------------

    def start_worker(self, worker: Worker, plan: Plan) -> None:
        env = dict(os.environ)
        env.pop("PIER_TEST_CRASH_POINT", None)
        if plan.armed:
            env["PIER_TEST_CRASH_POINT"] = plan.armed
        command = [
            sys.executable, str(WORKER), "--store", str(worker.store), "--journal", str(worker.journal.path),
            "--name", worker.name, "--url", self.serve.url, "--stop", str(self.stop_file),
            "--seed", str(self.rng.randrange(2**32)),
        ]
        with open(worker.log, "ab") as log:
            log.write(f"--- life {worker.lives + 1}: {plan.kind} {plan.armed or ''}\n".encode())
            log.flush()
            worker.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env)
        plan.started()  # a worker may die while it starts and opens its store
        worker.plan = plan
        worker.lives += 1

    def ended(self, worker: Worker, code: int, killed_by_driver: bool) -> None:
        """Accounts for a worker process that has ended with ``code``, then checks its store
        as the next life will find it."""
        plan, worker.plan, worker.process = worker.plan, Plan("none"), None
        if code == -signal.SIGKILL:
            self.tally.count("client", plan, by_itself=not killed_by_driver)
        elif code == 0:
            self.tally.cancel(plan)
        else:
            tail = worker.log.read_text(errors="replace")[-3000:]
            raise HarnessError(f"worker {worker.name} exited with {code} (plan {plan}):\n{tail}")
        self.check_restart(worker, plan)

    def check_restart(self, worker: Worker, plan: Plan) -> None:
        """Right after a death, before anything else touches the store: every acknowledged
        write is there (a later write of the next life would hide a lost one)."""
        import pier  # after pin_build

        worker.journal.update()
        self.restart_checks += 1
        try:
            db = pier.Database(worker.store, readonly=True)
        except (pier.NotFoundError, pier.ReadOnlyError) as error:
            # Killed before the store was created (or before its schema was): fine while
            # nothing was written.
            if worker.journal.intended:
                self.findings.add(f"{worker.name}: store unreadable after a death ({plan}): {error}")
            return
        try:
            own = {rid: body for rid, body in db.iter(COLLECTION, page_size=500) if rid.startswith(f"{worker.name}-")}
        finally:
            db.close()
        before = len(self.findings.violations)
        check_worker(worker.name, worker.journal, own, self.findings)
        for index in range(before, len(self.findings.violations)):
            self.findings.violations[index] += f" [found after life {worker.lives} ended: {plan.armed or plan.kind}]"

    def kill_worker(self, worker: Worker) -> None:
        assert worker.process is not None
        worker.process.send_signal(signal.SIGKILL)
        self.ended(worker, worker.process.wait(timeout=30), killed_by_driver=True)

    def step_worker(self, worker: Worker) -> None:
        if worker.process is None:
            in_flight = sum(1 for w in self.workers if w.plan.kind == "random")
            self.start_worker(worker, self.tally.plan("client", self.rng, CLIENT_POINTS, in_flight))
            return
        code = worker.process.poll()
        if code is not None:
            self.ended(worker, code, killed_by_driver=False)
        elif worker.plan.deadline is not None and time.monotonic() >= worker.plan.deadline:
            self.kill_worker(worker)

    def stop_workers(self) -> None:
        self.stop_file.touch()
        deadline = time.monotonic() + STOP_TIMEOUT
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                code = worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise HarnessError(f"worker {worker.name} did not stop within {STOP_TIMEOUT}s of the stop file") from None
            self.ended(worker, code, killed_by_driver=False)

    # -- server ---------------------------------------------------------------------------

    def server_ended(self, killed_by_driver: bool) -> None:
        """Accounts for a server process that has ended."""
        code = self.serve.wait()
        self.serve.process = None
        plan, self.server_plan = self.server_plan, Plan("none")
        if code != -signal.SIGKILL:
            tail = self.serve.stderr_path.read_text(errors="replace")[-3000:]
            raise HarnessError(f"pier serve exited with {code} (plan {plan}):\n{tail}")
        self.tally.count("server", plan, by_itself=not killed_by_driver)

    def step_server(self) -> None:
        process = self.serve.process
        if process is None:
            self.server_plan = self.tally.plan("server", self.rng, SERVER_POINTS, in_flight=0)
            self.serve.start(crash_point=self.server_plan.armed)
            self.server_plan.started()  # from when it listens: before, there is no sync to interrupt
        elif process.poll() is not None:
            self.server_ended(killed_by_driver=False)
        elif self.server_plan.deadline is not None and time.monotonic() >= self.server_plan.deadline:
            process.send_signal(signal.SIGKILL)
            self.server_ended(killed_by_driver=True)

    def stop_server(self) -> None:
        """Stops the server (SIGTERM), accounting for one that died at its crash point."""
        if self.serve.process is not None and self.serve.process.poll() is not None:
            self.server_ended(killed_by_driver=False)
        self.serve.stop()
        self.tally.cancel(self.server_plan)
        self.server_plan = Plan("none")

    # -- checks ---------------------------------------------------------------------------

    def settle(self, findings: Findings) -> Tuple[Dict[str, Dict[Tuple[str, str], Dict[str, Any]]], Dict[str, str]]:
        """Syncs every store with a server that does not crash until all agree; returns
        every store's records and every worker's client id."""
        import pier  # after pin_build

        self.serve.start()
        databases = {w.name: pier.Database(w.store) for w in self.workers}
        try:
            for round_number in range(3):
                for name, db in databases.items():
                    try:
                        report = db.sync(url=self.serve.url, token=API_KEY, retries=5, timeout=SETTLE_TIMEOUT)
                        self.replayed_in_settle += int(report.replayed_batch)
                    except pier.PierError as error:
                        findings.add(f"{name}: settling sync {round_number + 1} failed: {type(error).__name__}: {error}")
            records: Dict[str, Dict[Tuple[str, str], Dict[str, Any]]] = {}
            owners: Dict[str, str] = {}
            for name, db in databases.items():
                info = db.info()
                if info["pending"] or info["conflicts"] or db.conflicts():
                    findings.add(f"{name}: after settling {info['pending']} pending, {info['conflicts']} conflicts: {db.conflicts()[:3]}")
                records[name] = local_records(db, [COLLECTION])
                owners[name] = db.client_id
            return records, owners
        finally:
            for db in databases.values():
                db.close()
            self.serve.stop()

    def check(self) -> None:
        """Stops everything, settles the stores and checks every guarantee."""
        self.checks += 1
        self.stop_workers()
        self.stop_server()
        findings = self.findings
        records, owners = self.settle(findings)
        journals = {w.name: w.journal for w in self.workers}
        for name, journal in journals.items():
            journal.update()
            own = {rid: body for (_, rid), body in records[name].items() if rid.startswith(f"{name}-")}
            check_worker(name, journal, own, findings)
            for outcome, n in journal.syncs.items():
                if outcome not in ("ok", "replayed", "NetworkError"):
                    findings.add(f"{name}: {n} syncs failed with {outcome} (a server that dies or restarts is a NetworkError)")
        server = {key: body for key, body in server_records(self.master).items() if body is not None}
        for name, local in records.items():
            keys = sorted(set(server) | set(local))
            findings.records_checked += len(keys)
            for key in keys:
                if server.get(key) != local.get(key):
                    findings.add(f"{name}: {key[0]}/{key[1]} is {brief(local.get(key))} locally but {brief(server.get(key))} on the server")
        log_outcomes = check_log(self.master, owners, findings)
        results = {w.store.name: integrity(w.store) for w in self.workers}
        results[self.master.name] = integrity(self.master)
        for path, result in results.items():
            if result != "ok":
                findings.add(f"integrity_check of {path}: {result}")
        self.last = {
            "integrity": results,
            "log_outcomes": dict(log_outcomes),
            "writes_intended": sum(j.intended for j in journals.values()),
            "torn_journal_lines": sum(j.torn for j in journals.values()),
            "sync_outcomes": dict(sum((j.syncs for j in journals.values()), Counter())),
            "server_records": len(server),
        }
        self.stop_file.unlink()

    # -- the run --------------------------------------------------------------------------

    def run(self) -> None:
        """Kills until every quota is met or a check finds a violation."""
        self.stop_file.unlink(missing_ok=True)
        try:
            while not self.tally.done():
                self.step_server()
                for worker in self.workers:
                    self.step_worker(worker)
                if not self.findings.violations and self.check_every and self.next_check <= self.tally.total and not self.tally.done():
                    self.next_check += self.check_every
                    self.check()
                    print(f"check {self.checks} after {self.tally.total} kills: {len(self.findings.violations)} violations", flush=True)
                if self.findings.violations:
                    break
                time.sleep(0.005)
            if not self.findings.violations:
                self.check()
        finally:
            for worker in self.workers:
                if worker.process is not None and worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait(timeout=30)
            self.serve.stop()


def pin_build(work: Path) -> None:
    """Copies the pier binary and libpier into the work folder and points PIER_BIN and
    PIER_LIBRARY (read by common.Serve, the workers and this process's binding) at the
    copies: one build serves the whole run, and a rebuild meanwhile neither changes it
    under the processes nor fails because a running executable cannot be rewritten."""
    folder = work / "build"
    folder.mkdir()
    binary = folder / "pier"
    shutil.copy2(pier_binary(), binary)
    library = folder / Path(os.environ["PIER_LIBRARY"]).name
    shutil.copy2(os.environ["PIER_LIBRARY"], library)
    os.environ["PIER_BIN"] = str(binary)
    os.environ["PIER_LIBRARY"] = str(library)


def main() -> int:
    parser = argparse.ArgumentParser(description="Pier kill -9 crash test (issue 7)")
    parser.add_argument("--full", action="store_true", help="10,000 kills instead of 200")
    parser.add_argument("--kills", type=int, help="kills in total, a quarter of each kind (default 200)")
    parser.add_argument("--seed", type=int, help="random seed (default: chosen at random and printed)")
    parser.add_argument("--check-every", type=int, help="check all guarantees every N kills too (default: kills / 2, 1000 with --full)")
    parser.add_argument("--work", help="work folder (kept); default a temporary folder removed on success")
    parser.add_argument("--json", help="also write the result as JSON here")
    args = parser.parse_args()

    kills = args.kills if args.kills is not None else (10_000 if args.full else 200)
    if kills < len(KINDS):
        parser.error(f"--kills must be at least {len(KINDS)}")
    check_every = args.check_every if args.check_every is not None else (1000 if args.full else kills // 2)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="pier-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        parser.error(f"--work {work} is not empty")
    command = f"python3 reliability/crash.py --kills {kills} --check-every {check_every} --seed {seed}"
    print(f"crash test: {kills} kills, seed {seed}, work folder {work}\nrepeat with: {command}", flush=True)

    os.environ.pop("PIER_TEST_CRASH_POINT", None)  # only the processes the driver arms crash
    pin_build(work)
    started = time.monotonic()
    driver = Driver(work, kills, seed, check_every)
    error: Optional[str] = None
    try:
        driver.run()
    except HarnessError as failure:
        error = str(failure)
    shutil.rmtree(work / "build")
    findings, tally = driver.findings, driver.tally
    ok = error is None and not findings.violations
    result: Dict[str, Any] = {
        "part": "crash",
        "ok": ok,
        "seed": seed,
        "kills_total": tally.total,
        "kills_by_kind": {kind: tally.by_kind[kind] for kind in KINDS},
        "kills": dict(sorted(tally.kills.items())),
        "named_missed": dict(+tally.missed),
        "worker_lives": {w.name: w.lives for w in driver.workers},
        "server_starts": driver.serve.starts,
        "checks": driver.checks,
        "acked_writes_checked": sum(w.journal.acknowledged for w in driver.workers),
        "records_checked": findings.records_checked,
        "store_checks_after_death": driver.restart_checks,
        "lost": findings.lost,
        "applied_twice": findings.applied_twice,
        "unexpected_values": findings.unexpected,
        "torn_transactions": findings.torn_transactions,
        "replayed_batches_while_settling": driver.replayed_in_settle,
        **driver.last,
        "violations": len(findings.violations),
        "first_violations": findings.violations[:SHOWN],
        "error": error,
        "duration_s": round(time.monotonic() - started, 1),
        "command": command,
        "work": str(work),
    }
    write_result(args.json, result)
    if not ok:
        print(f"FAILED: {error or f'{len(findings.violations)} violations, first:'}", file=sys.stderr)
        for text in findings.violations[:SHOWN]:
            print(f"  {text}", file=sys.stderr)
        print(f"work folder kept: {work}", file=sys.stderr)
        return 1
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
