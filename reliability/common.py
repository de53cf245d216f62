"""Shared pieces of the reliability harness (docs/RELIABILITY.md).

Every part of the harness runs against real processes on loopback: ``pier serve`` (the
debug build, ``.build/debug/pier``, or ``$PIER_BIN``) and clients on ``libpier.so`` through
the Python binding (``build/lib/libpier.so.0``, or ``$PIER_LIBRARY``). Nothing here knows
Pier's internals beyond the documented master-store schema, which the checks read with
Python's own sqlite3 module.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bindings" / "python" / "src"))
os.environ.setdefault("PIER_LIBRARY", str(ROOT / "build" / "lib" / "libpier.so.0"))

#: The credential every harness client uses: every scope, read and write.
API_KEY = "pk_reliability_harness_all_scopes"


def pier_binary() -> str:
    return os.environ.get("PIER_BIN", str(ROOT / ".build" / "debug" / "pier"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """One ``pier serve`` process that can be killed and started again on the same port.

    ``store`` is a master-store path or a ``postgres://`` URL; ``config`` holds the
    server settings (policies, limits) written into the configuration file next to an
    API key with every scope. ``auth`` extends that ``auth`` section: its ``api_keys`` are
    added after the harness key, its other entries (``jwt``, ``api_keys_file``) are
    written as given.
    """

    def __init__(
        self,
        folder: Path,
        store: str,
        config: Optional[Dict[str, Any]] = None,
        port: Optional[int] = None,
        auth: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.port = port or free_port()
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.starts = 0
        settings = dict(config or {})
        settings["store"] = store
        section: Dict[str, Any] = dict(auth or {})
        section["api_keys"] = [
            {"key": API_KEY, "user": "harness", "read_scopes": ["*"], "write_scopes": ["*"], "admin": True}
        ] + list(section.get("api_keys", []))
        settings["auth"] = section
        self.config_path = folder / "serve.json"
        self.config_path.write_text(json.dumps(settings, indent=2))
        self.stderr_path = folder / "serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, crash_point: Optional[str] = None, timeout: float = 60.0) -> None:
        """Starts the server; with ``crash_point`` (``name`` or ``name:n``) it kills itself there."""
        assert self.process is None or self.process.poll() is not None, "already running"
        env = dict(os.environ)
        env.pop("PIER_TEST_CRASH_POINT", None)
        if crash_point:
            env["PIER_TEST_CRASH_POINT"] = crash_point
        env.setdefault("PIER_LOG_LEVEL", "warning")
        deadline = time.monotonic() + timeout
        while True:
            with open(self.stderr_path, "ab") as log:
                self.process = subprocess.Popen(
                    [pier_binary(), "serve", "--config", str(self.config_path), "--listen", f"127.0.0.1:{self.port}"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=env,
                )
            assert self.process.stdout is not None
            line = self.process.stdout.readline().decode("utf-8", "replace")
            if line.startswith("pier serve: listening on"):
                self.starts += 1
                return
            # The port of a killed server can take a moment to be free again.
            self.process.wait(timeout=10)
            if time.monotonic() > deadline:
                tail = self.stderr_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"pier serve did not start: {line!r}\n{tail}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a power cut or an OOM kill would stop it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.wait()

    def wait(self) -> Optional[int]:
        if self.process is None:
            return None
        code = self.process.wait(timeout=60)
        if self.process.stdout:
            self.process.stdout.close()
        return code

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.wait()
        self.process = None

    def __enter__(self) -> "Serve":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of a plain SQLite file ("ok" when sound)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
        return "; ".join(str(row[0]) for row in rows)
    finally:
        connection.close()


def server_records(master: Path) -> Dict[Tuple[str, str], Optional[Dict[str, Any]]]:
    """Every record of an SQLite master store: (collection, id) -> body, or None when deleted."""
    connection = sqlite3.connect(f"file:{master}?mode=ro", uri=True, timeout=30)
    try:
        out: Dict[Tuple[str, str], Optional[Dict[str, Any]]] = {}
        for collection, record_id, deleted, body in connection.execute("SELECT collection, id, deleted, body FROM records"):
            out[(collection, record_id)] = None if deleted else json.loads(body)
        return out
    finally:
        connection.close()


@dataclass
class LogAudit:
    """What the business log of an SQLite master store says about applied changes."""

    rows: int = 0
    applied: int = 0
    #: Changes (client, collection, id, client HLC) the log shows applied more than once.
    applied_twice: List[Tuple[str, str, str, int]] = field(default_factory=list)
    #: Records whose current version is not the newest version the log gave them.
    inconsistent: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.applied_twice and not self.inconsistent


def audit_log(master: Path) -> LogAudit:
    """Checks that no change was applied twice and that the log explains every record's version.

    A change that the server applied has one business-log row with outcome ``applied`` or
    ``merged`` keyed by (client id, collection, record id, client HLC); a replayed batch
    adds none. Every record's current version must be the newest version the log says a
    change produced for it, and no two log rows may produce the same version.

    Not every applied row produces a version: a delete of a record already deleted, or a
    body identical to the server's, writes nothing and is logged ``applied`` with the
    record's current version as ``new_version`` (0 when the server no longer has the
    record): SyncServer's "already deleted" / "unchanged" rows. Such a row must name
    exactly the record's version at that point of the log. Rows are read in log order
    (``seq``), which for one record is the order its changes committed: the server logs a
    change while it holds the record's lock.
    """
    connection = sqlite3.connect(f"file:{master}?mode=ro", uri=True, timeout=30)
    try:
        audit = LogAudit()
        changes: Counter[Tuple[str, str, str, int]] = Counter()
        newest: Dict[Tuple[str, str], int] = {}
        produced: Counter[int] = Counter()
        for client, collection, record_id, outcome, new_version, hlc in connection.execute(
            "SELECT client_id, collection, record_id, outcome, new_version, client_hlc FROM business_log ORDER BY seq"
        ):
            audit.rows += 1
            if outcome not in ("applied", "merged"):
                continue
            audit.applied += 1
            changes[(client, collection, record_id, hlc)] += 1
            key = (collection, record_id)
            previous = newest.get(key, 0)
            if new_version > previous:
                produced[new_version] += 1
                newest[key] = new_version
            elif new_version not in (previous, 0):
                audit.inconsistent.append(
                    f"{collection}/{record_id}: a change that wrote nothing names version {new_version}, the record was at {previous}"
                )
        audit.applied_twice = [change for change, count in changes.items() if count > 1]
        audit.applied_twice += [("?", "?", f"version {v} produced {n} times", 0) for v, n in produced.items() if n > 1]
        for collection, record_id, version in connection.execute("SELECT collection, id, version FROM records"):
            if newest.get((collection, record_id)) != version:
                audit.inconsistent.append(
                    f"{collection}/{record_id}: version {version}, log says {newest.get((collection, record_id))}"
                )
        return audit
    finally:
        connection.close()


def local_records(db: Any, collections: List[str]) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """Every live record of ``collections`` in a ``pier.Database``."""
    out: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for collection in collections:
        for record_id, body in db.iter(collection, page_size=500):
            out[(collection, record_id)] = body
    return out


def run_threads(work: Dict[str, Callable[[], None]], timeout: float, what: str) -> None:
    """Runs each named callable on its own thread and waits for all within ``timeout`` seconds.

    Raises RuntimeError when a thread is still running at the deadline, or when one raised
    (the first failure, by name, is the cause). The threads report failures by raising.
    """
    failures: Dict[str, BaseException] = {}

    def guarded(name: str, body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException as error:  # reported to the caller below
            failures[name] = error

    threads = [threading.Thread(target=guarded, args=(name, body), name=name) for name, body in work.items()]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        raise RuntimeError(f"{what}: the clients did not finish within {timeout} s")
    for name, error in failures.items():
        raise RuntimeError(f"{what}: {name} failed: {error!r}") from error


def write_result(path: Optional[str], result: Dict[str, Any]) -> None:
    """Prints a part's result and, with ``path``, saves it as JSON for scripts/reliability."""
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if path:
        Path(path).write_text(text + "\n")


