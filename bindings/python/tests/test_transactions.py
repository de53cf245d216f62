"""Explicit transactions: commit, rollback on exception, no nesting."""

from __future__ import annotations

from pathlib import Path

import pytest

import pier


def test_a_transaction_commits_when_the_block_ends(db_path: Path) -> None:
    with pier.Database(db_path) as db, pier.Database(db_path) as other:
        with db.transaction() as tx:
            assert tx is db
            db.put("c", "a", {})
            db.put("c", "b", {})
            db.patch("c", "a", {"x": 1})
            assert db.count("c") == 2
            assert other.count("c") == 0  # not visible outside before commit
        assert other.count("c") == 2
        assert other.get("c", "a") == {"x": 1}


def test_an_exception_rolls_the_transaction_back(db: pier.Database) -> None:
    db.put("c", "kept", {"v": 1})
    with pytest.raises(RuntimeError, match="stop"):
        with db.transaction():
            db.put("c", "lost", {})
            db.patch("c", "kept", {"v": 2})
            db.delete("c", "kept")
            raise RuntimeError("stop")
    assert db.list("c") == [("kept", {"v": 1})]
    with db.transaction():  # the handle is usable again
        db.put("c", "new", {})
    assert db.count("c") == 2


def test_a_pier_error_inside_rolls_back_too(db: pier.Database) -> None:
    with pytest.raises(pier.NotFoundError):
        with db.transaction():
            db.put("c", "a", {})
            db.get("c", "missing")
    assert db.count("c") == 0


def test_transactions_do_not_nest(db: pier.Database) -> None:
    with db.transaction():
        db.put("c", "outer", {})
        with pytest.raises(pier.StateError, match="a transaction is already open"):
            with db.transaction():
                db.put("c", "inner", {})  # never runs
        with pytest.raises(pier.StateError):
            db.begin()
        db.put("c", "after", {})
    assert sorted(record_id for record_id, _ in db.list("c")) == ["after", "outer"]


def test_a_failed_write_leaves_the_transaction_open_and_unchanged(db: pier.Database) -> None:
    with db.transaction():
        db.put("c", "a", {"n": 1})
        with pytest.raises(pier.InvalidError):
            db.put("c", "b", "[not an object]")
        with pytest.raises(pier.NotFoundError):
            db.patch("c", "zzz", {})
        db.put("c", "c", {"n": 3})
    assert [record_id for record_id, _ in db.list("c")] == ["a", "c"]


def test_commit_and_rollback_without_a_transaction_are_state_errors(db: pier.Database) -> None:
    with pytest.raises(pier.StateError, match="^no transaction is open; call begin first$"):
        db.commit()
    with pytest.raises(pier.StateError, match="^no transaction is open; call begin first$"):
        db.rollback()


def test_explicit_begin_commit_rollback(db: pier.Database) -> None:
    db.begin()
    db.put("c", "a", {})
    db.rollback()
    assert db.count("c") == 0
    db.begin()
    db.put("c", "a", {})
    db.commit()
    assert db.count("c") == 1


def test_closing_inside_a_transaction_rolls_back_and_the_block_reports_it(db_path: Path) -> None:
    db = pier.Database(db_path)
    with pytest.raises(pier.ClosedError):
        with db.transaction():
            db.put("c", "a", {})
            db.close()
    with pier.Database(db_path) as again:
        assert again.count("c") == 0


def test_a_base_exception_rolls_back(db: pier.Database) -> None:
    with pytest.raises(KeyboardInterrupt):
        with db.transaction():
            db.put("c", "a", {})
            raise KeyboardInterrupt
    assert db.count("c") == 0
