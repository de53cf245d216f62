"""pier.Server, pier.Identity and the arguments of Database.sync and Database.resolve:
lifetimes, configuration, type checks before C is called, and what the library refuses."""

from __future__ import annotations

import datetime
import gc
import json
import weakref
from pathlib import Path
from typing import Any, Iterator, List

import pytest

import pier
from pier import _capi

from sync_support import World, policy, two_technicians


@pytest.fixture
def server(tmp_path: Path) -> Iterator[pier.Server]:
    made = pier.Server(tmp_path / "server.pier")
    yield made
    made.close()


# -- opening and closing -----------------------------------------------------------------


def test_a_server_is_a_context_manager_and_close_is_idempotent(tmp_path: Path) -> None:
    with pier.Server(tmp_path / "server.pier") as server:
        assert not server.closed
        assert server.path == str(tmp_path / "server.pier")
        assert "open" in repr(server)
    assert server.closed
    server.close()
    assert "closed" in repr(server)
    with pytest.raises(pier.ClosedError):
        server.log()
    with pytest.raises(pier.ClosedError):
        server.handle(b"")
    with pytest.raises(pier.ClosedError):
        server.purge_tombstones()
    with pytest.raises(pier.ClosedError):
        with server:
            pass
    # The master store is a file: a new Server opens it again.
    with pier.Server(tmp_path / "server.pier") as again:
        assert again.log() == []


def test_a_closed_server_refuses_a_sync_with_closed_error(tmp_path: Path, db: pier.Database) -> None:
    server = pier.Server(tmp_path / "server.pier")
    server.close()
    db.put("c", "a", {})
    with pytest.raises(pier.ClosedError):
        db.sync(server)
    assert db.state("c", "a") == "pending"


def test_an_unclosed_server_is_released_when_collected(tmp_path: Path) -> None:
    server = pier.Server(tmp_path / "server.pier")
    server.set_resolver("orders", lambda change: pier.MANUAL)
    finalizer = server._finalizer
    assert finalizer is not None and finalizer.alive
    reference = weakref.ref(server)
    del server
    gc.collect()
    assert reference() is None
    assert not finalizer.alive
    with pier.Server(tmp_path / "server.pier") as again:  # the file is usable
        assert again.conflicts() == []


def test_a_server_file_that_is_garbage_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pier"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(pier.NotADatabaseError):
        pier.Server(path)


def test_a_client_store_is_not_a_server_store_and_the_reverse(tmp_path: Path) -> None:
    pier.Database(tmp_path / "client.pier").close()
    with pytest.raises(pier.NotADatabaseError, match="is not a Pier server store"):
        pier.Server(tmp_path / "client.pier")
    pier.Server(tmp_path / "server.pier").close()
    with pytest.raises(pier.NotADatabaseError):
        pier.Database(tmp_path / "server.pier")


# -- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, message",
    [
        ("{not json", "server configuration is not a JSON object"),
        ("[]", "server configuration is not a JSON object"),
        ({"colections": {}}, 'unknown server configuration key "colections"'),
        ({"collections": {"customers": {"policy": "newest_wins"}}}, 'unknown policy "newest_wins"'),
        ({"collections": {"customers": {"polcy": "manual"}}}, 'unknown key "polcy" in collection "customers"'),
        ({"collections": {"jobs": {"policy": "merge_fields", "fields": {"status": "merge_fields"}}}}, "a field policy must be"),
        ({"drift_bound_ms": -1}, "drift_bound_ms must be a non-negative integer"),
        ({"collections": {"c": {"update_delete": "both"}}}, "unknown update/delete rule"),
        ({"compression_level": 10}, "compression_level must be 0 (never compress) to 9"),
        ({"pull_prefetch_threads": 65}, "pull_prefetch_threads must be 0 (off) to 64"),
    ],
)
def test_a_bad_configuration_is_an_invalid_error(tmp_path: Path, config: Any, message: str) -> None:
    with pytest.raises(pier.InvalidError) as caught:
        pier.Server(tmp_path / "server.pier", config)
    assert message in caught.value.message


