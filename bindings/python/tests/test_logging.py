"""Pier's log lines reach Python; a raising callback never takes the process down."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import List, Tuple

import pytest

import pier


def test_the_pier_logger_has_a_null_handler() -> None:
    assert any(isinstance(handler, logging.NullHandler) for handler in logging.getLogger("pier").handlers)
    assert pier.logger is logging.getLogger("pier")


def test_the_callback_receives_lines_with_levels(db_path: Path) -> None:
    lines: List[Tuple[pier.LogLevel, str]] = []
    pier.set_log_callback(lambda level, message: lines.append((level, message)), pier.LogLevel.DEBUG)
    with pier.Database(db_path) as db:
        with pytest.raises(pier.InvalidError):
            db.put("c", "", {})
    assert (pier.LogLevel.INFO, f"migrated {db_path} to schema version 1") in lines
    assert any(level == pier.LogLevel.INFO and message.startswith(f"opened store {db_path} (client ") for level, message in lines)
    assert (pier.LogLevel.DEBUG, "PIER_EINVALID: record id must be 1-256 bytes of UTF-8, got 0") in lines
    assert (pier.LogLevel.INFO, f"closed store {db_path}") in lines
    assert all(isinstance(level, pier.LogLevel) for level, _ in lines)


def test_lines_below_the_level_are_not_delivered(db_path: Path) -> None:
    lines: List[str] = []
    pier.set_log_callback(lambda level, message: lines.append(message), "warn")
    with pier.Database(db_path) as db:
        with pytest.raises(pier.InvalidError):
            db.put("c", "", {})
    assert lines == []


def test_removing_the_callback_stops_delivery(db_path: Path) -> None:
    lines: List[str] = []
    pier.set_log_callback(lambda level, message: lines.append(message), pier.LogLevel.DEBUG)
    pier.set_log_callback(None)
    pier.Database(db_path).close()
    assert lines == []


def test_replacing_the_callback(db_path: Path) -> None:
    first: List[str] = []
    second: List[str] = []
    pier.set_log_callback(lambda level, message: first.append(message))
    pier.set_log_callback(lambda level, message: second.append(message))
    pier.Database(db_path).close()
    assert first == [] and len(second) >= 2


def test_bad_levels(db_path: Path) -> None:
    with pytest.raises(pier.InvalidError) as caught:
        pier.set_log_callback(print, 7)
    assert caught.value.message == "min_level must be PIER_LOG_DEBUG (0) to PIER_LOG_ERROR (3), got 7"
    with pytest.raises(pier.InvalidError):
        pier.set_log_callback(print, -1)
    with pytest.raises(ValueError, match="level must be one of"):
        pier.set_log_callback(print, "loud")
    with pytest.raises(TypeError):
        pier.set_log_callback(print, 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pier.set_log_callback("print")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pier.log_to_python("debug")  # type: ignore[arg-type]
    # A refused level leaves the earlier callback in place.
    lines: List[str] = []
    pier.set_log_callback(lambda level, message: lines.append(message))
    with pytest.raises(pier.InvalidError):
        pier.set_log_callback(print, 9)
    pier.Database(db_path).close()
    assert len(lines) >= 2


def test_a_raising_callback_does_not_crash_and_is_logged(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    calls: List[str] = []

    def broken(level: pier.LogLevel, message: str) -> None:
        calls.append(message)
        raise RuntimeError("callback bug")

    caplog.set_level(logging.ERROR, logger="pier")
    pier.set_log_callback(broken, pier.LogLevel.DEBUG)
    with pier.Database(db_path) as db:
        db.put("c", "a", {"x": 1})
        with pytest.raises(pier.NotFoundError):  # the failing call still reports its own error
            db.get("c", "missing")
        assert db.get("c", "a") == {"x": 1}
    assert len(calls) >= 3
    errors = [record for record in caplog.records if record.name == "pier" and record.exc_info]
    assert len(errors) == len(calls)
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], RuntimeError)
    assert "the Pier log callback" in errors[0].getMessage()


def test_keyboard_interrupt_in_a_callback_is_raised_after_the_call(db_path: Path) -> None:
    def interrupt(level: pier.LogLevel, message: str) -> None:
        raise KeyboardInterrupt

    pier.set_log_callback(interrupt)
    with pytest.raises(KeyboardInterrupt):
        pier.Database(db_path)  # "opened store" is logged, then the interrupt surfaces
    pier.set_log_callback(None)
    with pier.Database(db_path) as db:  # the store was opened and released properly
        assert db.count("c") == 0


def test_log_to_python(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pier")
    pier.log_to_python(logging.DEBUG)
    with pier.Database(db_path) as db:
        with pytest.raises(pier.InvalidError):
            db.put("", "a", {})
    records = [(record.levelno, record.getMessage()) for record in caplog.records if record.name == "pier"]
    assert (logging.INFO, f"closed store {db_path}") in records
    assert (logging.DEBUG, "PIER_EINVALID: collection name must be 1-128 bytes of UTF-8, got 0") in records


def test_log_to_python_level_filters_in_the_library(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pier")
    pier.log_to_python(logging.INFO)
    with pier.Database(db_path) as db:
        with pytest.raises(pier.InvalidError):
            db.put("", "a", {})
    levels = {record.levelno for record in caplog.records if record.name == "pier"}
    assert levels == {logging.INFO}


def test_lines_from_other_threads_reach_the_callback(db_path: Path) -> None:
    seen: List[str] = []
    lock = threading.Lock()

    def record(level: pier.LogLevel, message: str) -> None:
        if message.startswith("PIER_EINVALID: record id"):  # not lines of stores collected meanwhile
            with lock:
                seen.append(threading.current_thread().name)

    pier.set_log_callback(record, pier.LogLevel.DEBUG)
    with pier.Database(db_path) as db:

        def work() -> None:
            for _ in range(20):
                with pytest.raises(pier.InvalidError):
                    db.put("c", "", {})

        threads = [threading.Thread(target=work, name=f"worker-{n}") for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert {f"worker-{n}" for n in range(4)} <= set(seen)
    assert len(seen) == 80
