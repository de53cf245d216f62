"""Encryption at rest through the binding: keys, failures, key changes, rekey, encrypting
and decrypting files, tampering, and kill -9 during writes, passphrase changes and rekeys."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List

import pytest

import pier

FAST = 1000  # PBKDF2 iterations for tests; the default is 600,000
RAW = bytes(range(32))


def open_pass(path: Path, passphrase: str = "s3cret", **kwargs: object) -> pier.Database:
    return pier.Database(path, passphrase=passphrase, kdf_iterations=FAST, **kwargs)  # type: ignore[arg-type]


def test_round_trip_with_passphrase_and_raw_key(tmp_path: Path) -> None:
    for name, kwargs in (("p.pier", {"passphrase": "pw", "kdf_iterations": FAST}), ("k.pier", {"key": RAW})):
        path = tmp_path / name
        with pier.Database(path, **kwargs) as db:  # type: ignore[arg-type]
            for i in range(200):
                db.put("customers", f"c{i}", {"name": f"Customer {i}"})
        with pier.Database(path, **kwargs) as db:  # type: ignore[arg-type]
            assert db.get("customers", "c150") == {"name": "Customer 150"}
            assert len(db.list("customers", limit=500)) == 200
        assert b"Customer 150" not in path.read_bytes()
        info = pier.encryption_info(path)
        assert info["encrypted"] is True and info["cipher"] == "AES-256-GCM"
        assert info["kdf"] == ("raw" if "key" in kwargs else "PBKDF2-HMAC-SHA256")
        assert info["iterations"] == (0 if "key" in kwargs else FAST)


def test_default_iterations_are_owasp(tmp_path: Path) -> None:
    path = tmp_path / "default.pier"
    with pier.Database(path, passphrase="slow but right"):
        pass
    assert pier.encryption_info(path)["iterations"] == pier.DEFAULT_KDF_ITERATIONS == 600_000


def test_wrong_and_missing_keys_leave_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "locked.pier"
    with open_pass(path, "right") as db:
        db.put("notes", "n1", {"text": "hello"})
    before = path.read_bytes()
    with pytest.raises(pier.WrongKeyError):
        open_pass(path, "wrong")
    with pytest.raises(pier.WrongKeyError):
        pier.Database(path, key=RAW)
    with pytest.raises(pier.WrongKeyError, match="encrypted"):
        pier.Database(path)
    with pytest.raises(pier.WrongKeyError):
        pier.Database(path, readonly=True)
    assert path.read_bytes() == before
    plain = tmp_path / "plain.pier"
    with pier.Database(plain) as db:
        db.put("a", "1", {})
    plain_before = plain.read_bytes()
    with pytest.raises(pier.WrongKeyError, match="not encrypted"):
        open_pass(plain)
    assert plain.read_bytes() == plain_before
    assert pier.encryption_info(plain) == {"encrypted": False}


def test_bad_key_arguments(tmp_path: Path) -> None:
    with pytest.raises(pier.InvalidError):
        pier.Database(tmp_path / "a.pier", key=b"short")
    with pytest.raises(pier.InvalidError):
        pier.Database(tmp_path / "b.pier", passphrase="")
    with pytest.raises(pier.InvalidError):
        pier.Database(tmp_path / "c.pier", passphrase="x", key=RAW)
    with pytest.raises(pier.InvalidError):
        pier.Database(tmp_path / "d.pier", passphrase="x", kdf_iterations=10)
    with pytest.raises(TypeError):
        pier.Database(tmp_path / "e.pier", key="not bytes")  # type: ignore[arg-type]
    with pytest.raises(pier.NotFoundError):
        pier.encryption_info(tmp_path / "missing.pier")
    assert not list(tmp_path.iterdir())


def test_change_key_and_rekey(tmp_path: Path) -> None:
    path = tmp_path / "keys.pier"
    db = open_pass(path, "one")
    db.put("c", "1", {"v": 1})
    pages = path.read_bytes()[4096:]
    db.change_key(passphrase="two", kdf_iterations=FAST)
    assert path.read_bytes()[4096:] == pages
    assert pier.encryption_info(path)["key_generation"] == 2
    other = open_pass(path, "two")
    with pytest.raises(pier.BusyError):
        db.rekey()
    other.close()
    db.rekey()
    assert db.get("c", "1") == {"v": 1}
    db.rekey(key=RAW)
    db.put("c", "2", {"v": 2})
    db.close()
    with pytest.raises(pier.WrongKeyError):
        open_pass(path, "two")
    with pier.Database(path, key=RAW) as db:
        assert len(db.list("c")) == 2
    with pier.Database(tmp_path / "plain.pier") as plain:
        with pytest.raises(pier.StateError):
            plain.rekey()
        with pytest.raises(pier.StateError):
            plain.change_key(key=RAW)


def test_encrypt_and_decrypt_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pier"
    with pier.Database(plain) as db:
        for i in range(100):
            db.put("items", f"i{i}", {"label": f"item {i}"})
    pier.encrypt_file(plain, tmp_path / "copy.pier", passphrase="c", kdf_iterations=FAST)
    assert b"item 42" not in (tmp_path / "copy.pier").read_bytes()
    pier.encrypt_file(plain, key=RAW)
    assert pier.encryption_info(plain)["encrypted"]
    with pytest.raises(pier.InvalidError):
        pier.encrypt_file(plain, key=RAW)
    pier.decrypt_file(plain, tmp_path / "back.pier", key=RAW)
    with pier.Database(tmp_path / "back.pier") as db:
        assert db.get("items", "i42") == {"label": "item 42"}
    # Python's own sqlite3 reads the plain copy: the VFS did not change other users.
    connection = sqlite3.connect(str(tmp_path / "back.pier"))
    assert connection.execute("SELECT count(*) FROM pier_records").fetchone()[0] >= 100
    connection.close()
    with pytest.raises(pier.WrongKeyError):
        pier.decrypt_file(plain, tmp_path / "x.pier", passphrase="nope")
    assert not (tmp_path / "x.pier").exists()


def test_a_flipped_byte_is_corrupt_never_wrong_data(tmp_path: Path) -> None:
    path = tmp_path / "tamper.pier"
    with pier.Database(path, key=RAW) as db:
        for i in range(300):
            db.put("orders", f"o{i}", {"total": i, "item": f"widget {i}"})
    clean = bytearray(path.read_bytes())
    rng = random.Random(7)
    pages = (len(clean) - 4096) // 4096
    detected = 0
    for _ in range(10):
        copy = bytearray(clean)
        page = rng.randrange(pages)
        copy[4096 + page * 4096 + rng.randrange(4096)] ^= 1 << rng.randrange(8)
        target = tmp_path / "t.pier"
        for suffix in ("", "-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        target.write_bytes(bytes(copy))
        try:
            with pier.Database(target, key=RAW) as db:
                rows = db.query("SELECT id, body FROM records ORDER BY id")
                # Whatever was readable is exactly what was written.
                for row in rows:
                    assert row["body"] == {"total": int(row["id"][1:]), "item": f"widget {row['id'][1:]}"}
        except pier.CorruptError:
            detected += 1
    assert detected >= 1


def _env() -> dict:
    env = dict(os.environ)
    env["PIER_LIBRARY"] = pier.library_path()
    env["PYTHONPATH"] = str(Path(pier.__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


WRITER = textwrap.dedent(
    """
    import sys, pier
    path, mode = sys.argv[1], sys.argv[2]
    db = pier.Database(path, key=bytes(range(32)))
    i = 0
    while True:
        if mode == "writes":
            db.put("log", f"r{i:06d}", {"n": i, "pad": "x" * (i % 700)})
            print(f"r{i:06d}", flush=True)
        elif mode == "change":
            db.change_key(key=bytes(range(32)))
            print("changed", flush=True)
        i += 1
    """
)

REKEYER = textwrap.dedent(
    """
    import sys, pier
    path = sys.argv[1]
    db = pier.Database(path, passphrase="A", kdf_iterations=1000)
    current = "A"
    while True:
        nxt = "B" if current == "A" else "A"
        print("start", nxt, flush=True)
        db.rekey(passphrase=nxt, kdf_iterations=1000)
        current = nxt
        print("done", current, flush=True)
    """
)


def _kill_after(process: subprocess.Popen, seconds: float) -> List[str]:
    time.sleep(seconds)
    process.send_signal(signal.SIGKILL)
    out, _ = process.communicate(timeout=30)
    return out.decode().splitlines()


def test_kill_9_during_encrypted_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "crash.pier"
    rng = random.Random(11)
    acknowledged: List[str] = []
    for round in range(6):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "writes"], stdout=subprocess.PIPE, env=_env())
        lines = _kill_after(process, rng.uniform(0.3, 1.2))
        acknowledged += [line for line in lines if line.startswith("r")]
        with pier.Database(path, key=RAW) as db:
            present = {row["id"] for row in db.query("SELECT id FROM records")}
        missing = [record for record in acknowledged if record not in present]
        assert not missing, f"round {round}: {len(missing)} acknowledged writes lost"
        # The whole file is sound: a plain copy passes SQLite's own integrity check.
        copy = tmp_path / f"check-{round}.pier"
        pier.decrypt_file(path, copy, key=RAW)
        connection = sqlite3.connect(str(copy))
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        connection.close()
    assert len(acknowledged) > 20


def test_kill_9_during_rekey_leaves_the_old_or_the_new_key(tmp_path: Path) -> None:
    path = tmp_path / "rekey.pier"
    with pier.Database(path, passphrase="A", kdf_iterations=FAST) as db:
        for i in range(400):
            db.put("c", f"{i}", {"i": i, "pad": "y" * 200})
    rng = random.Random(5)
    opened_with = set()
    for _ in range(8):
        process = subprocess.Popen([sys.executable, "-c", REKEYER, str(path)], stdout=subprocess.PIPE, env=_env())
        _kill_after(process, rng.uniform(0.2, 1.5))
        # The REKEYER starts from "A"; after a kill the file opens with A or B.
        database = None
        for passphrase in ("A", "B"):
            try:
                database = pier.Database(path, passphrase=passphrase)
                opened_with.add(passphrase)
                break
            except pier.WrongKeyError:
                continue
        assert database is not None, "neither the old nor the new passphrase opens the file"
        assert len(database.list("c", limit=1000)) == 400
        if passphrase == "B":
            database.rekey(passphrase="A", kdf_iterations=FAST)
        database.close()
    # A temporary copy left by a killed rekey is removed by the next rekey.
    with pier.Database(path, passphrase="A") as database:
        database.rekey()
    assert not Path(str(path) + ".pier-rewrite").exists()


def test_kill_9_during_key_changes_keeps_the_file_openable(tmp_path: Path) -> None:
    path = tmp_path / "change.pier"
    with pier.Database(path, key=RAW) as db:
        db.put("c", "1", {"v": 1})
    rng = random.Random(3)
    for _ in range(5):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "change"], stdout=subprocess.PIPE, env=_env())
        _kill_after(process, rng.uniform(0.2, 0.8))
        with pier.Database(path, key=RAW) as db:
            assert db.get("c", "1") == {"v": 1}


def test_paths_with_spaces_and_unicode(tmp_path: Path) -> None:
    folder = tmp_path / "a folder ü #1?"
    folder.mkdir()
    path = folder / "stöře %20.pier"
    with pier.Database(path, key=RAW) as db:
        db.put("c", "1", {"v": "ok"})
    with pier.Database(path, key=RAW) as db:
        assert db.get("c", "1") == {"v": "ok"}
    assert pier.encryption_info(path)["encrypted"]