@pytest.mark.parametrize("config", [42, ["collections"], b'{"collections": {}}'])
def test_a_configuration_of_the_wrong_type_is_a_type_error(tmp_path: Path, config: Any) -> None:
    with pytest.raises(TypeError, match="config must be a dict, JSON text"):
        pier.Server(tmp_path / "server.pier", config)
    assert not (tmp_path / "server.pier").exists()


@pytest.mark.parametrize("config", [{"pull_prefetch_threads": 0}, {"pull_prefetch_threads": 2, "compression_level": 1},
                                    {"pull_prefetch_max_bytes": 0, "pull_prefetch_ttl_ms": 0, "pull_prefetch_max_pages": 1}])
def test_a_long_pull_in_small_pages_arrives_whole_with_any_prefetch_setting(tmp_path: Path, config: Any) -> None:
    with pier.Server(tmp_path / "server.pier", config) as server:
        with pier.Database(tmp_path / "writer.pier") as writer, pier.Database(tmp_path / "reader.pier") as reader:
            with writer.transaction():
                for i in range(60):
                    writer.put("items", f"r{i:02d}", {"n": i})
            assert writer.sync(server=server).pushed == 60
            writer.put("items", "r05", {"n": "edited"})
            report = reader.sync(server=server, pull_max_records=7)
            assert report.pulled == 60 and report.round_trips >= 9
            writer.sync(server=server)
            reader.sync(server=server, pull_max_records=7)
            assert reader.count("items") == 60
            assert reader.get("items", "r05") == {"n": "edited"}


def test_a_configuration_as_json_text_is_the_same_as_a_dict(tmp_path: Path) -> None:
    text = json.dumps(policy("customers", "first_write_wins"))
    folder = tmp_path / "w"
    folder.mkdir()
    world = World(folder)
    world.server.close()
    world.server = pier.Server(folder / "text.pier", text)
    try:
        a, b = two_technicians(world)
        a.patch("customers", "c1", {"phone": "A"})
        b.patch("customers", "c1", {"phone": "B"})
        world.sync(a)
        assert world.sync(b).rejected == 1
    finally:
        world.close()


def test_server_path_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        pier.Server(42)  # type: ignore[arg-type]
    with pytest.raises(pier.InvalidError, match="NUL"):
        pier.Server(str(tmp_path / "a\0b"))
    with pier.Server(bytes(tmp_path / "bytes.pier")) as server:
        assert server.path == str(tmp_path / "bytes.pier")


# -- handle, log, conflicts, purge -------------------------------------------------------


def test_handle_answers_garbage_with_an_error_frame(server: pier.Server) -> None:
    reply = server.handle(b"\x00garbage")
    assert isinstance(reply, bytes) and len(reply) > 0
    assert server.handle(bytearray(b"more garbage")) and server.handle(memoryview(b"x"))
    with pytest.raises(TypeError, match="request must be bytes"):
        server.handle("text")  # type: ignore[arg-type]


