"""Opening, options, refusing files that are not Pier stores, read-only, busy, close,
the finalizer."""

from __future__ import annotations

import gc
import os
import sqlite3
import weakref
from pathlib import Path
from typing import Any, Callable, List, Tuple

import pytest

import pier

from conftest import STORE_SCHEMA_VERSION, edit_store


def _snapshot(folder: Path) -> List[Tuple[str, bytes]]:
    return sorted((path.name, path.read_bytes()) for path in folder.iterdir())


def test_open_creates_the_file_and_reopens_it(db_path: Path) -> None:
    assert not db_path.exists()
    with pier.Database(db_path) as db:
        db.put("c", "a", {"x": 1})
    assert db_path.exists()
    with pier.Database(str(db_path)) as db:
        assert db.get("c", "a") == {"x": 1}
    with pier.Database(os.fsencode(db_path)) as db:
        assert db.path == str(db_path)


def test_an_empty_file_becomes_a_store(db_path: Path) -> None:
    db_path.write_bytes(b"")
    with pier.Database(db_path) as db:
        db.put("c", "a", {})
        assert db.info()["schema_version"] == STORE_SCHEMA_VERSION


@pytest.mark.parametrize("content", [b"hello, this is not a database\n" * 200, b"tiny", os.urandom(8192)])
def test_garbage_is_not_a_database_and_is_left_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(content)
    before = _snapshot(tmp_path)
    for readonly in (False, True):
        with pytest.raises(pier.NotADatabaseError) as caught:
            pier.Database(path, readonly=readonly)
        assert caught.value.message == f"{path} is not a Pier store (not an SQLite database, or encrypted)"
        assert _snapshot(tmp_path) == before  # same bytes, no -wal or -shm left behind


def test_another_apps_sqlite_file_is_not_a_database_and_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    connection = sqlite3.connect(str(path))
    connection.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT)")
    connection.execute("INSERT INTO notes(text) VALUES ('keep me')")
    connection.commit()
    connection.close()
    before = _snapshot(tmp_path)
    for readonly in (False, True):
        with pytest.raises(pier.NotADatabaseError, match="is an SQLite database of another application"):
            pier.Database(path, readonly=readonly)
        assert _snapshot(tmp_path) == before


def test_an_empty_sqlite_file_of_another_app_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    connection = sqlite3.connect(str(path))
    connection.execute("PRAGMA application_id = 1234")
    connection.commit()
    connection.close()
    before = _snapshot(tmp_path)
    with pytest.raises(pier.NotADatabaseError, match=r"application_id 1234, 0 schema objects"):
        pier.Database(path)
    assert _snapshot(tmp_path) == before


def test_a_store_from_a_newer_pier_is_a_version_error(db_path: Path) -> None:
    with pier.Database(db_path) as db:
        db.put("c", "a", {})
    edit_store(db_path, "UPDATE pier_meta SET value = 999 WHERE key = 'schema_version'")
    before = db_path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(pier.VersionError) as caught:
            pier.Database(db_path, readonly=readonly)
        assert caught.value.message == f"store schema version 999 is newer than this Pier supports ({STORE_SCHEMA_VERSION}); upgrade Pier to open it"
        assert db_path.read_bytes() == before
    edit_store(db_path, "UPDATE pier_meta SET value = ?1 WHERE key = 'schema_version'", STORE_SCHEMA_VERSION)
    with pier.Database(db_path) as db:
        assert db.get("c", "a") == {}


def test_missing_file_with_must_exist_or_readonly_is_not_found(tmp_path: Path) -> None:
    path = tmp_path / "missing.pier"
    for options in ({"must_exist": True}, {"readonly": True}):
        with pytest.raises(pier.NotFoundError, match="no store at"):
            pier.Database(path, **options)
        assert not path.exists()


def test_must_exist_opens_an_existing_store(db_path: Path) -> None:
    pier.Database(db_path).close()
    with pier.Database(db_path, must_exist=True) as db:
        assert db.count("c") == 0


