"""The main sync scenarios of issue 4 through the public Python API, each named after what
it proves. The same scenarios in Swift: Tests/PierSyncTests/ScenarioTests.swift."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import pier

from sync_support import Flaky, LinkDown, World, later, policy, snapshot, two_technicians


MakeWorld = Callable[..., World]


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[MakeWorld]:
    worlds: List[World] = []

    def make(config: Optional[Dict[str, Any]] = None) -> World:
        folder = tmp_path / f"world-{len(worlds)}"
        folder.mkdir()
        world = World(folder, config)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()


# -- policies ----------------------------------------------------------------------------


def test_last_write_wins_the_later_edit_wins_everywhere_and_the_loser_is_logged_superseded(make_world: MakeWorld) -> None:
    world = make_world(policy("customers", "last_write_wins"))
    a, b = two_technicians(world)
    a.patch("customers", "c1", {"phone": "A"})
    later()
    b.patch("customers", "c1", {"phone": "B"})  # the later edit
    world.sync(b)
    report = world.sync(a)  # arrives last, with the older edit
    assert report.pushed == 1 and report.superseded == 1 and report.applied == 0
    world.sync(b)
    assert a.get("customers", "c1")["phone"] == "B"
    assert b.get("customers", "c1")["phone"] == "B"
    assert world.server_body("customers", "c1") == {"name": "Ada", "phone": "B", "city": "Oslo"}
    superseded = world.server.log(outcome="superseded")
    assert len(superseded) == 1
    assert superseded[0]["client_id"] == a.client_id and superseded[0]["record_id"] == "c1"
    assert "last_write_wins" in superseded[0]["detail"]
    assert a.state("customers", "c1") == "synced"


def test_the_default_policy_is_last_write_wins(make_world: MakeWorld) -> None:
    world = make_world()
    a, b = two_technicians(world)
    a.patch("customers", "c1", {"phone": "A"})
    later()
    b.patch("customers", "c1", {"phone": "B"})
    world.sync(b)
    assert world.sync(a).superseded == 1
    assert a.get("customers", "c1")["phone"] == "B"


def test_first_write_wins_a_stale_write_is_ignored_and_logged_rejected(make_world: MakeWorld) -> None:
    world = make_world(policy("customers", "first_write_wins"))
    a, b = two_technicians(world)
    a.patch("customers", "c1", {"phone": "A"})
    b.patch("customers", "c1", {"phone": "B"})
    world.sync(a)
    report = world.sync(b)
    assert report.rejected == 1 and report.applied == 0
    assert b.get("customers", "c1")["phone"] == "A"  # the server copy stands, also on b
    assert b.state("customers", "c1") == "rejected"
    assert world.server_field("customers", "c1", "phone") == "A"
    rejected = world.server.log(record_id="c1", outcome="rejected")
    assert len(rejected) == 1
    assert "first_write_wins" in rejected[0]["detail"]
    assert rejected[0]["client_id"] == b.client_id


def test_merge_fields_edits_to_different_fields_are_both_kept_on_every_replica(make_world: MakeWorld) -> None:
    world = make_world(policy("customers", "merge_fields"))
    a, b = two_technicians(world)
    a.patch("customers", "c1", {"phone": "A-phone"})
    b.patch("customers", "c1", {"city": "Bergen"})
    world.sync(a)
    report = world.sync(b)
    assert report.merged == 1
    world.sync(a)
    expected = {"name": "Ada", "phone": "A-phone", "city": "Bergen"}
    assert a.get("customers", "c1") == expected
    assert b.get("customers", "c1") == expected
    assert world.server_snapshot() == snapshot(a) == snapshot(b)
    assert [entry["outcome"] for entry in world.server.log(record_id="c1")] == ["applied", "applied", "merged"]


@pytest.mark.parametrize("resolution", ["keep_local", "keep_server", "merged"])
def test_manual_a_conflict_blocks_the_next_sync_until_resolved_then_converges(make_world: MakeWorld, resolution: str) -> None:
    world = make_world(policy("customers", "manual"))
    a, b = two_technicians(world)
    a.patch("customers", "c1", {"phone": "A"})
    b.patch("customers", "c1", {"phone": "B"})
    world.sync(a)
    report = world.sync(b)
    assert report.conflicts == 1
    assert b.state("customers", "c1") == "conflicted"
    [conflict] = b.conflicts()
    assert (conflict.collection, conflict.id) == ("customers", "c1")
    assert conflict.local_body == {"name": "Ada", "phone": "B", "city": "Oslo"}
    assert conflict.server_body == {"name": "Ada", "phone": "A", "city": "Oslo"}
    assert conflict.base_body == {"name": "Ada", "phone": "100", "city": "Oslo"}
    assert (conflict.base_version, conflict.server_version) == (1, 2)
    assert not conflict.local_deleted and not conflict.server_deleted
    [registered] = world.server.conflicts(open_only=True)
    assert registered["record_id"] == "c1" and registered["client_id"] == b.client_id and registered["status"] == "open"

    # The next sync is blocked with ConflictError, and nothing is sent.
    b.put("customers", "c2", {"name": "Other"})
    with pytest.raises(pier.ConflictError) as blocked:
        world.sync(b)
    assert "customers/c1" in blocked.value.message
    assert blocked.value.sync_report.round_trips == 0  # type: ignore[attr-defined]
    assert world.server_body("customers", "c2") is None

    if resolution == "keep_local":
        b.resolve(conflict.conflict_id, pier.KEEP_LOCAL)
        expected = "B"
    elif resolution == "keep_server":
        b.resolve(conflict.conflict_id, pier.KEEP_SERVER)
        expected = "A"
    else:
        b.resolve(conflict.conflict_id, {"name": "Ada", "phone": "A+B", "city": "Oslo"})
        expected = "A+B"
    assert b.conflicts() == []
    world.sync(b)
    world.sync(a)
    assert a.get("customers", "c1")["phone"] == expected
    assert b.get("customers", "c1")["phone"] == expected
    assert world.server_field("customers", "c1", "phone") == expected
    assert world.server_body("customers", "c2") == {"name": "Other"}
    assert world.server.conflicts(open_only=True) == [], "the server closes the conflict when the resolution arrives"
    assert world.server.conflicts()[0]["status"] != "open"
    assert b.state("customers", "c1") == "synced"
    assert snapshot(a) == snapshot(b) == world.server_snapshot()


def test_block_only_conflicted_pushes_everything_except_the_conflicted_record(make_world: MakeWorld) -> None:
    world = make_world(policy("customers", "manual"))
    a, b = two_technicians(world)
    a.patch("customers", "c1", {"phone": "A"})
    b.patch("customers", "c1", {"phone": "B"})
    world.sync(a)
    world.sync(b)
    b.put("customers", "c2", {"name": "Other"})
    report = world.sync(b, block_only_conflicted=True)
    assert report.pushed == 1
    assert world.server_body("customers", "c2") == {"name": "Other"}
    assert len(b.conflicts()) == 1
    assert world.server_field("customers", "c1", "phone") == "A"


def test_custom_resolver_in_python_cancelled_beats_completed_whatever_the_order(make_world: MakeWorld) -> None:
    world = make_world({"collections": {"orders": {"policy": "custom"}}})
    seen: List[pier.ResolverInput] = []

    def cancelled_beats_completed(change: pier.ResolverInput) -> Any:
        seen.append(change)
        if (change.server_body or {}).get("status") == "cancelled":
            return pier.KEEP_SERVER
        if (change.client_body or {}).get("status") == "cancelled":
            return change.client_body
        return pier.MANUAL

    world.server.set_resolver("orders", cancelled_beats_completed)
    device, office = world.client("device"), world.client("office")
    device.put("orders", "o1", {"status": "open", "total": 10})
    world.sync(device)
    world.sync(office)
    # The office cancels first; the device completes later (by clock) and syncs last.
    office.patch("orders", "o1", {"status": "cancelled"})
    later()
    device.patch("orders", "o1", {"status": "completed"})
    world.sync(office)
    report = world.sync(device)
    assert report.superseded == 1
    assert device.get("orders", "o1") == {"status": "cancelled", "total": 10}
    change = seen[-1]
    assert (change.collection, change.id, change.client_id, change.user) == ("orders", "o1", device.client_id, "local")
    assert change.client_body == {"status": "completed", "total": 10}
    assert change.server_body == {"status": "cancelled", "total": 10}
    assert (change.base_version, change.server_version) == (1, 2)
    assert change.client_hlc > 0 and change.server_hlc > 0
    assert change["client_body"] == change.client_body and set(change) >= {"collection", "id", "server_hlc"}

    # And the other way round: completed first, cancelled second.
    device.put("orders", "o2", {"status": "open"})
    world.sync(device)
    world.sync(office)
    device.patch("orders", "o2", {"status": "completed"})
    office.patch("orders", "o2", {"status": "cancelled"})
    world.sync(device)
    world.sync(office)
    world.sync(device)
    assert device.get("orders", "o2") == {"status": "cancelled"}
    assert office.get("orders", "o2") == {"status": "cancelled"}
    assert world.server_body("orders", "o2") == {"status": "cancelled"}
    assert any("custom resolver" in entry["detail"] for entry in world.server.log(collection="orders"))


# -- the network -------------------------------------------------------------------------


def test_a_lost_reply_followed_by_a_retry_applies_once(make_world: MakeWorld) -> None:
    world = make_world()
    a = world.client("a")
    a.put("counters", "k", {"n": 1})
    transport = Flaky(world.server, {1: "drop_reply"}, None)
    with pytest.raises(LinkDown) as lost:
        a.sync(transport=transport)
    assert isinstance(lost.value.__cause__, pier.NetworkError)
    assert len(world.server.log(record_id="k")) == 1, "the server applied it before the reply was lost"
    assert a.state("counters", "k") == "pending"

    report = a.sync(transport=transport)
    assert report.replayed_batch
    assert report.applied == 1
    assert transport.requests[1] == transport.requests[0], "the same batch bytes were sent again"
    assert len(world.server.log(record_id="k")) == 1, "the replay applied nothing twice"
    assert world.server.log(record_id="k")[0]["new_version"] == 1
    assert a.state("counters", "k") == "synced"
    assert not a.sync(transport=transport).replayed_batch


def test_an_interrupted_pull_resumes_from_the_last_page_applied(make_world: MakeWorld) -> None:
    world = make_world()
    a, b = world.client("a"), world.client("b")
    a.put_many("items", [(f"i{n:03d}", {"v": n}) for n in range(250)])
    world.sync(a)
    transport = Flaky(world.server, {2: "drop_request"}, None)
    with pytest.raises(LinkDown):
        b.sync(transport=transport, pull_max_records=100)
    assert b.count("items") == 100, "the first page was applied with its cursor"
    report = b.sync(transport=transport, pull_max_records=100)
    assert report.pulled == 150
    assert report.round_trips == 2
    assert b.count("items") == 250
    assert snapshot(b) == snapshot(a)


def test_a_host_transport_carries_a_whole_sync(make_world: MakeWorld) -> None:
    world = make_world()
    a, b = world.client("a"), world.client("b")
    frames: List[int] = []

    def post(request: bytes) -> bytes:
        frames.append(len(request))
        return world.server.handle(request)

    a.put("notes", "n", {"text": "over the wire"})
    report = a.sync(transport=post)
    assert report.pushed == 1 and report.applied == 1 and report.round_trips == len(frames) == 1
    assert report.bytes_sent == frames[0]
    b.sync(transport=lambda request: bytearray(world.server.handle(request)))  # any bytes-like reply
    assert b.get("notes", "n") == {"text": "over the wire"}


# -- scopes ------------------------------------------------------------------------------


def test_a_user_cannot_read_or_write_another_scope(make_world: MakeWorld) -> None:
    world = make_world()
    alice, bob = world.client("alice"), world.client("bob")
    alice_id = pier.Identity("alice", read_scopes=["team-a"], write_scopes=["team-a"])
    bob_id = pier.Identity("bob", read_scopes=["team-b"], write_scopes=["team-b"])
    alice.put("jobs", "secret", {"x": 1}, scope="team-a")
    world.sync(alice, identity=alice_id)
    world.sync(bob, identity=bob_id)
    assert bob.count("jobs") == 0, "bob cannot read team-a"
    # Bob tries to write into team-a, and to take over Alice's record.
    bob.put("jobs", "intrusion", {"x": 2}, scope="team-a")
    bob.put("jobs", "secret", {"x": 3}, scope="team-b")
    report = world.sync(bob, identity=bob_id)
    assert report.rejected == 2
    assert bob.state("jobs", "intrusion") == "rejected"
    assert world.server_body("jobs", "intrusion") is None
    assert world.server_body("jobs", "secret") == {"x": 1}
    rejected = world.server.log(outcome="rejected")
    assert len(rejected) == 2 and all(entry["detail"].startswith("forbidden") for entry in rejected)
    assert {entry["user"] for entry in rejected} == {"bob"}
    # And a client id stays bound to its first user.
    with pytest.raises(pier.ForbiddenError):
        world.sync(alice, identity=bob_id)
    # The same scopes through Server.handle on a host transport.
    carol = world.client("carol")
    carol.sync(transport=lambda request: world.server.handle(request, pier.Identity("carol", read_scopes=["team-b"])))
    assert carol.count("jobs") == 0
    dave = world.client("dave")
    dave.sync(transport=lambda request: world.server.handle(request, pier.Identity("dave", read_scopes=["team-a"])))
    assert dave.get("jobs", "secret") == {"x": 1}


def test_an_empty_scope_list_reads_nothing_while_none_reads_everything(make_world: MakeWorld) -> None:
    world = make_world()
    writer = world.client("writer")
    writer.put("jobs", "j", {"x": 1}, scope="team-a")
    world.sync(writer)
    nobody, everybody = world.client("nobody"), world.client("everybody")
    world.sync(nobody, identity=pier.Identity("nobody", read_scopes=[]))
    world.sync(everybody, identity=pier.Identity("everybody"))
    assert nobody.count("jobs") == 0
    assert everybody.count("jobs") == 1


# -- collection modes --------------------------------------------------------------------


def test_pull_only_reference_data_and_push_only_telemetry_purged_after_push(make_world: MakeWorld) -> None:
    world = make_world(policy("prices", "first_write_wins", readable_by_all=True))
    office, terminal = world.client("office"), world.client("terminal")
    office.put("prices", "p1", {"sku": "valve", "price": 12.5})
    office.put("counts", "seed", {"n": 0})
    world.sync(office)
    terminal.set_collection_mode("prices", pier.CollectionMode.PULL_ONLY)
    terminal.set_collection_mode("counts", "push_only", purge_after_push=True)
    line = pier.Identity("terminal", read_scopes=["line-1"], write_scopes=["line-1"])
    world.sync(terminal, identity=line)
    assert terminal.get("prices", "p1") == {"sku": "valve", "price": 12.5}, "reference data readable by all arrives"
    with pytest.raises(pier.ReadOnlyError):
        terminal.put("prices", "p2", {})
    with pytest.raises(pier.NotFoundError):
        terminal.get("counts", "seed")  # push-only collections are never pulled
    for n in range(10):
        terminal.put("counts", f"t{n}", {"machine": "m1", "count": n}, scope="line-1")
    report = world.sync(terminal, identity=line)
    assert report.pushed == 10 and report.applied == 10
    assert terminal.count("counts") == 0, "acknowledged telemetry is purged locally"
    server = world.server_snapshot()
    assert [server[f"counts/t{n}"]["count"] for n in range(10)] == list(range(10))


def test_local_only_records_never_leave_the_device(make_world: MakeWorld) -> None:
    world = make_world()
    a = world.client("a")
    a.set_collection_mode("drafts", pier.CollectionMode.LOCAL_ONLY)
    a.put("drafts", "d", {"text": "private"})
    a.put("notes", "n", {"text": "shared"})
    report = world.sync(a)
    assert report.pushed == 1
    assert a.get("drafts", "d") == {"text": "private"}
    assert world.server_body("drafts", "d") is None
    assert world.server_body("notes", "n") == {"text": "shared"}


def test_collection_mode_arguments(db: pier.Database) -> None:
    with pytest.raises(pier.InvalidError, match="mode must be one of"):
        db.set_collection_mode("c", "sideways")
    with pytest.raises(TypeError):
        db.set_collection_mode("c", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        db.set_collection_mode("c", "push_only", purge_after_push=1)  # type: ignore[arg-type]
    with pytest.raises(pier.InvalidError, match="push-only"):
        db.set_collection_mode("c", "two_way", purge_after_push=True)
    with pytest.raises(pier.InvalidError):
        db.set_collection_mode("", "two_way")
    db.set_collection_mode("c", "pull_only")
    db.set_collection_mode("c", pier.CollectionMode.TWO_WAY)
    db.put("c", "a", {})  # writable again


# -- progress and the client resolver ----------------------------------------------------


def test_the_progress_callback_is_called_after_each_round_trip(make_world: MakeWorld) -> None:
    world = make_world()
    a, b = world.client("a"), world.client("b")
    a.put_many("items", [(f"i{n:02d}", {"v": n}) for n in range(30)])
    steps: List[pier.SyncProgress] = []
    report = world.sync(a, max_batch_changes=10, progress=steps.append)
    assert report.round_trips == len(steps) >= 3
    assert [step.round_trips for step in steps] == list(range(1, len(steps) + 1))
    assert [step.pushed for step in steps][:3] == [10, 20, 30]
    assert [step.pending for step in steps][:3] == [20, 10, 0]
    assert steps[-1].pending == 0 and not steps[-1].pulling

    pulls: List[pier.SyncProgress] = []
    report = world.sync(b, pull_max_records=12, progress=pulls.append)
    assert [step.pulled for step in pulls] == [12, 24, 30]
    assert [step.pulling for step in pulls] == [True, True, False]
    assert report.pulled == 30


def test_a_client_resolver_settles_conflicts_automatically(make_world: MakeWorld) -> None:
    world = make_world(policy("customers", "manual"))
    a, b = two_technicians(world)
    a.patch("customers", "c1", {"phone": "A"})
    b.patch("customers", "c1", {"phone": "B", "note": "b"})
    world.sync(a)
    seen: List[pier.Conflict] = []

    def merge(conflict: pier.Conflict) -> Any:
        seen.append(conflict)
        assert conflict.local_body is not None and conflict.server_body is not None
        return {**conflict.server_body, "note": conflict.local_body["note"], "phone": "A+B"}

    report = world.sync(b, resolver=merge)
    assert report.conflicts == 1
    [conflict] = seen
    assert conflict.local_body == {"name": "Ada", "phone": "B", "city": "Oslo", "note": "b"}
    assert conflict.server_body == {"name": "Ada", "phone": "A", "city": "Oslo"}
    assert conflict.base_body == {"name": "Ada", "phone": "100", "city": "Oslo"}
    assert b.conflicts() == [], "settled during the sync: nothing blocks the next one"
    world.sync(b)
    world.sync(a)
    merged = {"name": "Ada", "phone": "A+B", "city": "Oslo", "note": "b"}
    assert a.get("customers", "c1") == b.get("customers", "c1") == world.server_body("customers", "c1") == merged
    assert world.server.conflicts(open_only=True) == []


@pytest.mark.parametrize("choice, phone", [(pier.KEEP_LOCAL, "B"), (pier.KEEP_SERVER, "A"), ('{"name":"Ada","phone":"text"}', "text")])
def test_a_client_resolver_may_keep_either_side_or_return_json_text(make_world: MakeWorld, choice: Any, phone: str) -> None:
    world = make_world(policy("customers", "manual"))
    a, b = two_technicians(world)
    a.patch("customers", "c1", {"phone": "A"})
    b.patch("customers", "c1", {"phone": "B"})
    world.sync(a)
    world.sync(b, resolver=lambda conflict: choice)
    assert b.conflicts() == []
    world.sync(b)
    world.sync(a)
    assert a.get("customers", "c1")["phone"] == b.get("customers", "c1")["phone"] == phone


def test_a_client_resolver_returning_none_leaves_the_conflict(make_world: MakeWorld) -> None:
    world = make_world(policy("customers", "manual"))
    a, b = two_technicians(world)
    a.patch("customers", "c1", {"phone": "A"})
    b.patch("customers", "c1", {"phone": "B"})
    world.sync(a)
    calls: List[str] = []
    world.sync(b, resolver=lambda conflict: calls.append(conflict.id))
    assert calls == ["c1"]
    assert len(b.conflicts()) == 1
    with pytest.raises(pier.ConflictError):
        world.sync(b)


def test_a_client_resolver_resolution_is_pushed_by_the_same_sync(make_world: MakeWorld) -> None:
    world = make_world(policy("customers", "manual"))
    a, b = two_technicians(world)
    a.patch("customers", "c1", {"phone": "A"})
    b.patch("customers", "c1", {"phone": "B"})
    world.sync(a)
    world.sync(b, resolver=lambda conflict: pier.KEEP_LOCAL)
    assert b.state("customers", "c1") == "synced"
    assert world.server_field("customers", "c1", "phone") == "B"


# -- update versus delete, parents and children ------------------------------------------


def test_update_versus_delete_under_manual_keeps_the_local_update(make_world: MakeWorld) -> None:
    world = make_world(policy("customers", "last_write_wins", update_delete="manual"))
    a, b = two_technicians(world)
    a.delete("customers", "c1")
    b.patch("customers", "c1", {"phone": "B"})
    world.sync(a)
    assert world.sync(b).conflicts == 1
    [conflict] = b.conflicts()
    assert conflict.server_deleted and conflict.server_body is None
    assert not conflict.local_deleted and conflict.local_body is not None
    b.resolve(conflict, pier.KEEP_LOCAL)  # a Conflict is accepted as well as its id
    world.sync(b)
    world.sync(a)
    assert a.get("customers", "c1")["phone"] == "B"


def test_a_parent_and_its_children_created_offline_sync_in_one_batch(make_world: MakeWorld) -> None:
    world = make_world()
    a, b = world.client("a"), world.client("b")
    job = pier.new_id()
    parts = [pier.new_id() for _ in range(5)]
    with a.transaction():
        a.put("jobs", job, {"title": "Boiler"})
        for part in parts:
            a.put("parts", part, {"job": job, "qty": 1})
    report = world.sync(a)
    assert report.pushed == 6 and report.round_trips == 1
    world.sync(b)
    children = b.query("SELECT id FROM records WHERE collection = 'parts' AND json_extract(body, '$.job') = ?1", [job])
    assert {row["id"] for row in children} == set(parts)
    assert b.get("jobs", job) == {"title": "Boiler"}


def test_tombstone_purge_then_resync_loses_no_pending_local_change(make_world: MakeWorld) -> None:
    world = make_world({"tombstone_horizon_ms": 0, "active_client_window_ms": 0})
    a, b = world.client("a"), world.client("b")
    a.put_many("items", [(f"i{n}", {"v": n}) for n in range(6)])
    world.sync(a)
    world.sync(b)
    b.patch("items", "i1", {"v": "b-edit"})
    b.put("items", "new-on-b", {"v": "new"})
    a.delete("items", "i0")
    a.delete("items", "i1")
    world.sync(a)
    later()
    world.sync(a)
    assert world.server.purge_tombstones(0) == 2
    report = world.sync(b)
    assert report.resynced
    with pytest.raises(pier.NotFoundError):
        b.get("items", "i0")
    assert b.get("items", "i1") == {"v": "b-edit"}, "the pending edit survived"
    world.sync(a)
    assert snapshot(a) == snapshot(b) == world.server_snapshot()
    assert snapshot(b)["items/new-on-b"] == {"v": "new"}
