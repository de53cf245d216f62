"""A small decoder of Pier wire frames, written from docs/PROTOCOL.md alone.

It exists to prove that the specification is enough to implement the format: the test
``test_protocol_decoder.py`` decodes the golden frames of ``Tests/fixtures/wire/`` with it
and compares the result with ``manifest.json``. Pure standard library (``zlib``,
``struct``); it does not import the ``pier`` package. Section numbers refer to
docs/PROTOCOL.md.

``decode_frame(data)`` returns ``{"header": {...}, "message": {...}}`` in the JSON
rendering of section 10, or raises ``WireFormatError``.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple

READER_VERSION = 2
HEADER_SIZE = 20
MESSAGE_TYPES = {1: "sync_request", 2: "sync_response", 3: "error"}
COMPRESSION = {0: "none", 1: "deflate"}
OPS = ["upsert", "patch", "delete"]
OUTCOMES = ["applied", "merged", "superseded", "rejected", "conflict"]
UUID_TEXT = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
MASK64 = (1 << 64) - 1


class WireFormatError(ValueError):
    """The input is not a valid frame (PIER_EPROTOCOL)."""


class Limits:
    """Section 7 defaults."""

    def __init__(
        self,
        max_frame_bytes: int = 80 << 20,
        max_payload_bytes: int = 80 << 20,
        max_items: int = 100_000,
        max_string_bytes: int = 64 << 10,
        max_body_bytes: int = 64 << 20,
    ) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.max_payload_bytes = max_payload_bytes
        self.max_items = max_items
        self.max_string_bytes = max_string_bytes
        self.max_body_bytes = max_body_bytes


def to_signed(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


class Reader:
    """A cursor over one column or over the message fields (sections 3 and 4)."""

    def __init__(self, data: bytes, start: int, end: int, name: str, limits: Limits, strict: bool) -> None:
        self.data = data
        self.pos = start
        self.end = end
        self.name = name
        self.limits = limits
        self.strict = strict
        self.table: List[str] = []  # the sym table of this column (3.6)

    def fail(self, what: str) -> WireFormatError:
        return WireFormatError(f"{self.name}: {what} (offset {self.pos})")

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def uvarint(self) -> int:  # 3.1
        result = 0
        for i in range(10):
            if self.pos >= self.end:
                raise self.fail("varint runs past the end")
            byte = self.data[self.pos]
            self.pos += 1
            if i == 9 and byte > 1:
                raise self.fail("varint longer than 64 bits")
            result |= (byte & 0x7F) << (7 * i)
            if byte < 0x80:
                if byte == 0 and i > 0:
                    raise self.fail("varint not in shortest form")
                return result
        raise self.fail("varint longer than 64 bits")

    def svarint(self) -> int:  # 3.2
        u = self.uvarint()
        return to_signed((u >> 1) ^ -(u & 1))

    def u32(self) -> int:
        value = self.uvarint()
        if value > 0xFFFFFFFF:
            raise self.fail("u32 out of range")
        return value

    def i32(self) -> int:
        value = self.svarint()
        if not -(1 << 31) <= value < 1 << 31:
            raise self.fail("i32 out of range")
        return value

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise self.fail(f"length {n} exceeds the {self.remaining} bytes left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def text(self, n: int) -> str:
        if n > self.limits.max_string_bytes:
            raise self.fail("string longer than the limit")
        raw = self.take(n)
        try:
            return raw.decode("utf-8")  # strict: rejects surrogates, overlong forms
        except UnicodeDecodeError as error:
            raise self.fail(f"invalid UTF-8: {error}") from None

    def string(self) -> str:  # 3.4
        return self.text(self.uvarint())

    def id(self) -> str:  # 3.5
        h = self.uvarint()
        if h == 0:
            raw = self.take(16).hex()
            return f"{raw[0:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"
        start = self.pos
        value = self.text(h - 1)
        if self.strict and UUID_TEXT.match(self.data[start : self.pos]):
            raise self.fail("canonical UUID in text form")
        return value

    def sym(self) -> str:  # 3.6
        return self.table[self.sym_index()]

    def sym_index(self) -> int:  # 3.6: the entry of the column's table
        h = self.uvarint()
        if h & 1:
            index = h >> 1
            if index >= len(self.table):
                raise self.fail(f"symbol reference {index} undefined")
            return index
        value = self.text(h >> 1)
        if self.strict and value in self.table:
            raise self.fail("literal repeated instead of referenced")
        self.table.append(value)
        return len(self.table) - 1

    def flags(self, known: int) -> int:  # 3.7
        value = self.uvarint()
        if self.strict and value & ~known:
            raise self.fail("reserved flag bits set")
        return value

    def string_list(self) -> List[str]:  # section 4, last paragraph
        count = self.uvarint()
        if count > self.limits.max_items or count > self.remaining:
            raise self.fail("string count too large")
        return [self.string() for _ in range(count)]


def body_value(raw: bytes) -> Any:
    """Section 10: a body as its text, or {"hex": ...} if it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": raw.hex()}


