"""Argument conversion shared by ``Database`` and ``Server``.

Every helper raises ``TypeError`` for an argument of the wrong Python type and
``InvalidError`` for a value C would misread (a NUL inside a name, a lone surrogate),
always before the library is called.
"""

from __future__ import annotations

import ctypes
import json
import os
from typing import Any, Dict, Mapping, Optional, Union

from .errors import InvalidError

#: A record body as Pier returns it.
JSONObject = Dict[str, Any]

#: A record body or patch as Pier accepts it: a mapping (encoded as compact JSON) or the
#: JSON text of one object.
Body = Union[Mapping[str, Any], str, bytes, bytearray, memoryview]

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

_INT_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1
_SIZE_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1


def _path(value: object) -> bytes:
    """A file path as bytes for C."""
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be str, bytes or os.PathLike, got {type(value).__name__}")
    data = os.fsencode(value)
    if b"\0" in data:
        raise InvalidError("path must not contain NUL characters")
    return data


def _text(value: object, what: str) -> bytes:
    """A str argument as NUL-terminated UTF-8 for C."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, got {type(value).__name__}")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidError(f"{what} is not valid UTF-8: {error.reason} at index {error.start}") from None
    if b"\0" in data:
        # C would silently cut the string at the NUL; refuse it instead.
        raise InvalidError(f"{what} must not contain NUL characters (found one at index {value.index(chr(0))})")
    return data


def _optional_text(value: object, what: str) -> Optional[bytes]:
    return None if value is None else _text(value, what)


def _json_text(value: object, what: str) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate in a string
        raise InvalidError(f"{what} is not valid UTF-8: {error.reason}") from None
    except ValueError as error:  # NaN or infinity, a circular reference
        raise InvalidError(f"{what} cannot be encoded as JSON: {error}") from None


def _body(value: object, what: str = "body") -> bytes:
    """A body or patch as JSON text bytes."""
    if isinstance(value, Mapping):
        return _json_text(value if isinstance(value, dict) else dict(value), what)
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidError(f"{what} is not valid UTF-8: {error.reason} at index {error.start}") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be a dict or the JSON text of an object (str or bytes), got {type(value).__name__}")


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be int, got {type(value).__name__}")
    return value


def _ranged(value: object, what: str, low: int, high: int, high_name: str, note: str = "") -> int:
    """An int for a sized C parameter: ctypes would wrap a value outside its type's range
    silently (2**64 as a size_t is 0), so it is refused here with the argument's name."""
    number = _count(value, what)
    if number < low:
        raise InvalidError(f"{what} must be {low} or more{note}, got {number}")
    if number > high:
        raise InvalidError(f"{what} must be at most {high_name} ({high}){note}, got {number}")
    return number


def _loads(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"))