def psql_rows(url: str, query: str) -> List[List[str]]:
    """The rows of one query against a PostgreSQL URL, read with ``psql`` as CSV text."""
    completed = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", f"COPY ({query}) TO STDOUT WITH (FORMAT csv)"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"psql failed: {completed.stderr.strip()}")
    return list(csv.reader(io.StringIO(completed.stdout)))


def audit_log_postgres(url: str, schema: str = "pier") -> LogAudit:
    """``audit_log`` for a PostgreSQL master store (``pier serve`` keeps it in the schema ``pier``).

    The business log and the records' versions are copied, read with ``psql``, into a
    scratch SQLite file of the same shape, which ``audit_log`` then checks by its rules.
    """
    log = psql_rows(
        url, f"SELECT seq, client_id, collection, record_id, outcome, new_version, client_hlc FROM {schema}.business_log"
    )
    records = psql_rows(url, f"SELECT collection, id, version FROM {schema}.records")
    with tempfile.TemporaryDirectory(prefix="pier-audit-") as folder:
        path = Path(folder) / "log.sqlite"
        connection = sqlite3.connect(path)
        try:
            connection.execute(
                "CREATE TABLE business_log(seq INTEGER PRIMARY KEY, client_id TEXT, collection TEXT, record_id TEXT,"
                " outcome TEXT, new_version INTEGER, client_hlc INTEGER)"
            )
            connection.execute("CREATE TABLE records(collection TEXT, id TEXT, version INTEGER)")
            connection.executemany(
                "INSERT INTO business_log VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((int(seq), c, col, rid, outcome, int(v), int(h)) for seq, c, col, rid, outcome, v, h in log),
            )
            connection.executemany("INSERT INTO records VALUES (?, ?, ?)", ((col, rid, int(v)) for col, rid, v in records))
            connection.commit()
        finally:
            connection.close()
        return audit_log(path)
