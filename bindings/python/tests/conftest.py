"""Shared fixtures for the pier binding tests.

The library is found the way users find it: PIER_LIBRARY, else the repository's
build/lib (scripts/build-lib), else the system loader. ``pyproject.toml`` puts ``src`` on
sys.path so the tests exercise this checkout, not an installed copy.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterator

import pytest

try:
    import pier
except ImportError as error:  # pragma: no cover - lets tests that need no libpier still run
    pier = None  # type: ignore[assignment]
    _PIER_IMPORT_ERROR: "ImportError | None" = error
else:
    _PIER_IMPORT_ERROR = None


def _require_pier() -> None:
    if _PIER_IMPORT_ERROR is not None:
        raise _PIER_IMPORT_ERROR


#: The client store schema this libpier writes (pier_meta schema_version): 2 since the
#: sync engine added its tables (conflicts, in-flight batches, collection modes).
STORE_SCHEMA_VERSION = 2


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.pier"


@pytest.fixture
def db(db_path: Path) -> "Iterator[pier.Database]":
    _require_pier()
    database = pier.Database(db_path)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(autouse=True)
def _no_log_callback() -> Iterator[None]:
    """Every test starts and ends without a log callback (it is process-wide)."""
    if pier is None:
        yield
        return
    pier.set_log_callback(None)
    yield
    pier.set_log_callback(None)


def edit_store(path: Path, sql: str, *parameters: object) -> None:
    """Changes a closed store behind Pier's back with Python's sqlite3 module."""
    connection = sqlite3.connect(str(path))
    try:
        connection.execute(sql, parameters)
        connection.commit()
    finally:
        connection.close()


def repo_root() -> "Path | None":
    """The checkout this binding lives in (the folder holding include/pier.h), if any."""
    for folder in Path(__file__).resolve().parents:
        if (folder / "include" / "pier.h").is_file():
            return folder
    return None