def open_columns(r: Reader, names: List[str]) -> Tuple[int, Dict[str, Reader]]:
    """Section 4: count, column count and the columns of a list (count 0: no columns)."""
    count = r.uvarint()
    if count == 0:
        return 0, {}
    if count > r.limits.max_items:
        raise r.fail("item count over the limit")
    column_count = r.uvarint()
    if (column_count != len(names)) if r.strict else (column_count < len(names)):
        raise r.fail(f"{column_count} columns, the format defines {len(names)}")
    columns: Dict[str, Reader] = {}
    for index in range(column_count):
        length = r.uvarint()
        if length > r.remaining:
            raise r.fail("column longer than the payload")
        if index < len(names):
            columns[names[index]] = Reader(r.data, r.pos, r.pos + length, names[index], r.limits, r.strict)
        r.pos += length
    if count > columns[names[0]].remaining:
        raise r.fail("more items than bytes in the flags column")
    return count, columns


def read_list(
    r: Reader, names: List[str], item: Callable[[Dict[str, Reader]], Dict[str, Any]]
) -> List[Dict[str, Any]]:
    """Section 4: the columns, then one item per position."""
    count, columns = open_columns(r, names)
    items = [item(columns) for _ in range(count)]
    for column in columns.values():
        if column.remaining:
            raise column.fail("bytes left over after the last item")
    return items


def read_body(columns: Dict[str, Reader]) -> str:
    lengths, bodies = columns["body_length"], columns["body"]
    n = lengths.uvarint()
    if n > lengths.limits.max_body_bytes:
        raise lengths.fail("body longer than the limit")
    return body_value(bodies.take(n))


class Delta:
    """Section 3.3: running sum with 64-bit wrap-around."""

    def __init__(self, start: int = 0) -> None:
        self.value = start

    def add(self, delta: int) -> int:
        self.value = to_signed(self.value + delta)
        return self.value


def read_changes(r: Reader) -> List[Dict[str, Any]]:  # 5.1
    hlc = Delta()
    names = ["flags", "collection", "id", "scope", "base_version", "hlc", "changed_fields", "body_length", "body"]

    def item(c: Dict[str, Reader]) -> Dict[str, Any]:
        flags = c["flags"].flags(0b111)
        if flags & 3 == 3:
            raise c["flags"].fail("unknown op 3")
        change: Dict[str, Any] = {
            "collection": c["collection"].sym(),
            "id": c["id"].id(),
            "op": OPS[flags & 3],
        }
        scope = c["scope"].sym()
        change["base_version"] = c["base_version"].svarint()
        change["hlc"] = hlc.add(c["hlc"].svarint())
        change["scope"] = scope
        fields = c["changed_fields"]
        n = fields.uvarint()
        if n > fields.limits.max_items or n > fields.remaining:
            raise fields.fail("changed field count too large")
        changed = [fields.sym() for _ in range(n)]
        change["body"] = read_body(c) if flags & 4 else None
        change["changed_fields"] = changed
        return change

    return read_list(r, names, item)


