"""Python callbacks called by libpier during a sync: a transport, a progress callback and
resolvers on both sides. An exception raised in one never vanishes inside C: it is logged
to the "pier" logger and raised by the Python call that ran the C function, and the store
is left consistent (no local change lost, the pending change still pending)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

import pier

from sync_support import Flaky, World, later, policy, snapshot, two_technicians


class Boom(Exception):
    """Raised by the callbacks under test."""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path)
    yield made
    made.close()


def manual_world(tmp_path: Path, name: str = "manual") -> World:
    folder = tmp_path / name
    folder.mkdir()
    return World(folder, policy("customers", "manual"))


# -- the transport -----------------------------------------------------------------------


def test_a_raising_transport_surfaces_its_exception_and_the_change_stays_pending(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    a = world.client("a")
    a.put("notes", "n", {"text": "hello"})

    def broken(request: bytes) -> bytes:
        raise Boom("no route to host")

    with caplog.at_level(logging.ERROR, logger="pier"):
        with pytest.raises(Boom) as raised:
            a.sync(transport=broken)
    assert isinstance(raised.value.__cause__, pier.NetworkError), "the sync ended as PIER_ENETWORK"
    assert raised.value.__cause__.sync_report.round_trips == 0  # type: ignore[attr-defined]
    assert any(record.exc_info and record.exc_info[1] is raised.value for record in caplog.records)
    assert a.state("notes", "n") == "pending"
    assert world.server.log() == []
    report = world.sync(a)  # the next sync sends it
    assert report.applied == 1
    assert a.state("notes", "n") == "synced"


def test_a_transport_returning_something_other_than_bytes_is_a_type_error(world: World) -> None:
    a = world.client("a")
    a.put("notes", "n", {})
    with pytest.raises(TypeError, match="response frame as bytes, got str"):
        a.sync(transport=lambda request: "not bytes")  # type: ignore[arg-type, return-value]
    assert a.state("notes", "n") == "pending"


def test_a_transport_returning_garbage_is_a_protocol_error(world: World) -> None:
    a = world.client("a")
    a.put("notes", "n", {})
    with pytest.raises(pier.ProtocolError):
        a.sync(transport=lambda request: b"this is not a pier frame")
    assert a.state("notes", "n") == "pending"
    assert world.sync(a).applied == 1


def test_keyboard_interrupt_in_a_transport_is_raised_after_the_sync(world: World) -> None:
    a = world.client("a")
    a.put("notes", "n", {})

    def interrupted(request: bytes) -> bytes:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        a.sync(transport=interrupted)
    assert a.state("notes", "n") == "pending"


# -- progress ----------------------------------------------------------------------------


def test_a_raising_progress_callback_stops_a_host_transport_sync_at_the_next_round_trip(world: World) -> None:
    a = world.client("a")
    a.put_many("items", [(f"i{n}", {"v": n}) for n in range(4)])
    transport = Flaky(world.server, {}, None)
    calls: List[pier.SyncProgress] = []

    def progress(step: pier.SyncProgress) -> None:
        calls.append(step)
        raise Boom("progress bar crashed")

    with pytest.raises(Boom) as raised:
        a.sync(transport=transport, max_batch_changes=2, progress=progress)
    assert isinstance(raised.value.__cause__, pier.CancelledError)
    assert len(calls) == 1 and transport.calls == 1, "no round trip after the callback raised"
    states = sorted(a.state("items", f"i{n}") for n in range(4))
    assert states == ["pending", "pending", "synced", "synced"], "the first batch landed, the rest waits"
    world.sync(a)
    assert [a.state("items", f"i{n}") for n in range(4)] == ["synced"] * 4
    assert len(world.server.log()) == 4


def test_a_raising_progress_callback_on_an_in_process_sync_surfaces_after_the_sync(world: World) -> None:
    a = world.client("a")
    a.put("notes", "n", {"text": "x"})

    def progress(step: pier.SyncProgress) -> None:
        raise Boom("late")

    with pytest.raises(Boom):
        world.sync(a, progress=progress)
    # The in-process sync cannot be stopped from the callback: it completed consistently.
    assert a.state("notes", "n") == "synced"
    assert world.server_body("notes", "n") == {"text": "x"}


# -- the client resolver -----------------------------------------------------------------


def test_a_raising_client_resolver_leaves_the_conflict_and_the_local_change(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    world = manual_world(tmp_path)
    try:
        a, b = two_technicians(world)
        a.patch("customers", "c1", {"phone": "A"})
        b.patch("customers", "c1", {"phone": "B"})
        world.sync(a)

        def broken(conflict: pier.Conflict) -> Any:
            raise Boom(f"cannot decide {conflict.id}")

        with caplog.at_level(logging.ERROR, logger="pier"):
            with pytest.raises(Boom, match="cannot decide c1"):
                world.sync(b, resolver=broken)
        assert "the sync resolver" in caplog.text
        [conflict] = b.conflicts()
        assert conflict.local_body == {"name": "Ada", "phone": "B", "city": "Oslo"}, "the local edit is kept"
        assert b.state("customers", "c1") == "conflicted"
        b.resolve(conflict.conflict_id, pier.KEEP_LOCAL)
        world.sync(b)
        world.sync(a)
        assert a.get("customers", "c1")["phone"] == "B"
    finally:
        world.close()


@pytest.mark.parametrize("bad", [pier.REJECT, pier.MERGED, 42, '{"not": "closed"'])
def test_a_client_resolver_returning_nonsense_leaves_the_conflict(tmp_path: Path, bad: Any) -> None:
    world = manual_world(tmp_path)
    try:
        a, b = two_technicians(world)
        a.patch("customers", "c1", {"phone": "A"})
        b.patch("customers", "c1", {"phone": "B"})
        world.sync(a)
        if isinstance(bad, str):
            # Invalid JSON text reaches the library, which refuses the merged body.
            with pytest.raises(pier.InvalidError, match="merged body is not a valid JSON object"):
                world.sync(b, resolver=lambda conflict: bad)
        else:
            with pytest.raises(TypeError):
                world.sync(b, resolver=lambda conflict: bad)
        assert len(b.conflicts()) == 1
        assert b.conflicts()[0].local_body == {"name": "Ada", "phone": "B", "city": "Oslo"}
    finally:
        world.close()


# -- the server resolver -----------------------------------------------------------------


def orders_world(tmp_path: Path) -> World:
    return World(tmp_path, {"collections": {"orders": {"policy": "custom"}}})


def conflicting_orders(world: World) -> "tuple[pier.Database, pier.Database]":
    device, office = world.client("device"), world.client("office")
    device.put("orders", "o1", {"status": "open"})
    world.sync(device)
    world.sync(office)
    office.patch("orders", "o1", {"status": "cancelled"})
    later()
    device.patch("orders", "o1", {"status": "completed"})
    world.sync(office)
    return device, office


def test_a_raising_server_resolver_makes_a_manual_conflict_and_surfaces_from_sync(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = orders_world(tmp_path)
    try:
        def broken(change: pier.ResolverInput) -> Any:
            raise Boom("rules engine down")

        world.server.set_resolver("orders", broken)
        device, office = conflicting_orders(world)
        with caplog.at_level(logging.ERROR, logger="pier"):
            with pytest.raises(Boom, match="rules engine down"):
                world.sync(device)
        assert "the server resolver of 'orders'" in caplog.text
        # The change was not lost: it waits as a conflict on both sides.
        [conflict] = device.conflicts()
        assert conflict.local_body == {"status": "completed"}
        assert conflict.server_body == {"status": "cancelled"}
        assert len(world.server.conflicts(open_only=True)) == 1
        assert [entry["outcome"] for entry in world.server.log(record_id="o1")][-1] == "conflict"
        device.resolve(conflict, pier.KEEP_SERVER)
        world.sync(device)
        assert device.get("orders", "o1") == {"status": "cancelled"}
    finally:
        world.close()


def test_a_raising_server_resolver_surfaces_from_server_handle(tmp_path: Path) -> None:
    world = orders_world(tmp_path)
    try:
        world.server.set_resolver("orders", lambda change: 1 / 0)  # type: ignore[arg-type, return-value]
        device, _ = conflicting_orders(world)
        transport = Flaky(world.server, {}, None)
        with pytest.raises(ZeroDivisionError) as raised:
            device.sync(transport=transport)
        # Raised by Server.handle inside the transport, so the sync ended as PIER_ENETWORK
        # and the reply is replayed by the next sync: the change is not lost.
        assert isinstance(raised.value.__cause__, pier.NetworkError)
        world.server.set_resolver("orders", None)
        report = device.sync(transport=transport)
        assert report.replayed_batch and report.conflicts == 1
        assert len(device.conflicts()) == 1
    finally:
        world.close()


@pytest.mark.parametrize(
    "decision, outcome, status",
    [
        (pier.KEEP_SERVER, "superseded", "cancelled"),
        (pier.REJECT, "rejected", "cancelled"),
        ({"status": "cancelled", "note": "by rule"}, "merged", "cancelled"),
        ('{"status":"completed"}', "applied", "completed"),
        (pier.MANUAL, "conflict", None),
        (None, "conflict", None),
    ],
)
def test_every_server_resolver_decision(tmp_path: Path, decision: Any, outcome: str, status: Optional[str]) -> None:
    world = orders_world(tmp_path)
    try:
        world.server.set_resolver("orders", lambda change: decision)
        device, office = conflicting_orders(world)
        world.sync(device)
        world.sync(office)
        assert world.server.log(record_id="o1")[-1]["outcome"] == outcome
        if status is None:
            assert len(device.conflicts()) == 1
        else:
            assert device.get("orders", "o1")["status"] == status
            assert snapshot(device) == snapshot(office) == world.server_snapshot()
        if decision is pier.REJECT:
            assert "custom" in world.server.log(record_id="o1")[-1]["detail"]
    finally:
        world.close()


@pytest.mark.parametrize("bad", [pier.KEEP_LOCAL, pier.MERGED, 3.5])
def test_a_server_resolver_returning_nonsense_is_a_type_error_and_a_manual_conflict(tmp_path: Path, bad: Any) -> None:
    world = orders_world(tmp_path)
    try:
        world.server.set_resolver("orders", lambda change: bad)
        device, _ = conflicting_orders(world)
        with pytest.raises(TypeError):
            world.sync(device)
        assert len(device.conflicts()) == 1
    finally:
        world.close()


def test_a_server_resolver_body_that_is_not_an_object_is_rejected_by_the_server(tmp_path: Path) -> None:
    world = orders_world(tmp_path)
    try:
        world.server.set_resolver("orders", lambda change: "[1, 2]")
        device, _ = conflicting_orders(world)
        assert world.sync(device).rejected == 1
        assert "not a JSON object" in world.server.log(record_id="o1")[-1]["detail"]
    finally:
        world.close()


def test_a_replaced_resolver_is_the_one_called(tmp_path: Path) -> None:
    world = orders_world(tmp_path)
    try:
        calls: List[str] = []
        world.server.set_resolver("orders", lambda change: calls.append("first") or pier.MANUAL)  # type: ignore[func-returns-value]
        world.server.set_resolver("orders", lambda change: calls.append("second") or pier.KEEP_SERVER)  # type: ignore[func-returns-value]
        device, _ = conflicting_orders(world)
        world.sync(device)
        assert calls == ["second"]
    finally:
        world.close()


# -- callbacks must not re-enter -------------------------------------------------------


def test_a_sync_callback_using_the_syncing_database_gets_a_state_error_not_a_crash(world: World) -> None:
    a = world.client("a")
    a.put("notes", "n", {})

    def nosy(request: bytes) -> bytes:
        a.get("notes", "n")  # the handle is locked by this very sync
        return world.server.handle(request)

    with pytest.raises(pier.StateError, match="is syncing on this thread"):
        a.sync(transport=nosy)
    assert a.state("notes", "n") == "pending"  # usable again after the sync
    with pytest.raises(pier.StateError):
        world.sync(a, progress=lambda step: a.close())
    assert not a.closed

    # A second Database on the same file is the way to read during a sync.
    seen: List[Dict[str, Any]] = []
    with pier.Database(a.path) as reader:
        world.sync(a, progress=lambda step: seen.append(reader.info()))
    assert seen and seen[-1]["pending"] == 0


def test_a_server_resolver_calling_its_server_gets_a_state_error(tmp_path: Path) -> None:
    world = orders_world(tmp_path)
    try:
        world.server.set_resolver("orders", lambda change: world.server.log())  # type: ignore[arg-type, return-value]
        device, _ = conflicting_orders(world)
        with pytest.raises(pier.StateError, match="must not call back into its server"):
            world.sync(device)
        assert len(device.conflicts()) == 1
        world.server.log()  # usable again afterwards
    finally:
        world.close()


READ_IN_RESOLVER = textwrap.dedent(
    """
    import ctypes, os, sys, tempfile
    import pier
    from pier import _capi

    folder = tempfile.mkdtemp()
    server = pier.Server(os.path.join(folder, "server.pier"), {"collections": {"c": {"policy": "manual"}}})
    a = pier.Database(os.path.join(folder, "a.pier"))
    b = pier.Database(os.path.join(folder, "b.pier"))
    a.put("c", "x", {"v": 0}); a.sync(server); b.sync(server)
    a.patch("c", "x", {"v": "a"}); b.patch("c", "x", {"v": "b"}); a.sync(server)
    read = []

    def resolver(ctx, conflict, out_body, out_len):
        out = ctypes.c_void_p()
        length = ctypes.c_size_t()
        read.append(_capi.pier_db_get(b._raw_handle, ctypes.byref(out), ctypes.byref(length), b"c", b"x"))
        _capi.pier_free(out)
        return _capi.PIER_RESOLVE_LEAVE

    callback = _capi.pier_conflict_cb(resolver)
    options = _capi.sync_options_init()
    options.server = server._handle
    options.resolver = callback
    rc = _capi.pier_sync(b._raw_handle, None, ctypes.byref(options))
    print(rc, read)
    """
)


def test_a_c_resolver_calling_back_into_its_handle_gets_state_error_not_a_crash() -> None:
    """Through the raw 1:1 layer, in a child process so that a crash could not take pytest down.

    pier.h: a resolver must not call Pier functions on the handle being synced; such a call
    returns PIER_ESTATE (-8) and the sync itself completes."""
    source = Path(pier.__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", READ_IN_RESOLVER],
        env={"PYTHONPATH": str(source), "PIER_LIBRARY": pier.library_path(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.split() == ["0", "[-8]"]
