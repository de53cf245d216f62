"""A server and client stores in one temporary folder, for the sync tests.

The Python twin of Tests/PierSyncTests/Support.swift. Devices share the machine's real
clock, so where the order of two offline edits matters the tests wait a few milliseconds
between them (``later()``).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import pier


class World:
    """One server and any number of client stores in ``folder``."""

    def __init__(self, folder: Path, config: Optional[Mapping[str, Any]] = None) -> None:
        self.folder = folder
        self.server = pier.Server(folder / "server.pier", config)
        self.clients: List[pier.Database] = []
        self._readers = itertools.count()

    def client(self, name: str) -> pier.Database:
        db = pier.Database(self.folder / f"{name}.pier")
        self.clients.append(db)
        return db

    def sync(self, db: pier.Database, **options: Any) -> pier.SyncReport:
        return db.sync(self.server, **options)

    def server_snapshot(self) -> Dict[str, Any]:
        """The server's live records as {"collection/id": body}, read by a fresh device."""
        with pier.Database(self.folder / f"reader-{next(self._readers)}.pier") as reader:
            reader.sync(self.server)
            return snapshot(reader)

    def server_body(self, collection: str, record_id: str) -> Optional[Dict[str, Any]]:
        """The server copy's body, None when missing or deleted."""
        body: Optional[Dict[str, Any]] = self.server_snapshot().get(f"{collection}/{record_id}")
        return body

    def server_field(self, collection: str, record_id: str, field: str) -> Any:
        """One field of the server copy (None when the record or the field is missing)."""
        return (self.server_body(collection, record_id) or {}).get(field)

    def close(self) -> None:
        for db in self.clients:
            db.close()
        self.server.close()


def snapshot(db: pier.Database) -> Dict[str, Any]:
    """All live records of a store as {"collection/id": body}, for comparing replicas."""
    rows = db.query("SELECT collection, id, body FROM records ORDER BY collection, id")
    return {f"{row['collection']}/{row['id']}": row["body"] for row in rows}


def later() -> None:
    """Lets the shared wall clock move on, so the next edit has a later HLC."""
    time.sleep(0.005)


def two_technicians(world: World) -> "tuple[pier.Database, pier.Database]":
    """Both technicians start from the same synced customer, then edit it offline."""
    a, b = world.client("a"), world.client("b")
    a.put("customers", "c1", {"name": "Ada", "phone": "100", "city": "Oslo"})
    world.sync(a)
    world.sync(b)
    assert b.get("customers", "c1") == {"name": "Ada", "phone": "100", "city": "Oslo"}
    return a, b


def policy(collection: str, name: str, **extra: Any) -> Dict[str, Any]:
    """A server configuration giving one collection a policy."""
    return {"collections": {collection: {"policy": name, **extra}}}


class LinkDown(ConnectionError):
    """What a host transport raises when the link fails (a test's stand-in for an HTTP error)."""


class Flaky:
    """A host transport into ``server`` that fails on purpose on the given call numbers:
    ``"drop_request"`` fails before the server sees the request, ``"drop_reply"`` after
    the server processed it (the reply is lost)."""

    def __init__(self, server: pier.Server, faults: Dict[int, str], identity: Optional[pier.Identity]) -> None:
        self.server = server
        self.faults = faults
        self.identity = identity
        self.calls = 0
        self.requests: List[bytes] = []

    def __call__(self, request: bytes) -> bytes:
        self.calls += 1
        self.requests.append(request)
        fault = self.faults.get(self.calls)
        if fault == "drop_request":
            raise LinkDown("connection reset before the request arrived")
        response = self.server.handle(request, self.identity)
        if fault == "drop_reply":
            raise LinkDown("connection reset before the reply arrived")
        return response