def read_results(r: Reader) -> List[Dict[str, Any]]:  # 5.2
    index, version, hlc = Delta(-1), Delta(), Delta()
    names = ["flags", "index", "version", "server_hlc", "reason", "conflict_id", "body_length", "body"]

    def item(c: Dict[str, Reader]) -> Dict[str, Any]:
        flags = c["flags"].flags(0b1111)
        if flags & 7 > 4:
            raise c["flags"].fail(f"unknown outcome {flags & 7}")
        position = index.value + 1 + c["index"].svarint()
        if not 0 <= position <= 0xFFFFFFFF:
            raise c["index"].fail("change index out of range")
        index.value = position
        result: Dict[str, Any] = {"index": position, "outcome": OUTCOMES[flags & 7]}
        result["version"] = version.add(c["version"].svarint())
        server_hlc = hlc.add(c["server_hlc"].svarint())
        reason = c["reason"].sym()
        conflict_id = c["conflict_id"].id()
        result["body"] = read_body(c) if flags & 8 else None
        result["reason"] = reason
        result["conflict_id"] = conflict_id
        result["server_hlc"] = server_hlc
        return result

    return read_list(r, names, item)


def read_records(r: Reader) -> List[Dict[str, Any]]:  # 5.2
    version, hlc = Delta(), Delta()
    names = ["flags", "collection", "id", "scope", "version", "hlc", "body_length", "body"]

    def item(c: Dict[str, Reader]) -> Dict[str, Any]:
        flags = c["flags"].flags(0b11)
        record: Dict[str, Any] = {"collection": c["collection"].sym(), "id": c["id"].id()}
        scope = c["scope"].sym()
        record["version"] = version.add(c["version"].svarint())
        record["scope"] = scope
        record["hlc"] = hlc.add(c["hlc"].svarint())
        record["deleted"] = bool(flags & 1)
        record["body"] = read_body(c) if flags & 2 else None
        return record

    return read_list(r, names, item)