def test_the_log_filters(tmp_path: Path) -> None:
    world = World(tmp_path)
    try:
        a, b = world.client("a"), world.client("b")
        before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
        for n in range(5):
            a.put("notes", f"n{n}", {"n": n})
        b.put("tasks", "t", {})
        world.sync(a)
        world.sync(b)
        log = world.server.log()
        assert [entry["seq"] for entry in log] == [1, 2, 3, 4, 5, 6]
        assert set(log[0]) == {"seq", "server_time", "client_id", "user", "collection", "record_id", "op", "outcome",
                               "base_version", "new_version", "client_hlc", "detail"}
        assert len(world.server.log(collection="notes")) == 5
        assert [entry["record_id"] for entry in world.server.log(client_id=b.client_id)] == ["t"]
        assert len(world.server.log(record_id="n3")) == 1
        assert len(world.server.log(outcome="applied")) == 6 and world.server.log(outcome="rejected") == []
        assert [entry["seq"] for entry in world.server.log(after_seq=2, limit=2)] == [3, 4]
        assert len(world.server.log(since=before)) == 6
        assert world.server.log(until=before) == []
        now_ms = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000) + 60_000
        assert world.server.log(since=now_ms) == []
        assert world.server.log(limit=0) == []
        with pytest.raises(TypeError):
            world.server.log(limit="10")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            world.server.log(collection=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            world.server.log(colection="notes")  # type: ignore[call-arg]
        with pytest.raises(pier.InvalidError, match="timezone-aware"):
            world.server.log(since=datetime.datetime(2020, 1, 1))
        with pytest.raises(pier.InvalidError, match="limit must be 0-100000"):
            world.server.log(limit=100_001)
    finally:
        world.close()


def test_server_conflicts_filter_by_collection_and_state(tmp_path: Path) -> None:
    world = World(tmp_path, {"collections": {"customers": {"policy": "manual"}, "jobs": {"policy": "manual"}}})
    try:
        a, b = two_technicians(world)
        a.patch("customers", "c1", {"phone": "A"})
        b.patch("customers", "c1", {"phone": "B"})
        world.sync(a)
        world.sync(b)
        [conflict] = world.server.conflicts()
        assert conflict["client_body"] == {"name": "Ada", "phone": "B", "city": "Oslo"}
        assert conflict["server_body"] == {"name": "Ada", "phone": "A", "city": "Oslo"}
        assert world.server.conflicts("customers", open_only=True) == [conflict]
        assert world.server.conflicts("jobs") == []
        b.resolve(b.conflicts()[0], pier.KEEP_SERVER)
        world.sync(b)
        assert world.server.conflicts(open_only=True) == []
        assert len(world.server.conflicts("customers")) == 1
        with pytest.raises(TypeError):
            world.server.conflicts(open_only="yes")  # type: ignore[arg-type]
    finally:
        world.close()


def test_purge_tombstones_arguments(server: pier.Server) -> None:
    assert server.purge_tombstones() == 0
    assert server.purge_tombstones(0) == 0
    with pytest.raises(pier.InvalidError, match="horizon_ms must be 0 or more"):
        server.purge_tombstones(-5)
    # ctypes would pass 2**63 as an int64_t of -2**63, which C reads as "the configured horizon".
    for horizon in (2**63, 2**64, 2**64 + 5):
        with pytest.raises(pier.InvalidError, match=r"horizon_ms must be at most INT64_MAX \(9223372036854775807\)"):
            server.purge_tombstones(horizon)
    assert server.purge_tombstones(2**63 - 1) == 0
    with pytest.raises(TypeError):
        server.purge_tombstones(1.5)  # type: ignore[arg-type]


def test_set_resolver_arguments(server: pier.Server) -> None:
    with pytest.raises(TypeError, match="resolver must be callable"):
        server.set_resolver("orders", "cancelled wins")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        server.set_resolver(7, lambda change: None)  # type: ignore[arg-type]
    server.set_resolver("orders", lambda change: None)
    server.set_resolver("orders", None)
    server.set_resolver("never-set", None)


# -- identity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"user": 42},
        {"user": None},
        {"user": "u", "read_scopes": "team-a"},
        {"user": "u", "write_scopes": b"team-a"},
        {"user": "u", "read_scopes": ["team-a", 7]},
        {"user": "u", "write_scopes": 12},
        {"user": "u", "is_admin": "yes"},
        {"user": "u", "is_admin": 1},
    ],
)
def test_an_identity_of_the_wrong_types_is_a_type_error(arguments: Any) -> None:
    with pytest.raises(TypeError, match="Identity"):
        pier.Identity(**arguments)


def test_an_identity_keeps_its_scopes_as_frozen_sets() -> None:
    identity = pier.Identity("ada", read_scopes=["a", "b", "a"], write_scopes=("a",), is_admin=True)
    assert identity.read_scopes == frozenset({"a", "b"}) and identity.write_scopes == frozenset({"a"})
    assert identity == pier.Identity("ada", read_scopes={"b", "a"}, write_scopes=["a"], is_admin=True)
    assert pier.Identity("ada").read_scopes is None
    assert pier.Identity("ada", read_scopes=[]).read_scopes == frozenset()
    with pytest.raises(Exception):
        identity.user = "eve"  # type: ignore[misc]
    with pytest.raises(pier.InvalidError):
        pier.Identity("a\0b")


