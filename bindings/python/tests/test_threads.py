"""One Database shared by threads: the library serialises calls on a handle."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import List

import pytest

import pier


def test_four_threads_share_one_database(db: pier.Database) -> None:
    failures: List[BaseException] = []
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(150):
                record_id = f"t{n}-{i:03d}"
                db.put("c", record_id, {"thread": n, "i": i})
                assert db.get("c", record_id) == {"thread": n, "i": i}
                if i % 10 == 0:
                    db.patch("c", record_id, {"patched": True})
                    try:
                        db.get("c", f"missing-{n}")
                    except pier.NotFoundError as error:  # messages are per thread
                        assert error.message == f'no record "missing-{n}" in collection "c"'
                    db.query("SELECT count(*) AS n FROM records WHERE json_extract(body, '$.thread') = ?1", [n])
            db.delete("c", f"t{n}-000")
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert db.count("c") == 4 * 149
    rows = db.query("SELECT json_extract(body, '$.thread') AS t, count(*) AS n FROM records GROUP BY t ORDER BY t")
    assert rows == [{"t": n, "n": 149} for n in range(4)]
    assert db.query("SELECT count(*) AS n FROM records WHERE json_extract(body, '$.patched')") == [{"n": 4 * 14}]
    local_seqs = [row["local_seq"] for row in db.query("SELECT local_seq FROM records")]
    assert len(set(local_seqs)) == len(local_seqs)


def test_a_transaction_from_one_thread_while_others_read(db: pier.Database) -> None:
    db.put("c", "a", {"n": 0})
    stop = threading.Event()
    seen: List[int] = []

    def reader() -> None:
        while not stop.is_set():
            seen.append(db.count("c"))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(20):
            with db.transaction():
                db.put("c", f"x{round_}", {})
    finally:
        stop.set()
        thread.join()
    assert db.count("c") == 21
    assert seen and all(1 <= count <= 21 for count in seen)


def test_closing_while_other_threads_work_gives_closed_errors_not_crashes(db: pier.Database) -> None:
    outcomes: List[str] = []
    started = threading.Barrier(5)

    def work(n: int) -> None:
        started.wait()
        for i in range(500):
            try:
                db.put("c", f"{n}-{i}", {})
            except pier.ClosedError:
                outcomes.append("closed")
                return
        outcomes.append("finished")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    db.close()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 4 and set(outcomes) <= {"closed", "finished"}


def test_a_transaction_belongs_to_the_database_not_the_thread(db: pier.Database) -> None:
    db.begin()
    db.put("c", "a", {})
    worker = threading.Thread(target=lambda: (db.put("c", "b", {}), db.commit()))
    worker.start()
    worker.join()
    with pytest.raises(pier.StateError):
        db.commit()  # the other thread committed it
    assert db.count("c") == 2


def test_one_database_per_thread_on_one_file(db_path: Path) -> None:
    pier.Database(db_path).close()
    failures: List[BaseException] = []

    def work(n: int) -> None:
        try:
            with pier.Database(db_path, busy_timeout_ms=30000) as own:
                for i in range(40):
                    own.put("c", f"{n}-{i}", {"n": n})
                assert own.count("c") >= 40
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with pier.Database(db_path) as db:
        assert db.count("c") == 160
        seqs = [row["local_seq"] for row in db.query("SELECT local_seq FROM records")]
        assert len(set(seqs)) == 160  # the outbox order stays unique across connections


def test_new_ids_from_threads_are_unique() -> None:
    ids: List[str] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [pier.new_id() for _ in range(1000)]
        assert mine == sorted(mine)
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 4000
