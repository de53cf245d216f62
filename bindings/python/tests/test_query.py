"""Read-only SQL over the documented `records` view, with bound parameters."""

from __future__ import annotations

from typing import Any, List

import pytest

import pier


@pytest.fixture
def people(db: pier.Database) -> pier.Database:
    db.put("people", "ada", {"name": "Ada", "born": 1815, "city": "London", "tags": ["math"]})
    db.put("people", "alan", {"name": "Alan", "born": 1912, "city": "London"})
    db.put("people", "grace", {"name": "Grace", "born": 1906, "city": "New York"})
    db.put("pets", "rex", {"name": "Rex"})
    return db


def test_the_records_view_has_the_documented_columns(people: pier.Database) -> None:
    rows = people.query("SELECT * FROM records WHERE id = ?1", ["ada"])
    assert len(rows) == 1
    row = rows[0]
    assert list(row) == ["collection", "id", "body", "scope", "sync_state", "version", "hlc", "local_seq"]
    assert row["collection"] == "people" and row["body"]["name"] == "Ada"
    assert row["scope"] == "default" and row["sync_state"] == "pending" and row["version"] == 0
    assert isinstance(row["hlc"], int) and row["local_seq"] == 1


def test_parameters_filter_and_json_extract_reaches_into_bodies(people: pier.Database) -> None:
    rows = people.query(
        "SELECT id, json_extract(body, '$.born') AS born FROM records "
        "WHERE collection = ?1 AND json_extract(body, '$.city') = ?2 ORDER BY born",
        ("people", "London"),
    )
    assert rows == [{"id": "ada", "born": 1815}, {"id": "alan", "born": 1912}]


def test_parameter_types_bind_as_documented(db: pier.Database) -> None:
    rows = db.query(
        "SELECT ?1 AS n, ?2 AS t, ?3 AS f, ?4 AS r, ?5 AS s, ?6 AS a, ?7 AS o, ?8 AS big, typeof(?6) AS at",
        [None, True, False, 1.25, "ü", [1, "x"], {"k": None}, 2**62],
    )
    assert rows == [{"n": None, "t": 1, "f": 0, "r": 1.25, "s": "ü", "a": '[1,"x"]', "o": '{"k":null}', "big": 2**62, "at": "text"}]


def test_result_value_types(db: pier.Database) -> None:
    rows = db.query("SELECT 1 AS i, 2.5 AS r, 3.0 AS whole, NULL AS n, 'a\"b\\\\c' AS s, x'00ff10' AS blob, 1 = 1 AS truth")
    assert rows == [{"i": 1, "r": 2.5, "whole": 3.0, "n": None, "s": 'a"b\\\\c', "blob": "AP8Q", "truth": 1}]
    assert isinstance(rows[0]["whole"], float)


def test_no_rows_is_an_empty_list(people: pier.Database) -> None:
    assert people.query("SELECT id FROM records WHERE collection = 'nobody'") == []


def test_aggregates_and_ctes(people: pier.Database) -> None:
    assert people.query("SELECT collection, count(*) AS n FROM records GROUP BY collection ORDER BY collection") == [
        {"collection": "people", "n": 3}, {"collection": "pets", "n": 1}]
    assert people.query("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3) SELECT x FROM n") == [
        {"x": 1}, {"x": 2}, {"x": 3}]


def test_deleted_records_are_not_in_the_view(people: pier.Database) -> None:
    people.delete("people", "alan")
    assert [row["id"] for row in people.query("SELECT id FROM records WHERE collection = 'people' ORDER BY id")] == ["ada", "grace"]


def test_a_trailing_semicolon_is_fine(people: pier.Database) -> None:
    assert people.query("SELECT count(*) AS n FROM records;  \n") == [{"n": 4}]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM pier_records",
        "UPDATE pier_records SET body = '{}'",
        "INSERT INTO pier_meta(key, value) VALUES ('x', 1)",
        "INSERT INTO pier_meta(key, value) VALUES ('x', 1) RETURNING *",
        "DROP TABLE pier_records",
        "CREATE TABLE t(x)",
        "CREATE INDEX i ON pier_records(scope)",
        "PRAGMA user_version",
        "PRAGMA journal_mode = DELETE",
        "ATTACH DATABASE ':memory:' AS other",
        "DETACH DATABASE main",
        "BEGIN",
        "VACUUM",
        "ANALYZE",
        "REINDEX",
    ],
)
def test_statements_that_write_are_refused(people: pier.Database, sql: str) -> None:
    with pytest.raises(pier.ReadOnlyError, match="^query must be one read-only SELECT statement"):
        people.query(sql)
    assert people.count("people") == 3
    assert people.query("SELECT count(*) AS n FROM pier_meta WHERE key = 'x'") == [{"n": 0}]


@pytest.mark.parametrize(
    "sql, params, message",
    [
        ("SELECT 1; SELECT 2", (), "query must be exactly one statement; found more after it"),
        ("SELECT 1; DELETE FROM pier_records", (), "query must be exactly one statement; found more after it"),
        ("SELEC 1", (), 'query does not compile: near "SELEC": syntax error'),
        ("SELECT * FROM no_such_table", (), "query does not compile: no such table: no_such_table"),
        ("", (), "query is empty"),
        ("  -- only a comment", (), "query is empty"),
        ("SELECT ?1, ?2", [1], "query takes 2 parameters, got 1"),
        ("SELECT ?1", [1, 2], "query takes 1 parameters, got more"),
        ("SELECT ?1", (), "query has 1 parameters but none were given"),
    ],
)
def test_invalid_queries(people: pier.Database, sql: str, params: List[Any], message: str) -> None:
    with pytest.raises(pier.InvalidError) as caught:
        people.query(sql, params)
    assert caught.value.message == message
    assert people.count("people") == 3


@pytest.mark.parametrize("sql", ["SELECT json('not json')", "SELECT abs(-9223372036854775807 - 1)"])
def test_runtime_errors_in_a_query_are_invalid(db: pier.Database, sql: str) -> None:
    with pytest.raises(pier.InvalidError):
        db.query(sql)


def test_a_comment_after_the_statement_is_not_a_second_statement(db: pier.Database) -> None:
    assert db.query("SELECT 1 AS one; -- done") == [{"one": 1}]
