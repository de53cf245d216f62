"""put / put_many / patch / get / delete / list / count / state / metadata / info."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List

import pytest

import pier
from pier import _capi

from conftest import STORE_SCHEMA_VERSION, edit_store

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


# -- put / get -----------------------------------------------------------------------


def test_put_then_get_round_trips_a_dict(db: pier.Database) -> None:
    body = {"name": "Ada", "age": 36, "tags": ["x", "y"], "address": {"city": "London"}, "ok": True, "none": None, "f": 1.5}
    db.put("customers", "c1", body)
    assert db.get("customers", "c1") == body
    assert db.count("customers") == 1


def test_put_encodes_dicts_compactly(db: pier.Database) -> None:
    db.put("c", "a", {"a": 1, "b": [1, 2], "é": "ü"})
    assert db.get_raw("c", "a") == '{"a":1,"b":[1,2],"é":"ü"}'


@pytest.mark.parametrize("body", ['{"a": 1}', b'{"a": 1}', bytearray(b'{"a": 1}'), memoryview(b'{"a": 1}'), OrderedDict(a=1)])
def test_put_accepts_json_text_and_mappings(db: pier.Database, body: Any) -> None:
    db.put("c", "a", body)
    assert db.get("c", "a") == {"a": 1}


def test_json_text_is_stored_as_given(db: pier.Database) -> None:
    db.put("c", "a", ' { "a" : 1 } ')
    assert db.get_raw("c", "a") == ' { "a" : 1 } '


def test_put_replaces_the_whole_body(db: pier.Database) -> None:
    db.put("c", "a", {"a": 1, "b": 2})
    db.put("c", "a", {"c": 3})
    assert db.get("c", "a") == {"c": 3}
    assert db.count("c") == 1


def test_get_missing_is_not_found_and_a_key_error(db: pier.Database) -> None:
    with pytest.raises(pier.NotFoundError) as caught:
        db.get("c", "missing")
    assert caught.value.message == 'no record "missing" in collection "c"'
    assert caught.value.code == _capi.PIER_ENOTFOUND
    with pytest.raises(KeyError):
        db.get_raw("c", "missing")


def test_collections_are_separate(db: pier.Database) -> None:
    db.put("a", "1", {"v": "a"})
    db.put("b", "1", {"v": "b"})
    assert db.get("a", "1") == {"v": "a"} and db.get("b", "1") == {"v": "b"}
    assert db.count("a") == db.count("b") == 1
    assert db.count("never-used") == 0


def test_unicode_ids_collections_and_bodies_round_trip(db: pier.Database) -> None:
    collection = "café ☕ 集合"
    record_id = 'ключ-🔑-"quoted"\\back'
    body = {"emoji": "🚀✨", "rtl": "שלום", "cjk": "日本語", "nul_escape": "a\u0000b", "sep": "\u2028", "quote": '"\\'}
    db.put(collection, record_id, body, scope="équipe-🌍")
    assert db.get(collection, record_id) == body
    assert db.list(collection) == [(record_id, body)]
    assert db.metadata(collection, record_id)["scope"] == "équipe-🌍"
    rows = db.query("SELECT id, body FROM records WHERE collection = ?1", [collection])
    assert rows == [{"id": record_id, "body": body}]


# -- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "collection, record_id, message",
    [
        ("", "a", "collection name must be 1-128 bytes of UTF-8, got 0"),
        ("c" * 129, "a", "collection name must be 1-128 bytes of UTF-8, got 129"),
        ("é" * 65, "a", "collection name must be 1-128 bytes of UTF-8, got 130"),
        ("c\x01", "a", "collection name must not contain control characters (found byte 0x1)"),
        ("c", "", "record id must be 1-256 bytes of UTF-8, got 0"),
        ("c", "i" * 257, "record id must be 1-256 bytes of UTF-8, got 257"),
        ("c", "€" * 86, "record id must be 1-256 bytes of UTF-8, got 258"),
        ("c", "a\nb", "record id must not contain control characters (found byte 0xa)"),
        ("c", "a\x7f", "record id must not contain control characters (found byte 0x7f)"),
    ],
)
def test_bad_names_and_ids_are_invalid_with_the_library_message(db: pier.Database, collection: str, record_id: str, message: str) -> None:
    for call in (
        lambda: db.put(collection, record_id, {}),
        lambda: db.get(collection, record_id),
        lambda: db.delete(collection, record_id),
        lambda: db.patch(collection, record_id, {}),
        lambda: db.state(collection, record_id),
        lambda: db.metadata(collection, record_id),
    ):
        with pytest.raises(pier.InvalidError) as caught:
            call()
        assert caught.value.message == message
        assert isinstance(caught.value, ValueError)


def test_names_at_the_limits_are_accepted(db: pier.Database) -> None:
    db.put("c" * 128, "i" * 256, {})
    db.put("é" * 64, "€" * 85, {}, scope="s" * 256)
    assert db.count("c" * 128) == 1 and db.count("é" * 64) == 1


def test_bad_scope_is_invalid(db: pier.Database) -> None:
    with pytest.raises(pier.InvalidError, match=r"^scope must be 1-256 bytes of UTF-8, got 0$"):
        db.put("c", "a", {}, scope="")
    with pytest.raises(pier.InvalidError, match=r"^scope must be 1-256 bytes of UTF-8, got 257$"):
        db.put("c", "a", {}, scope="s" * 257)
    assert db.count("c") == 0


def test_nul_characters_are_refused_before_c_would_cut_the_string(db: pier.Database) -> None:
    db.put("c", "a", {})
    with pytest.raises(pier.InvalidError, match="NUL"):
        db.get("c", "a\x00ignored")
    with pytest.raises(pier.InvalidError, match="NUL"):
        db.put("c\x00d", "a", {})
    with pytest.raises(pier.InvalidError, match="NUL"):
        db.query("SELECT 1\x00; DROP TABLE x")


def test_lone_surrogates_are_invalid(db: pier.Database) -> None:
    with pytest.raises(pier.InvalidError, match="UTF-8"):
        db.put("c", "\ud800", {})
    with pytest.raises(pier.InvalidError, match="UTF-8"):
        db.put("c", "a", {"x": "\udfff"})


@pytest.mark.parametrize(
    "body, message",
    [
        ("[1, 2]", "body must be a JSON object, got an array"),
        ('"text"', "body must be a JSON object, got a string"),
        ("42", "body must be a JSON object, got a number"),
        ("true", "body must be a JSON object, got a boolean"),
        ("null", "body must be a JSON object, got null"),
        ("", "body must be a JSON object, got an empty body"),
        ("   ", "body must be a JSON object, got an empty body"),
        ("hello", "body must be a JSON object, got text that is not JSON"),
        ('{"a":', "body is not valid JSON (missing value at byte 5); send one JSON object"),
        ('{"a":1} trailing', "body is not valid JSON (unexpected text after the JSON object at byte 8); send one JSON object"),
        ('{"a":1}{"b":2}', "body is not valid JSON (unexpected text after the JSON object at byte 7); send one JSON object"),
        ("{a:1}", "body is not valid JSON (expected a member name at byte 1); send one JSON object"),
    ],
)
def test_bodies_that_are_not_one_json_object_are_invalid(db: pier.Database, body: str, message: str) -> None:
    with pytest.raises(pier.InvalidError) as caught:
        db.put("c", "a", body)
    assert caught.value.message == message
    with pytest.raises(pier.NotFoundError):
        db.get("c", "a")  # nothing half-written


def test_body_that_is_not_utf8_is_invalid(db: pier.Database) -> None:
    with pytest.raises(pier.InvalidError):
        db.put("c", "a", b'{"a":"\xff"}')


def test_body_with_a_trailing_nul_byte_is_invalid(db: pier.Database) -> None:
    with pytest.raises(pier.InvalidError):
        db.put("c", "a", b'{"a":1}\x00')


def test_body_limit(tmp_path: Path) -> None:
    with pier.Database(tmp_path / "small.pier", max_body_bytes=30) as db:
        exactly = '{"a":"' + "x" * 22 + '"}'
        assert len(exactly) == 30
        db.put("c", "a", exactly)
        with pytest.raises(pier.InvalidError) as caught:
            db.put("c", "b", exactly[:-2] + 'x"}')
        assert caught.value.message == "body is 31 bytes, over the store's limit of 30"
        with pytest.raises(pier.NotFoundError):
            db.get("c", "b")


def test_default_body_limit_is_one_mebibyte(db: pier.Database) -> None:
    filler = "x" * (_capi.PIER_DEFAULT_MAX_BODY_BYTES - len('{"a":""}'))
    db.put("c", "max", {"a": filler})
    with pytest.raises(pier.InvalidError, match="over the store's limit of 1048576"):
        db.put("c", "over", {"a": filler + "x"})


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_bodies_python_cannot_encode_as_json_are_invalid(db: pier.Database, value: float) -> None:
    with pytest.raises(pier.InvalidError, match="cannot be encoded as JSON"):
        db.put("c", "a", {"x": value})


def test_circular_bodies_are_invalid(db: pier.Database) -> None:
    body: Dict[str, Any] = {}
    body["self"] = body
    with pytest.raises(pier.InvalidError, match="Circular reference"):
        db.put("c", "a", body)


# -- types are checked before the library is called ----------------------------------


@pytest.fixture
def no_c_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_: Any) -> int:
        raise AssertionError("the C function must not be called")

    for name in dir(_capi):
        if name.startswith("pier_db_") and name not in ("pier_db_p", "pier_db_free", "pier_db_close"):
            monkeypatch.setattr(_capi, name, forbidden)


@pytest.mark.parametrize(
    "call",
    [
        lambda db: db.put(1, "a", {}),
        lambda db: db.put("c", 1, {}),
        lambda db: db.put("c", b"a", {}),
        lambda db: db.put("c", "a", [1, 2]),
        lambda db: db.put("c", "a", 42),
        lambda db: db.put("c", "a", None),
        lambda db: db.put("c", "a", {"x": object()}),
        lambda db: db.put("c", "a", {}, scope=5),
        lambda db: db.put_many("c", [("a", {}), ("b", 5)]),
        lambda db: db.put_many("c", [("a", {}), 7]),
        lambda db: db.put_many("c", [("a",)]),
        lambda db: db.put_many("c", 5),
        lambda db: db.put_many("c", "ab"),
        lambda db: db.put_many(None, {}),
        lambda db: db.patch("c", "a", [1]),
        lambda db: db.get(None, "a"),
        lambda db: db.get_raw("c", None),
        lambda db: db.delete("c", 3.5),
        lambda db: db.list(5),
        lambda db: db.list("c", after=5),
        lambda db: db.list("c", limit="10"),
        lambda db: db.list("c", limit=True),
        lambda db: db.iter("c", page_size="3"),
        lambda db: db.iter(7),
        lambda db: db.count(b"c"),
        lambda db: db.query(b"SELECT 1"),
        lambda db: db.query("SELECT ?1", "x"),
        lambda db: db.query("SELECT ?1", {"a": 1}),
        lambda db: db.query("SELECT ?1", 5),
        lambda db: db.query("SELECT ?1", [b"bytes"]),
        lambda db: db.create_index("c", None),
        lambda db: db.state("c", None),
        lambda db: db.metadata(None, "a"),
    ],
)
def test_wrong_types_raise_type_error_before_any_c_call(db: pier.Database, no_c_calls: None, call: Any) -> None:
    with pytest.raises(TypeError):
        call(db)


# -- put_many --------------------------------------------------------------------------


def test_put_many_accepts_pairs_dicts_and_generators(db: pier.Database) -> None:
    db.put_many("c", [("a", {"n": 1}), ("b", '{"n": 2}')])
    db.put_many("c", {"c": {"n": 3}, "d": b'{"n": 4}'})
    db.put_many("c", ((f"e{i}", {"n": i}) for i in range(3)))
    db.put_many("c", [])
    assert db.count("c") == 7
    assert db.get("c", "d") == {"n": 4}


def test_put_many_is_all_or_nothing(db: pier.Database) -> None:
    db.put("c", "b", {"old": True})
    with pytest.raises(pier.InvalidError) as caught:
        db.put_many("c", [("a", {"n": 1}), ("b", {"n": 2}), ("c", "[not an object]"), ("d", {})])
    assert caught.value.message.startswith("record 2")
    assert "must be a JSON object" in caught.value.message
    assert db.count("c") == 1
    assert db.get("c", "b") == {"old": True}
    with pytest.raises(pier.InvalidError, match=r"^record 1: record id must be 1-256 bytes"):
        db.put_many("c", [("x", {}), ("", {})])
    assert db.count("c") == 1


def test_put_many_inside_a_transaction_is_all_or_nothing(db: pier.Database) -> None:
    with db.transaction():
        db.put("c", "b", {"old": True})
        db.put_many("c", [("a", {"n": 1}), ("x", '{"n": 2}')])
        db.put_many("c", {"d": b'{"n": 4}'})
        with pytest.raises(pier.InvalidError) as caught:
            db.put_many("c", [("e", {}), ("b", {"new": True}), ("f", "[1]")])
        assert caught.value.message == "record 2: body must be a JSON object, got an array"
        assert db.count("c") == 4  # the failed batch left no trace; the transaction goes on
        assert db.get("c", "b") == {"old": True}
    assert sorted(record_id for record_id, _ in db.list("c")) == ["a", "b", "d", "x"]


def test_put_many_of_nothing_is_a_no_op(db: pier.Database) -> None:
    db.put_many("c", [])
    db.put_many("c", {})
    assert db.count("c") == 0


def test_put_many_bad_collection_is_invalid(db: pier.Database) -> None:
    with pytest.raises(pier.InvalidError, match="collection name must be 1-128 bytes"):
        db.put_many("", [("a", {})])


# -- patch (RFC 7396) ------------------------------------------------------------------

# RFC 7396 Appendix A, the cases whose target and patch are objects (a Pier record is).
RFC7396: List[Any] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ({"a": 1}, {"a": {"b": None}}, {"a": {}}),
    ({"a": {"b": 1, "c": 2}}, {}, {"a": {"b": 1, "c": 2}}),
]


@pytest.mark.parametrize("original, patch, result", RFC7396)
def test_patch_follows_rfc7396(db: pier.Database, original: Any, patch: Any, result: Any) -> None:
    db.put("c", "a", original)
    db.patch("c", "a", patch)
    assert db.get("c", "a") == result


def test_patch_accepts_json_text(db: pier.Database) -> None:
    db.put("c", "a", {"keep": 1, "drop": 2})
    db.patch("c", "a", '{"drop": null, "new": "x"}')
    db.patch("c", "a", b'{"n": 3}')
    assert db.get("c", "a") == {"keep": 1, "new": "x", "n": 3}


def test_patch_of_a_missing_record_is_not_found(db: pier.Database) -> None:
    with pytest.raises(pier.NotFoundError, match='^no record "a" in collection "c"$'):
        db.patch("c", "a", {"x": 1})
    db.put("c", "a", {})
    db.delete("c", "a")
    with pytest.raises(pier.NotFoundError):
        db.patch("c", "a", {"x": 1})


@pytest.mark.parametrize(
    "patch, message",
    [
        ("[1]", "patch must be a JSON object, got an array"),
        ("null", "patch must be a JSON object, got null"),
        ('{"a":', "patch is not valid JSON (missing value at byte 5); send one JSON object"),
    ],
)
def test_patch_that_is_not_an_object_is_invalid(db: pier.Database, patch: str, message: str) -> None:
    db.put("c", "a", {"a": 1})
    with pytest.raises(pier.InvalidError) as caught:
        db.patch("c", "a", patch)
    assert caught.value.message == message
    assert db.get("c", "a") == {"a": 1}


def test_patch_over_the_body_limit_is_a_limit_error_and_writes_nothing(tmp_path: Path) -> None:
    with pier.Database(tmp_path / "small.pier", max_body_bytes=30) as db:
        db.put("c", "a", {"a": "x" * 20})
        before = db.metadata("c", "a")
        with pytest.raises(pier.LimitError) as caught:
            db.patch("c", "a", {"b": "y" * 10})
        assert caught.value.message == "patched body would be 45 bytes, over the store's limit of 30"
        assert db.metadata("c", "a") == before


# -- delete ------------------------------------------------------------------------------


def test_delete_of_a_never_synced_record_removes_it(db: pier.Database) -> None:
    db.put("c", "a", {"x": 1})
    db.put("c", "b", {"x": 2})
    db.delete("c", "a")
    with pytest.raises(pier.NotFoundError):
        db.get("c", "a")
    with pytest.raises(pier.NotFoundError):
        db.metadata("c", "a")  # removed outright: no tombstone
    with pytest.raises(pier.NotFoundError):
        db.state("c", "a")
    assert db.count("c") == 1
    info = db.info()
    assert info["collections"] == [{"name": "c", "records": 1, "pending": 1, "conflicts": 0, "tombstones": 0}]


def test_delete_missing_is_not_found(db: pier.Database) -> None:
    with pytest.raises(pier.NotFoundError, match='^no record "a" in collection "c"$'):
        db.delete("c", "a")
    db.put("c", "a", {})
    db.delete("c", "a")
    with pytest.raises(pier.NotFoundError):
        db.delete("c", "a")


def test_delete_of_a_record_the_server_knows_leaves_a_pending_tombstone(db_path: Path) -> None:
    with pier.Database(db_path) as db:
        db.put("c", "a", {"x": 1})
    # Make it look acknowledged by the server (what the sync engine will do).
    edit_store(db_path, "UPDATE pier_records SET is_from_server = 1, is_modified = 0, sync_state = 0, "
                        "server_version = 7, base_version = 7, server_body = body")
    with pier.Database(db_path) as db:
        assert db.state("c", "a") == "synced"
        db.delete("c", "a")
        with pytest.raises(pier.NotFoundError):
            db.get("c", "a")
        assert db.count("c") == 0
        assert db.list("c") == []
        meta = db.metadata("c", "a")
        assert meta["is_active"] is False and meta["is_modified"] is True
        assert meta["sync_state"] == "pending" and db.state("c", "a") == "pending"
        assert db.info()["collections"][0]["tombstones"] == 1
        with pytest.raises(pier.NotFoundError):
            db.delete("c", "a")
        db.put("c", "a", {"x": 2})  # recreating revives it
        assert db.get("c", "a") == {"x": 2}


# -- list / iter / count ---------------------------------------------------------------


@pytest.fixture
def filled(db: pier.Database) -> pier.Database:
    for n in range(25):
        db.put("c", f"id{n:02d}", {"n": n})
    db.put("other", "x", {})
    return db


def test_list_pages_in_id_order(filled: pier.Database) -> None:
    first = filled.list("c", limit=10)
    assert [record_id for record_id, _ in first] == [f"id{n:02d}" for n in range(10)]
    assert first[3] == ("id03", {"n": 3})
    second = filled.list("c", after=first[-1][0], limit=10)
    assert [record_id for record_id, _ in second] == [f"id{n:02d}" for n in range(10, 20)]
    third = filled.list("c", after=second[-1][0], limit=10)
    assert len(third) == 5
    assert filled.list("c", after=third[-1][0]) == []
    assert filled.list("c", after="") == filled.list("c")
    assert len(filled.list("c")) == 25  # the default limit is 100
    assert filled.list("c", limit=0) == []
    assert filled.list("nothing") == []


def test_list_skips_deleted_records(filled: pier.Database) -> None:
    filled.delete("c", "id05")
    assert "id05" not in [record_id for record_id, _ in filled.list("c")]
    assert filled.count("c") == 24


def test_list_negative_limit_is_invalid(filled: pier.Database) -> None:
    with pytest.raises(pier.InvalidError, match="limit must be 0 or more"):
        filled.list("c", limit=-1)


def test_list_limit_past_size_max_is_invalid_not_wrapped(filled: pier.Database) -> None:
    # ctypes would pass 2**64 as a size_t of 0 (an empty page) without a word.
    for limit in (2**64, 2**64 + 25, 2**100):
        with pytest.raises(pier.InvalidError, match=r"limit must be at most SIZE_MAX \(18446744073709551615\)"):
            filled.list("c", limit=limit)
    assert len(filled.list("c", limit=2**64 - 1)) == 25  # SIZE_MAX: no limit
    with pytest.raises(pier.InvalidError, match="page_size must be at most SIZE_MAX"):
        filled.iter("c", page_size=2**64)


@pytest.mark.parametrize("page_size", [1, 5, 7, 25, 100])
def test_iter_visits_every_record_once(filled: pier.Database, page_size: int) -> None:
    records = list(filled.iter("c", page_size=page_size))
    assert [record_id for record_id, _ in records] == [f"id{n:02d}" for n in range(25)]
    assert records[24] == ("id24", {"n": 24})


def test_iter_bad_page_size(filled: pier.Database) -> None:
    with pytest.raises(pier.InvalidError, match="page_size must be 1 or more, got 0"):
        filled.iter("c", page_size=0)  # checked at the call, not at the first next()


def test_bad_collection_in_list_and_count_is_invalid(db: pier.Database) -> None:
    with pytest.raises(pier.InvalidError, match="collection name must be 1-128 bytes of UTF-8, got 0"):
        db.list("")
    with pytest.raises(pier.InvalidError, match="collection name must be 1-128 bytes of UTF-8, got 0"):
        db.count("")


# -- sync metadata --------------------------------------------------------------------


def test_new_records_are_pending_with_full_metadata(db: pier.Database) -> None:
    db.put("c", "a", {"x": 1})
    assert db.state("c", "a") == "pending"
    meta = db.metadata("c", "a")
    assert set(meta) == {"collection", "id", "body", "scope", "is_from_server", "is_modified", "is_active",
                         "base_version", "hlc", "local_seq", "changed_fields", "server_body", "server_version", "sync_state"}
    assert meta["collection"] == "c" and meta["id"] == "a" and meta["body"] == {"x": 1}
    assert meta["scope"] == "default"
    assert meta["is_from_server"] is False and meta["is_modified"] is True and meta["is_active"] is True
    assert meta["base_version"] == 0 and meta["server_version"] == 0
    assert meta["changed_fields"] is None and meta["server_body"] is None
    assert meta["sync_state"] == "pending"
    assert meta["local_seq"] >= 1 and meta["hlc"] > 0


def test_every_write_advances_local_seq_and_hlc(db: pier.Database) -> None:
    db.put("c", "a", {"x": 1})
    first = db.metadata("c", "a")
    db.patch("c", "a", {"y": 2})
    second = db.metadata("c", "a")
    db.put("c", "a", {"z": 3})
    third = db.metadata("c", "a")
    assert first["local_seq"] < second["local_seq"] < third["local_seq"]
    assert first["hlc"] < second["hlc"] < third["hlc"]


def test_changed_fields_track_edits_of_a_synced_record(db_path: Path) -> None:
    with pier.Database(db_path) as db:
        db.put("c", "a", {"x": 1, "y": 2})
    edit_store(db_path, "UPDATE pier_records SET is_from_server = 1, is_modified = 0, sync_state = 0, server_body = body")
    with pier.Database(db_path) as db:
        db.patch("c", "a", {"y": 3, "z": 4})
        meta = db.metadata("c", "a")
        assert meta["changed_fields"] == ["y", "z"]
        assert meta["server_body"] == {"x": 1, "y": 2}
        assert meta["sync_state"] == "pending"


def test_scopes(tmp_path: Path) -> None:
    with pier.Database(tmp_path / "s.pier", default_scope="team-1") as db:
        db.put("c", "a", {})
        assert db.metadata("c", "a")["scope"] == "team-1"
        db.put("c", "b", {}, scope="team-2")
        assert db.metadata("c", "b")["scope"] == "team-2"
        db.put("c", "b", {"edited": True})  # an existing record keeps its scope
        assert db.metadata("c", "b")["scope"] == "team-2"
        db.put("c", "b", {}, scope="team-3")  # an explicit scope moves it
        assert db.metadata("c", "b")["scope"] == "team-3"
        assert db.query("SELECT id, scope FROM records ORDER BY id") == [
            {"id": "a", "scope": "team-1"}, {"id": "b", "scope": "team-3"}]


def test_client_id_is_a_fixed_uuid(db_path: Path) -> None:
    with pier.Database(db_path) as db:
        client_id = db.client_id
        assert UUID7.match(client_id), client_id
        assert db.info()["client_id"] == client_id
    with pier.Database(db_path) as db:
        assert db.client_id == client_id


def test_info_summarises_the_store(db: pier.Database, db_path: Path) -> None:
    db.put("b", "1", {})
    db.put("b", "2", {})
    db.put("a", "1", {})
    info = db.info()
    assert info["path"] == str(db_path)
    assert info["schema_version"] == STORE_SCHEMA_VERSION
    assert info["pull_cursor"] == 0
    assert info["pending"] == 3 and info["conflicts"] == 0
    assert info["collections"] == [
        {"name": "a", "records": 1, "pending": 1, "conflicts": 0, "tombstones": 0},
        {"name": "b", "records": 2, "pending": 2, "conflicts": 0, "tombstones": 0},
    ]


def test_create_index(db: pier.Database) -> None:
    db.put("c", "a", {"address": {"city": "Paris"}})
    db.create_index("c", "address.city")
    db.create_index("c", "address.city")  # idempotent
    db.create_index("it's", "_x1")  # quotes in collection names are fine
    sql = "SELECT id FROM records WHERE collection = 'c' AND json_extract(body, '$.address.city') = ?1"
    assert db.query(sql, ["Paris"]) == [{"id": "a"}]
    plan = " ".join(row["detail"] for row in db.query("EXPLAIN QUERY PLAN " + sql, ["Paris"]))
    assert "USING INDEX pier_idx_" in plan


@pytest.mark.parametrize("field", ["", "a-b", "1a", "a..b", "a.", "$.a", "a b", "a'b"])
def test_create_index_bad_field_is_invalid(db: pier.Database, field: str) -> None:
    with pytest.raises(pier.InvalidError, match="field must be a dotted path of identifiers"):
        db.create_index("c", field)


# -- ids and version -------------------------------------------------------------------


def test_new_id_is_a_time_ordered_uuid7() -> None:
    ids = [pier.new_id() for _ in range(2000)]
    assert all(UUID7.match(value) for value in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_version() -> None:
    assert re.match(r"^\d+\.\d+\.\d+$", pier.version())
    major, minor, patch = (int(part) for part in pier.version().split("."))
    assert pier.version_number() == major * 10000 + minor * 100 + patch
    assert major == _capi.PIER_VERSION_MAJOR


def test_query_rows_are_json_decoded(db: pier.Database) -> None:
    db.put("c", "a", {"x": [1, {"y": None}]})
    rows = db.query("SELECT body, json_extract(body, '$.x') AS x FROM records")
    assert rows == [{"body": {"x": [1, {"y": None}]}, "x": json.dumps([1, {"y": None}], separators=(",", ":"))}]
