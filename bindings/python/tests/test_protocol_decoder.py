"""docs/PROTOCOL.md is enough to implement the wire format.

``wire_decoder.py`` (beside this file) was written from the specification alone; these
tests decode every golden frame of ``Tests/fixtures/wire/`` with it and compare with the
values in ``manifest.json``, which the Swift test suite checks against PierWire. No
``pier`` package, no libpier: pure Python.
"""

from __future__ import annotations

import importlib.util
import json
import random
import struct
import sys
import zlib
from pathlib import Path
from typing import Any, Dict, List

import pytest

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("pier_wire_decoder", _HERE / "wire_decoder.py")
assert _spec is not None and _spec.loader is not None
wire = importlib.util.module_from_spec(_spec)
sys.modules["pier_wire_decoder"] = wire
_spec.loader.exec_module(wire)


def _fixtures() -> Path:
    for folder in _HERE.parents:
        candidate = folder / "Tests" / "fixtures" / "wire"
        if (candidate / "manifest.json").is_file():
            return candidate
    pytest.skip("Tests/fixtures/wire not found (binding tested outside its repository)")
    raise AssertionError("unreachable")


FIXTURES = _fixtures()
MANIFEST: Dict[str, Any] = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
ENTRIES: List[Dict[str, Any]] = MANIFEST["frames"]


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_manifest_covers_every_type_compressed_and_not() -> None:
    seen = {(e["decoded"]["header"]["type"], e["decoded"]["header"]["compression"]) for e in ENTRIES}
    for message_type in ("sync_request", "sync_response", "error"):
        for compression in ("none", "deflate"):
            assert (message_type, compression) in seen


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_golden_frame_decodes_to_the_manifest_values(entry: Dict[str, Any]) -> None:
    assert wire.decode_frame(_read(entry["file"])) == entry["decoded"]


def test_uuid_ids_and_unicode_survive() -> None:
    decoded = wire.decode_frame(_read("request-push-pull.bin"))["message"]
    ids = [change["id"] for change in decoded["changes"]]
    assert ids == ["0190f3a2-8000-7000-8000-000000000001", "kunde-müller-2", "0190F3A2-8000-7000-8000-000000000003"]
    assert "顧客" in decoded["pull"]["collections"]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_every_truncation_is_rejected(entry: Dict[str, Any]) -> None:
    data = _read(entry["file"])
    for length in range(len(data)):
        with pytest.raises(wire.WireFormatError):
            wire.decode_frame(data[:length])


def test_bit_flips_are_rejected() -> None:
    rng = random.Random(3)
    for entry in ENTRIES:
        data = bytearray(_read(entry["file"]))
        for _ in range(200):
            index = rng.randrange(len(data))
            bit = 1 << rng.randrange(8)
            data[index] ^= bit
            with pytest.raises(wire.WireFormatError):
                wire.decode_frame(bytes(data))
            data[index] ^= bit


def test_trailing_bytes_and_streams() -> None:
    data = _read("response-full.bin")
    with pytest.raises(wire.WireFormatError, match="trailing"):
        wire.decode_frame(data + b"\0")
    frames, rest = wire.split_frames(data + _read("error.bin") + data[:7])
    assert [len(f) for f in frames] == [len(data), len(_read("error.bin"))]
    assert rest == data[:7]


def test_decompression_bomb_stops_at_the_declared_size() -> None:
    payload = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = payload.compress(b"\0" * (4 << 20)) + payload.flush()
    header = b"PIER" + bytes([1, 3, 1, 1]) + struct.pack("<II", len(body) * 2, len(body))
    frame = header + struct.pack("<I", zlib.crc32(body, zlib.crc32(header))) + body
    with pytest.raises(wire.WireFormatError, match="exactly the declared size"):
        wire.decode_frame(frame)