def test_the_identity_reaches_the_server_as_a_pier_identity() -> None:
    from pier.server import _IdentityStruct

    made = _IdentityStruct(pier.Identity("ada", read_scopes=["x", "y"], write_scopes=[], is_admin=True))
    c = made.struct
    assert (c.version, c.user, c.is_admin) == (_capi.PIER_IDENTITY_VERSION, b"ada", 1)
    assert [c.read_scopes[i] for i in range(c.read_scope_count)] == [b"x", b"y"]
    assert c.write_scope_count == 0 and bool(c.write_scopes), "no scope is a non-NULL empty list, not NULL"
    every = _IdentityStruct(pier.Identity("bob")).struct
    assert not every.read_scopes and not every.write_scopes, "None is NULL: every scope"


def test_identities_of_the_wrong_type_in_sync_and_handle(server: pier.Server, db: pier.Database) -> None:
    with pytest.raises(TypeError, match="identity must be a pier.Identity"):
        db.sync(server, identity="alice")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="identity must be a pier.Identity"):
        db.sync(server, identity={"user": "alice"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="identity must be a pier.Identity"):
        server.handle(b"", identity=("alice",))  # type: ignore[arg-type]


# -- sync arguments ----------------------------------------------------------------------


def test_sync_needs_exactly_one_of_server_and_transport(server: pier.Server, db: pier.Database) -> None:
    with pytest.raises(pier.InvalidError, match="exactly one of server"):
        db.sync()
    with pytest.raises(pier.InvalidError, match="exactly one of server"):
        db.sync(server, transport=server.handle)
    with pytest.raises(pier.InvalidError, match="identity applies to an in-process server"):
        db.sync(transport=server.handle, identity=pier.Identity("ada"))
    with pytest.raises(TypeError, match="server must be a pier.Server"):
        db.sync("http://example.com")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="transport must be callable"):
        db.sync(transport=b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="progress must be callable"):
        db.sync(server, progress=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="resolver must be callable"):
        db.sync(server, resolver="keep_local")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="block_only_conflicted must be bool"):
        db.sync(server, block_only_conflicted=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "option, value, error",
    [
        ("max_batch_changes", 0, pier.InvalidError),
        ("max_batch_changes", -1, pier.InvalidError),
        ("max_batch_bytes", 0, pier.InvalidError),
        ("pull_max_records", 2**32, pier.InvalidError),
        ("pull_max_bytes", 0, pier.InvalidError),
        ("pull_max_records", 10.0, TypeError),
        ("max_batch_changes", True, TypeError),
    ],
)
def test_sync_size_options_are_checked(server: pier.Server, db: pier.Database, option: str, value: Any, error: type) -> None:
    with pytest.raises(error):
        db.sync(server, **{option: value})


def test_sync_inside_a_transaction_is_a_state_error(server: pier.Server, db: pier.Database) -> None:
    with db.transaction():
        db.put("c", "a", {})
        with pytest.raises(pier.StateError) as caught:
            db.sync(server)
        assert caught.value.sync_report.pushed == 0  # type: ignore[attr-defined]
    assert db.sync(server).pushed == 1


def test_sync_on_a_closed_database_is_a_closed_error(server: pier.Server, db_path: Path) -> None:
    db = pier.Database(db_path)
    db.close()
    with pytest.raises(pier.ClosedError):
        db.sync(server)