def test_unopenable_paths_are_io_errors(tmp_path: Path) -> None:
    with pytest.raises(pier.PierIOError, match="unable to open database file") as caught:
        pier.Database(tmp_path / "no" / "such" / "folder.pier")
    assert isinstance(caught.value, OSError)
    with pytest.raises(pier.PierIOError):
        pier.Database(tmp_path)  # a directory


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"durability": "fast"}, pier.InvalidError, "durability must be 'normal' or 'full'"),
        ({"durability": 1}, TypeError, "durability"),
        ({"max_body_bytes": 0}, pier.InvalidError, "max_body_bytes must be 1-67108864, got 0"),
        ({"max_body_bytes": 64 * 1024 * 1024 + 1}, pier.InvalidError, "must be 1-67108864, got 67108865"),
        ({"max_body_bytes": "1"}, TypeError, "max_body_bytes"),
        ({"busy_timeout_ms": -1}, pier.InvalidError, "busy_timeout_ms"),
        ({"busy_timeout_ms": 2**31}, pier.InvalidError, "busy_timeout_ms"),
        ({"default_scope": ""}, pier.InvalidError, "scope must be 1-256 bytes of UTF-8, got 0"),
        ({"default_scope": "a\tb"}, pier.InvalidError, "scope must not contain control characters"),
        ({"default_scope": 3}, TypeError, "default_scope"),
    ],
)
def test_bad_options(db_path: Path, options: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        pier.Database(db_path, **options)


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(pier.InvalidError, match="^path must not be empty$"):
        pier.Database("")
    with pytest.raises(pier.InvalidError, match="NUL"):
        pier.Database(str(tmp_path / "a\x00b"))
    with pytest.raises(TypeError):
        pier.Database(42)  # type: ignore[arg-type]


def test_full_durability_and_timeouts_open(tmp_path: Path) -> None:
    with pier.Database(tmp_path / "f.pier", durability="full", busy_timeout_ms=10, max_body_bytes=64) as db:
        db.put("c", "a", {"x": 1})
    with pier.Database(tmp_path / "f.pier", durability="normal", busy_timeout_ms=0) as db:
        assert db.get("c", "a") == {"x": 1}


# -- read-only --------------------------------------------------------------------------


def test_read_only_reads_and_refuses_every_write(db_path: Path) -> None:
    with pier.Database(db_path) as db:
        db.put("c", "a", {"x": 1})
    before = db_path.read_bytes()
    with pier.Database(db_path, readonly=True) as ro:
        assert ro.readonly
        assert ro.get("c", "a") == {"x": 1}
        assert ro.list("c") == [("a", {"x": 1})]
        assert ro.count("c") == 1
        assert ro.query("SELECT id FROM records") == [{"id": "a"}]
        assert ro.state("c", "a") == "pending"
        assert ro.metadata("c", "a")["body"] == {"x": 1}
        assert ro.info()["collections"][0]["records"] == 1
        assert ro.client_id
        writes: List[Callable[[], Any]] = [
            lambda: ro.put("c", "b", {}),
            lambda: ro.put("c", "b", {}, scope="s"),
            lambda: ro.put_many("c", [("b", {})]),
            lambda: ro.patch("c", "a", {"y": 2}),
            lambda: ro.delete("c", "a"),
            lambda: ro.create_index("c", "x"),
            lambda: ro.begin(),
        ]
        for write in writes:
            with pytest.raises(pier.ReadOnlyError, match="^the store was opened read-only$"):
                write()
        with pytest.raises(pier.ReadOnlyError):
            with ro.transaction():
                pass
        assert ro.get("c", "a") == {"x": 1}
    assert db_path.read_bytes() == before


# -- busy -------------------------------------------------------------------------------


def test_a_writer_blocked_past_the_busy_timeout_gets_busy(db_path: Path) -> None:
    with pier.Database(db_path) as first, pier.Database(db_path, busy_timeout_ms=0) as second:
        with first.transaction():
            first.put("c", "a", {})
            with pytest.raises(pier.BusyError):
                second.put("c", "b", {})
            with pytest.raises(pier.BusyError):
                second.begin()
            assert second.count("c") == 0  # readers are not blocked; they see the last commit
        second.put("c", "b", {})
        assert first.count("c") == second.count("c") == 2


# -- close ------------------------------------------------------------------------------


def test_close_is_idempotent_and_later_calls_raise_closed(db: pier.Database) -> None:
    db.put("c", "a", {})
    assert not db.closed
    db.close()
    db.close()
    assert db.closed
    assert "closed" in repr(db)
    calls: List[Callable[[], Any]] = [
        lambda: db.put("c", "a", {}),
        lambda: db.put("c", "a", {}, scope="s"),
        lambda: db.put_many("c", [("a", {})]),
        lambda: db.put_many("c", []),
        lambda: db.patch("c", "a", {}),
        lambda: db.get("c", "a"),
        lambda: db.get_raw("c", "a"),
        lambda: db.delete("c", "a"),
        lambda: db.list("c"),
        lambda: list(db.iter("c")),
        lambda: db.count("c"),
        lambda: db.query("SELECT 1"),
        lambda: db.create_index("c", "x"),
        lambda: db.state("c", "a"),
        lambda: db.metadata("c", "a"),
        lambda: db.client_id,
        lambda: db.info(),
        lambda: db.begin(),
        lambda: db.commit(),
        lambda: db.rollback(),
        lambda: db.conflicts(),
        lambda: db.change_key(key=bytes(32)),
        lambda: db.rekey(),
    ]
    for call in calls:
        with pytest.raises(pier.ClosedError) as caught:
            call()
        assert caught.value.message == "the store is closed; open it again with pier_db_open"
        assert isinstance(caught.value, ValueError)
    with pytest.raises(pier.ClosedError):
        with db.transaction():
            pass
    with pytest.raises(pier.ClosedError):
        with db:
            pass


def test_with_closes(db_path: Path) -> None:
    with pier.Database(db_path) as db:
        assert not db.closed
    assert db.closed
    with pytest.raises(pier.ClosedError):
        db.count("c")


def test_close_rolls_back_an_open_transaction(db_path: Path) -> None:
    db = pier.Database(db_path)
    db.put("c", "kept", {})
    db.begin()
    db.put("c", "lost", {})
    db.close()
    with pier.Database(db_path) as again:
        assert [record_id for record_id, _ in again.list("c")] == ["kept"]


def test_the_finalizer_frees_an_unclosed_database(db_path: Path) -> None:
    lines: List[str] = []
    pier.set_log_callback(lambda level, message: lines.append(message), pier.LogLevel.INFO)
    db = pier.Database(db_path)
    db.put("c", "a", {"x": 1})
    wal = Path(str(db_path) + "-wal")
    assert wal.exists()  # the store is open in WAL mode
    reference = weakref.ref(db)
    finalizer = db._finalizer
    assert finalizer is not None and finalizer.alive
    del db
    gc.collect()
    assert reference() is None  # nothing keeps a Database alive
    assert not finalizer.alive
    assert f"closed store {db_path}" in lines
    assert not wal.exists()  # the last connection closed and checkpointed
    with pier.Database(db_path) as again:
        assert again.get("c", "a") == {"x": 1}


def test_the_finalizer_frees_a_closed_database_once(db_path: Path) -> None:
    db = pier.Database(db_path)
    db.close()
    finalizer = db._finalizer
    assert finalizer is not None and finalizer.alive  # close() keeps the handle valid
    del db
    gc.collect()
    assert not finalizer.alive