def read_records_layout2(r: Reader) -> List[Dict[str, Any]]:  # 5.4
    """Records in layout 2: id heads then UUID byte planes, HLC byte planes, bodies grouped
    by collection. A first pass places the bodies and UUIDs; a second builds the records."""
    names = ["flags", "collection", "id", "scope", "version", "hlc", "body_length", "body"]
    count, c = open_columns(r, names)
    if count == 0:
        return []
    flags, groups, texts, lengths = [], [], [], []
    group_sizes: List[int] = []
    for _ in range(count):
        f = c["flags"].flags(0b11)
        group = c["collection"].sym_index()
        if group == len(group_sizes):
            group_sizes.append(0)
        ids = c["id"]
        h = ids.uvarint()
        if h == 0:
            texts.append(None)
        else:
            text = ids.text(h - 1)
            if ids.strict and UUID_TEXT.match(text.encode()):
                raise ids.fail("canonical UUID in text form")
            texts.append(text)
        n = None
        if f & 2:
            n = c["body_length"].uvarint()
            if n > r.limits.max_body_bytes:
                raise c["body_length"].fail("body longer than the limit")
            group_sizes[group] += n
        flags.append(f)
        groups.append(group)
        lengths.append(n)
    uuids = texts.count(None)
    if c["id"].remaining != 16 * uuids:
        raise c["id"].fail(f"id planes hold {c['id'].remaining} bytes, {uuids} UUIDs need {16 * uuids}")
    if c["hlc"].remaining != 8 * count:
        raise c["hlc"].fail(f"hlc planes hold {c['hlc'].remaining} bytes, {count} records need {8 * count}")
    if c["body"].remaining != sum(group_sizes):
        raise c["body"].fail("body lengths do not add up to the body column")
    id_planes = c["id"].take(16 * uuids)
    hlc_planes = c["hlc"].take(8 * count)
    bodies = c["body"].take(c["body"].remaining)
    start: List[int] = []  # groups in the order of the collection column's table
    offset = 0
    for size in group_sizes:
        start.append(offset)
        offset += size
    version = Delta()
    records: List[Dict[str, Any]] = []
    u = 0
    for i in range(count):
        if texts[i] is None:
            record_id = bytes(id_planes[k * uuids + u] for k in range(16)).hex()
            record_id = f"{record_id[:8]}-{record_id[8:12]}-{record_id[12:16]}-{record_id[16:20]}-{record_id[20:]}"
            u += 1
        else:
            record_id = texts[i]
        hlc = to_signed(int.from_bytes(bytes(hlc_planes[k * count + i] for k in range(8)), "big"))
        scope = c["scope"].sym()
        record: Dict[str, Any] = {"collection": c["collection"].table[groups[i]], "id": record_id}
        record["version"] = version.add(c["version"].svarint())
        record["scope"] = scope
        record["hlc"] = hlc
        record["deleted"] = bool(flags[i] & 1)
        record["body"] = None
        n = lengths[i]
        if n is not None:
            at = start[groups[i]]
            record["body"] = body_value(bodies[at : at + n])
            start[groups[i]] = at + n
        records.append(record)
    for column in c.values():
        if column.remaining:
            raise column.fail("bytes left over after the last item")
    return records


def read_conflicts(r: Reader) -> List[Dict[str, Any]]:  # 5.2
    names = ["flags", "conflict_id", "collection", "id", "server_version", "base_version", "body_length", "body"]

    def item(c: Dict[str, Reader]) -> Dict[str, Any]:
        flags = c["flags"].flags(0b111)
        conflict: Dict[str, Any] = {
            "conflict_id": c["conflict_id"].id(),
            "collection": c["collection"].sym(),
            "id": c["id"].id(),
            "server_version": c["server_version"].svarint(),
            "base_version": c["base_version"].svarint(),
        }
        for bit, key in ((1, "local_body"), (2, "server_body"), (4, "base_body")):
            conflict[key] = read_body(c) if flags & bit else None
        return conflict

    return read_list(r, names, item)


def decode_message(
    payload: bytes, type_name: str, version: int, limits: Limits, min_reader: Optional[int] = None
) -> Dict[str, Any]:
    """Message bytes of format `version`; `min_reader` is the frame header's (None: trust the version)."""
    strict = version <= READER_VERSION
    rules = min(version, READER_VERSION)
    if min_reader is None:
        min_reader = rules
    r = Reader(payload, 0, len(payload), type_name, limits, strict)
    message: Dict[str, Any] = {"type": type_name}
    if type_name == "sync_request":
        flags = r.flags(0b1)
        message["client_id"] = r.id()
        message["batch_seq"] = r.uvarint()
        message["pull"] = None
        if flags & 1:
            message["pull"] = {
                "cursor": r.svarint(),
                "max_records": r.u32(),
                "max_bytes": r.u32(),
                "collections": r.string_list(),
            }
        message["changes"] = read_changes(r)
    elif type_name == "sync_response":
        flags = r.flags(0b111 if rules >= 2 else 0b11)
        layout2 = rules >= 2 and bool(flags & 4)
        if layout2 and min_reader < 2:
            raise r.fail("records in layout 2 in a frame whose minimum reader version is not 2")
        message["server_time"] = r.svarint()
        message["cursor"] = r.svarint()
        message["has_more"] = bool(flags & 1)
        message["resync_required"] = bool(flags & 2)
        message["resync_collections"] = r.string_list()
        message["results"] = read_results(r)
        message["records"] = read_records_layout2(r) if layout2 else read_records(r)
        if strict and rules >= 2 and layout2 != bool(message["records"]):
            raise r.fail("flag bit 2 must be set exactly when a version-2 response has records")
        message["conflicts"] = read_conflicts(r)
    else:
        r.flags(0)
        message["code"] = r.i32()
        message["message"] = r.string()
    if strict and r.remaining:
        raise r.fail(f"{r.remaining} bytes follow the end of the message")
    return message