def test_the_sync_report_has_every_field_of_the_c_report(server: pier.Server, db: pier.Database) -> None:
    db.put("c", "a", {"x": 1})
    report = db.sync(server)
    c_fields = [field[0] for field in _capi.pier_sync_report._fields_ if field[0] != "version"]
    assert list(vars(report)) == c_fields
    assert (report.pushed, report.applied, report.round_trips) == (1, 1, 1)
    assert report.bytes_sent > 0 and report.bytes_sent_raw >= report.bytes_sent - 8
    assert report.bytes_received > 0 and report.bytes_received_raw > 0
    assert isinstance(report.duration_ms, float) and report.duration_ms >= 0
    assert report.resynced is False and report.replayed_batch is False
    with pytest.raises(Exception):
        report.pushed = 5  # type: ignore[misc]


# -- resolve arguments -------------------------------------------------------------------


def test_resolve_arguments(tmp_path: Path) -> None:
    world = World(tmp_path, policy("customers", "manual"))
    try:
        a, b = two_technicians(world)
        a.patch("customers", "c1", {"phone": "A"})
        b.patch("customers", "c1", {"phone": "B"})
        world.sync(a)
        world.sync(b)
        [conflict] = b.conflicts()
        with pytest.raises(pier.NotFoundError, match="no conflict"):
            b.resolve("no-such-conflict", pier.KEEP_LOCAL)
        with pytest.raises(pier.InvalidError, match="body is only for a merged resolution"):
            b.resolve(conflict, pier.KEEP_LOCAL, {"phone": "x"})
        with pytest.raises(pier.InvalidError, match="pier.MERGED needs the merged body"):
            b.resolve(conflict, pier.MERGED)
        with pytest.raises(pier.InvalidError, match="give the merged body once"):
            b.resolve(conflict, {"phone": "x"}, {"phone": "y"})
        with pytest.raises(pier.InvalidError, match="a device resolves with"):
            b.resolve(conflict, pier.REJECT)
        with pytest.raises(pier.InvalidError, match="JSON object"):
            b.resolve(conflict, "[1, 2]")
        with pytest.raises(TypeError, match="resolution must be"):
            b.resolve(conflict, 1)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            b.resolve(42, pier.KEEP_LOCAL)  # type: ignore[arg-type]
        assert len(b.conflicts()) == 1, "nothing above touched the conflict"
        b.resolve(conflict.conflict_id, pier.MERGED, {"name": "Ada", "phone": "merged", "city": "Oslo"})
        assert b.conflicts() == []
        with pytest.raises(pier.NotFoundError):
            b.resolve(conflict, pier.KEEP_SERVER)  # already resolved
        world.sync(b)
        world.sync(a)
        assert a.get("customers", "c1")["phone"] == "merged"
    finally:
        world.close()


def test_the_resolution_enum() -> None:
    assert pier.Resolution.KEEP_LOCAL is pier.KEEP_LOCAL
    assert {member.value for member in pier.Resolution} == {"keep_local", "keep_server", "merged", "reject", "manual"}
    assert repr(pier.KEEP_SERVER) == "pier.KEEP_SERVER"
    assert pier.CollectionMode("push_only") is pier.CollectionMode.PUSH_ONLY


def test_exports() -> None:
    for name in ["Server", "Identity", "SyncReport", "SyncProgress", "Conflict", "CollectionMode", "Resolution",
                 "ResolverInput", "KEEP_LOCAL", "KEEP_SERVER", "MERGED", "REJECT", "MANUAL"]:
        assert name in pier.__all__ and hasattr(pier, name), name


def test_server_and_sync_share_one_thread_safe_server(tmp_path: Path) -> None:
    import threading

    world = World(tmp_path)
    try:
        clients = [world.client(f"c{n}") for n in range(4)]
        failures: List[BaseException] = []

        def work(db: pier.Database, n: int) -> None:
            try:
                for round_ in range(5):
                    db.put("log", f"c{n}-{round_}", {"n": n})
                    if n % 2:
                        db.sync(world.server)
                    else:
                        db.sync(transport=world.server.handle)
            except BaseException as error:  # pragma: no cover - reported below
                failures.append(error)

        threads = [threading.Thread(target=work, args=(db, n)) for n, db in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        for db in clients:
            db.sync(world.server)
        assert len(world.server.log(collection="log", limit=1000)) == 20
        assert all(db.count("log") == 20 for db in clients)
    finally:
        world.close()
