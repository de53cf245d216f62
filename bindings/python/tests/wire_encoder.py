"""Encodes Pier frames in Python (docs/PROTOCOL.md sections 2, 3 and 5): the inverse of
wire_decoder.py for what tests and harnesses send. Uncompressed frames only.

Used by http_faults.py (error frames a misbehaving front sends) and by
reliability/security.py (requests rewritten from a captured one).
"""

from __future__ import annotations

import struct
import uuid
import zlib
from typing import Any, Dict, List, Optional

from wire_decoder import UUID_TEXT

MASK64 = (1 << 64) - 1
#: The message types (header byte 5).
SYNC_REQUEST, SYNC_RESPONSE, ERROR = 1, 2, 3


def uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def svarint(value: int) -> bytes:
    return uvarint(((value << 1) ^ (value >> 63)) & MASK64)


def length_prefixed(data: bytes) -> bytes:
    return uvarint(len(data)) + data


def encode_id(text: str) -> bytes:
    """PROTOCOL.md 3.5: a canonical UUID in 16 bytes, anything else as text."""
    raw = text.encode("utf-8")
    if UUID_TEXT.match(raw):
        return uvarint(0) + uuid.UUID(text).bytes
    return uvarint(len(raw) + 1) + raw


class Syms:
    """One column's table of interned strings (PROTOCOL.md 3.6)."""

    def __init__(self) -> None:
        self.table: Dict[str, int] = {}

    def encode(self, text: str) -> bytes:
        if text in self.table:
            return uvarint(2 * self.table[text] + 1)
        self.table[text] = len(self.table)
        raw = text.encode("utf-8")
        return uvarint(2 * len(raw)) + raw


OPS = {"upsert": 0, "patch": 1, "delete": 2}


def encode_changes(changes: List[Dict[str, Any]]) -> bytes:
    """The change list of a sync_request (PROTOCOL.md 5.1), from wire_decoder's rendering."""
    if not changes:
        return uvarint(0)
    columns = [bytearray() for _ in range(9)]
    collections, scopes, fields = Syms(), Syms(), Syms()
    previous_hlc = 0
    for change in changes:
        body = change.get("body")
        columns[0] += uvarint(OPS[change["op"]] | (4 if body is not None else 0))
        columns[1] += collections.encode(change["collection"])
        columns[2] += encode_id(change["id"])
        columns[3] += scopes.encode(change["scope"])
        columns[4] += svarint(change["base_version"])
        delta = (change["hlc"] - previous_hlc) & MASK64
        columns[5] += svarint(delta - (1 << 64) if delta >= 1 << 63 else delta)
        previous_hlc = change["hlc"]
        columns[6] += uvarint(len(change["changed_fields"])) + b"".join(fields.encode(name) for name in change["changed_fields"])
        if body is not None:
            raw = body.encode("utf-8")
            columns[7] += uvarint(len(raw))
            columns[8] += raw
    return uvarint(len(changes)) + uvarint(9) + b"".join(length_prefixed(bytes(column)) for column in columns)


def frame(message_type: int, payload: bytes) -> bytes:
    """An uncompressed frame of ``payload`` (PROTOCOL.md section 2)."""
    head = b"PIER" + bytes([1, message_type, 0, 1]) + struct.pack("<II", len(payload), len(payload))
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


def error_frame(code: int, message: str) -> bytes:
    """An ``error`` frame (PROTOCOL.md section 5.3)."""
    return frame(ERROR, uvarint(0) + svarint(code) + length_prefixed(message.encode("utf-8")))


def encode_request(client_id: str, batch_seq: int, pull: Optional[Dict[str, Any]], changes: List[Dict[str, Any]]) -> bytes:
    """An uncompressed sync_request frame (PROTOCOL.md sections 2 and 5.1)."""
    payload = bytearray(uvarint(1 if pull is not None else 0))
    payload += encode_id(client_id) + uvarint(batch_seq)
    if pull is not None:
        payload += svarint(pull["cursor"]) + uvarint(pull["max_records"]) + uvarint(pull["max_bytes"])
        payload += uvarint(len(pull["collections"])) + b"".join(length_prefixed(c.encode("utf-8")) for c in pull["collections"])
    payload += encode_changes(changes)
    return frame(SYNC_REQUEST, bytes(payload))