def decode_header(data: bytes, limits: Limits) -> Dict[str, Any]:  # section 2
    if data[:4] != b"PIER"[: len(data)]:
        raise WireFormatError("bad magic")
    if len(data) < HEADER_SIZE:
        raise WireFormatError("truncated header")
    version, type_byte, flags, min_reader = data[4], data[5], data[6], data[7]
    uncompressed, payload_length, crc = struct.unpack_from("<III", data, 8)
    if version == 0 or min_reader == 0 or min_reader > version or min_reader > READER_VERSION:
        raise WireFormatError(f"unsupported version {version} (min reader {min_reader})")
    if type_byte not in MESSAGE_TYPES:
        raise WireFormatError(f"unknown message type {type_byte}")
    if flags & 0xF0:
        raise WireFormatError("reserved header flag bits")
    if flags & 0x0F not in COMPRESSION:
        raise WireFormatError(f"unknown compression {flags & 0x0F}")
    if HEADER_SIZE + payload_length > limits.max_frame_bytes or uncompressed > limits.max_payload_bytes:
        raise WireFormatError("frame over the limits")
    compression = COMPRESSION[flags & 0x0F]
    if compression == "none" and uncompressed != payload_length:
        raise WireFormatError("uncompressed frame with differing lengths")
    if compression == "deflate" and not payload_length < uncompressed <= payload_length * 1032:
        raise WireFormatError("impossible compressed lengths")
    return {
        "version": version,
        "min_reader_version": min_reader,
        "type": MESSAGE_TYPES[type_byte],
        "compression": compression,
        "uncompressed_length": uncompressed,
        "payload_length": payload_length,
        "crc32": crc,
    }


def inflate_exactly(payload: bytes, size: int) -> bytes:
    """Raw deflate (RFC 1951) into exactly `size` bytes, never more."""
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(payload, size)
    except zlib.error as error:
        raise WireFormatError(f"corrupt deflate data: {error}") from None
    if len(out) != size or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise WireFormatError("deflate stream does not inflate to exactly the declared size")
    return out


def decode_frame(data: bytes, limits: Optional[Limits] = None) -> Dict[str, Any]:
    limits = limits or Limits()
    header = decode_header(data, limits)
    end = HEADER_SIZE + header["payload_length"]
    if len(data) < end:
        raise WireFormatError("truncated payload")
    if len(data) > end:
        raise WireFormatError("trailing bytes after the frame")
    if zlib.crc32(data[HEADER_SIZE:end], zlib.crc32(data[:16])) != header["crc32"]:
        raise WireFormatError("CRC-32 mismatch")
    payload = data[HEADER_SIZE:end]
    if header["compression"] == "deflate":
        payload = inflate_exactly(payload, header["uncompressed_length"])
    message = decode_message(payload, header["type"], header["version"], limits, header["min_reader_version"])
    return {"header": header, "message": message}


def split_frames(stream: bytes) -> Tuple[List[bytes], bytes]:
    """Splits concatenated frames (a stream reader's view); returns frames and the rest."""
    frames: List[bytes] = []
    while len(stream) >= HEADER_SIZE:
        (payload_length,) = struct.unpack_from("<I", stream, 12)
        if len(stream) < HEADER_SIZE + payload_length:
            break
        frames.append(stream[: HEADER_SIZE + payload_length])
        stream = stream[HEADER_SIZE + payload_length :]
    return frames, stream
