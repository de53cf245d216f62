"""The client side of sync: ``Database.sync`` and its report, progress and conflicts.

``Database.sync``, ``Database.conflicts``, ``Database.resolve`` and
``Database.set_collection_mode`` are the entry points; this module holds their types and
the trampolines that let C call the Python transport, progress and resolver functions.
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import json
from ctypes import byref
from typing import TYPE_CHECKING, Any, Callable, List, Mapping, Optional, Union

from . import _callbacks, _capi
from ._convert import JSONObject, _body, _count, _optional_text, _text
from .errors import InvalidError, PierError
from .server import MANUAL, MERGED, Identity, Resolution, Server, _identity

if TYPE_CHECKING:  # pragma: no cover
    from .server import _IdentityStruct

__all__ = [
    "CollectionMode",
    "Conflict",
    "SyncProgress",
    "SyncReport",
    "Transport",
    "HTTPOptions",
    "ProgressCallback",
    "ConflictResolver",
]


class CollectionMode(str, enum.Enum):
    """How a collection takes part in sync (PIER_MODE_*)."""

    #: Pushed and pulled (the default).
    TWO_WAY = "two_way"
    #: Reference data: pulled only; local writes raise ReadOnlyError.
    PULL_ONLY = "pull_only"
    #: Telemetry: pushed only, never pulled (optionally purged locally once acknowledged).
    PUSH_ONLY = "push_only"
    #: Never synced: writes are not tracked and never leave the device.
    LOCAL_ONLY = "local_only"


_MODES = {
    CollectionMode.TWO_WAY: _capi.PIER_MODE_TWO_WAY,
    CollectionMode.PULL_ONLY: _capi.PIER_MODE_PULL_ONLY,
    CollectionMode.PUSH_ONLY: _capi.PIER_MODE_PUSH_ONLY,
    CollectionMode.LOCAL_ONLY: _capi.PIER_MODE_LOCAL_ONLY,
}


def _mode(value: object) -> int:
    if isinstance(value, CollectionMode):
        return _MODES[value]
    if isinstance(value, str):
        try:
            return _MODES[CollectionMode(value)]
        except ValueError:
            names = ", ".join(repr(mode.value) for mode in CollectionMode)
            raise InvalidError(f"mode must be one of {names} or a pier.CollectionMode, got {value!r}") from None
    raise TypeError(f"mode must be a pier.CollectionMode or its name (str), got {type(value).__name__}")


@dataclasses.dataclass(frozen=True)
class SyncProgress:
    """Progress after each round trip of a sync."""

    round_trips: int
    pushed: int
    #: Local changes still to push.
    pending: int
    pulled: int
    #: True while the server has more to send.
    pulling: bool


@dataclasses.dataclass(frozen=True)
class SyncReport:
    """What a sync did (``pier_sync_report``)."""

    #: Changes pushed, and how the server settled them.
    pushed: int
    applied: int
    merged: int
    superseded: int
    rejected: int
    conflicts: int
    #: Records pulled from the server.
    pulled: int
    #: Frame bytes on the wire, and before compression.
    bytes_sent: int
    bytes_sent_raw: int
    bytes_received: int
    bytes_received_raw: int
    round_trips: int
    duration_ms: float
    #: The server asked for a full re-pull (this device was behind a tombstone purge).
    resynced: bool
    #: A batch whose reply was lost was sent again (and the server applied nothing twice).
    replayed_batch: bool

    @classmethod
    def _from_c(cls, report: _capi.pier_sync_report) -> "SyncReport":
        values = {}
        for field in dataclasses.fields(cls):
            value = getattr(report, field.name)
            values[field.name] = bool(value) if field.type in ("bool", bool) else value
        return cls(**values)


def _object(text: Optional[Any]) -> Optional[JSONObject]:
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if isinstance(text, str):
        value: JSONObject = json.loads(text)
        return value
    decoded: JSONObject = text  # already decoded (pier_db_conflicts embeds objects)
    return decoded


@dataclasses.dataclass(frozen=True)
class Conflict:
    """A conflict waiting on this device: the server did not take a local change.

    Bodies are dicts, or ``None`` for a deleted side (``base_body`` is ``None`` when the
    local edit was not based on a server copy).
    """

    conflict_id: str
    collection: str
    id: str
    local_body: Optional[JSONObject]
    server_body: Optional[JSONObject]
    base_body: Optional[JSONObject]
    base_version: int
    server_version: int
    #: This device deleted the record.
    local_deleted: bool = False
    #: The server deleted it.
    server_deleted: bool = False

    @classmethod
    def _from_json(cls, row: Mapping[str, Any]) -> "Conflict":
        return cls(
            conflict_id=row["conflict_id"],
            collection=row["collection"],
            id=row["id"],
            local_body=_object(row.get("local_body")),
            server_body=_object(row.get("server_body")),
            base_body=_object(row.get("base_body")),
            base_version=int(row["base_version"]),
            server_version=int(row["server_version"]),
            local_deleted=bool(row.get("local_deleted", row.get("local_body") is None)),
            server_deleted=bool(row.get("server_deleted", row.get("server_body") is None)),
        )


#: A host transport: sends the request frame to the server and returns the response frame.
Transport = Callable[[bytes], Union[bytes, bytearray, memoryview]]
#: Called after each round trip.
ProgressCallback = Callable[[SyncProgress], None]
#: Settles a conflict during a sync: KEEP_LOCAL, KEEP_SERVER, a merged body (a dict or
#: JSON text), or None to leave it for the user.
ConflictResolver = Callable[[Conflict], Union[Resolution, Mapping[str, Any], str, bytes, None]]

_CLIENT_RESOLUTIONS = {
    Resolution.KEEP_LOCAL: _capi.PIER_RESOLVE_KEEP_LOCAL,
    Resolution.KEEP_SERVER: _capi.PIER_RESOLVE_KEEP_SERVER,
}


def resolution_arguments(resolution: object, body: object) -> "tuple[int, Optional[bytes]]":
    """``Database.resolve``'s arguments as (PIER_RESOLVE_*, merged body or None)."""
    if isinstance(resolution, Resolution):
        if resolution in _CLIENT_RESOLUTIONS:
            if body is not None:
                raise InvalidError(f"body is only for a merged resolution; pass {resolution!r} alone")
            return _CLIENT_RESOLUTIONS[resolution], None
        if resolution is MERGED:
            if body is None:
                raise InvalidError("pier.MERGED needs the merged body: resolve(conflict_id, pier.MERGED, body)")
            return _capi.PIER_RESOLVE_MERGED, _body(body, "merged body")
        raise InvalidError(f"a device resolves with pier.KEEP_LOCAL, pier.KEEP_SERVER or a merged body, not {resolution!r}")
    if isinstance(resolution, (Mapping, str, bytes, bytearray, memoryview)):
        if body is not None:
            raise InvalidError("give the merged body once: resolve(conflict_id, body) or resolve(conflict_id, pier.MERGED, body)")
        return _capi.PIER_RESOLVE_MERGED, _body(resolution, "merged body")
    raise TypeError(
        f"resolution must be pier.KEEP_LOCAL, pier.KEEP_SERVER, pier.MERGED or a merged body (dict or JSON text), "
        f"got {type(resolution).__name__}"
    )


def _buffer(data: bytes) -> ctypes.Array:  # type: ignore[type-arg]
    # At least one byte so that an empty reply still has a non-NULL address.
    return ctypes.create_string_buffer(data, max(1, len(data)))


class _SyncCall:
    """The C callbacks of one ``Database.sync`` call and the buffers they hand to C."""

    def __init__(
        self,
        frame: _callbacks.Frame,
        transport: Optional[Transport],
        progress: Optional[ProgressCallback],
        resolver: Optional[ConflictResolver],
    ) -> None:
        self._frame = frame
        self._transport = transport
        self._progress = progress
        self._resolver = resolver
        # Valid until the callback is called again or pier_sync returns (pier.h).
        self._response: Optional[ctypes.Array] = None  # type: ignore[type-arg]
        self._merged: Optional[ctypes.Array] = None  # type: ignore[type-arg]
        self.c_transport = _capi.pier_transport_cb(self._call_transport) if transport else _capi.pier_transport_cb()
        self.c_progress = _capi.pier_progress_cb(self._call_progress) if progress else _capi.pier_progress_cb()
        self.c_resolver = _capi.pier_conflict_cb(self._call_resolver) if resolver else _capi.pier_conflict_cb()

    def _call_transport(self, _ctx: Optional[int], request: Optional[int], request_len: int, out_response: Any, out_len: Any) -> int:
        try:
            if _callbacks.failed(self._frame):
                # A callback of this sync raised: stop before the next round trip.
                return _capi.PIER_ECANCELLED
            assert self._transport is not None
            data = ctypes.string_at(request, request_len) if request else b""
            reply = self._transport(data)
            if not isinstance(reply, (bytes, bytearray, memoryview)):
                raise TypeError(f"the transport must return the response frame as bytes, got {type(reply).__name__}")
            reply_bytes = bytes(reply)
            buffer = _buffer(reply_bytes)
            self._response = buffer
            out_response[0] = ctypes.addressof(buffer)
            out_len[0] = len(reply_bytes)
            return _capi.PIER_OK
        except BaseException as error:
            _callbacks.record(error, "the sync transport (the sync ended with PIER_ENETWORK; the batch is sent again by the next sync)")
            return _capi.PIER_ENETWORK

    def _call_progress(self, _ctx: Optional[int], raw: Any) -> None:
        try:
            if _callbacks.failed(self._frame):
                return
            assert self._progress is not None
            value = raw.contents
            self._progress(
                SyncProgress(
                    round_trips=int(value.round_trips),
                    pushed=int(value.pushed),
                    pending=int(value.pending),
                    pulled=int(value.pulled),
                    pulling=bool(value.pulling),
                )
            )
        except BaseException as error:
            _callbacks.record(error, "the sync progress callback")

    def _call_resolver(self, _ctx: Optional[int], raw: Any, out_body: Any, out_len: Any) -> int:
        try:
            if _callbacks.failed(self._frame):
                return _capi.PIER_RESOLVE_LEAVE
            assert self._resolver is not None
            value = raw.contents
            conflict = Conflict(
                conflict_id=(value.conflict_id or b"").decode("utf-8"),
                collection=(value.collection or b"").decode("utf-8"),
                id=(value.id or b"").decode("utf-8"),
                local_body=_object(value.local_body),
                server_body=_object(value.server_body),
                base_body=_object(value.base_body),
                base_version=int(value.base_version),
                server_version=int(value.server_version),
                local_deleted=value.local_body is None,
                server_deleted=value.server_body is None,
            )
            result = self._resolver(conflict)
            if result is None or result is MANUAL:
                return _capi.PIER_RESOLVE_LEAVE
            if isinstance(result, Resolution):
                if result not in _CLIENT_RESOLUTIONS:
                    raise TypeError(
                        f"a sync resolver returns pier.KEEP_LOCAL, pier.KEEP_SERVER, a merged body or None, not {result!r}"
                    )
                return _CLIENT_RESOLUTIONS[result]
            data = _body(result, "the resolver's merged body")
            buffer = _buffer(data)
            self._merged = buffer
            out_body[0] = ctypes.addressof(buffer)
            out_len[0] = len(data)
            return _capi.PIER_RESOLVE_MERGED
        except BaseException as error:
            _callbacks.record(error, "the sync resolver (the conflict was left for the user)")
            return _capi.PIER_RESOLVE_LEAVE


def _positive(value: Optional[int], what: str, ceiling: int) -> int:
    """An optional size option: None is the library default (0 in C)."""
    if value is None:
        return 0
    number = _count(value, what)
    if number < 1 or number > ceiling:
        raise InvalidError(f"{what} must be 1-{ceiling} (None for the default), got {number}")
    return number


def _milliseconds(value: Optional[float], what: str) -> int:
    """An optional duration in seconds as whole milliseconds for C (None: the default, 0)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds (int or float) or None, got {type(value).__name__}")
    milliseconds = round(value * 1000)
    if not value > 0 or milliseconds < 1 or milliseconds > 2**32 - 1:
        raise InvalidError(f"{what} must be 0.001-{(2**32 - 1) // 1000} seconds (None for the default), got {value!r}")
    return milliseconds


@dataclasses.dataclass(frozen=True)
class HTTPOptions:
    """The built-in HTTP transport's settings (``Database.sync(url=...)``); None = default."""

    token: Optional[str] = None
    timeout: Optional[float] = None
    connect_timeout: Optional[float] = None
    retries: Optional[int] = None
    retry_delay: Optional[float] = None
    retry_max_delay: Optional[float] = None
    ca_file: Optional[str] = None
    max_response_bytes: Optional[int] = None

    def _apply(self, options: _capi.pier_sync_options, url: object, keep: List[bytes]) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be str, got {type(url).__name__}")
        lowered = url.lower()
        if not (lowered.startswith("http://") or lowered.startswith("https://")):
            raise InvalidError(f"url must start with http:// or https://, got {url!r}")
        encoded = [_text(url, "url"), _optional_text(self.token, "token"), _optional_text(self.ca_file, "ca_file")]
        keep.extend(value for value in encoded if value is not None)  # alive until pier_sync returns
        options.url, options.token, options.ca_file = encoded
        options.timeout_ms = _milliseconds(self.timeout, "timeout")
        options.connect_timeout_ms = _milliseconds(self.connect_timeout, "connect_timeout")
        options.retry_base_delay_ms = _milliseconds(self.retry_delay, "retry_delay")
        options.retry_max_delay_ms = _milliseconds(self.retry_max_delay, "retry_max_delay")
        if self.retries is not None:
            retries = _count(self.retries, "retries")
            if retries < 0 or retries > 1000:
                raise InvalidError(f"retries must be 0-1000 (None for the default, 4), got {retries}")
            options.max_attempts = retries + 1
        options.max_response_bytes = _positive(self.max_response_bytes, "max_response_bytes", 2**63 - 1)


def run(
    handle: Any,
    server: Optional[Server],
    identity: Optional[Identity],
    transport: Optional[Transport],
    url: Optional[str],
    http: HTTPOptions,
    max_batch_changes: Optional[int],
    max_batch_bytes: Optional[int],
    pull_max_records: Optional[int],
    pull_max_bytes: Optional[int],
    block_only_conflicted: bool,
    progress: Optional[ProgressCallback],
    resolver: Optional[ConflictResolver],
) -> SyncReport:
    """pier_sync with Python arguments checked first; see ``Database.sync``."""
    if server is not None and not isinstance(server, Server):
        raise TypeError(f"server must be a pier.Server, got {type(server).__name__}")
    if transport is not None and not callable(transport):
        raise TypeError(f"transport must be callable (request bytes -> response bytes), got {type(transport).__name__}")
    if sum(value is not None for value in (server, transport, url)) != 1:
        raise InvalidError(
            "sync needs exactly one of server (in-process), transport (a function request -> response) or url (HTTP)"
        )
    if identity is not None and server is None:
        raise InvalidError("identity applies to an in-process server; a host transport or a url authenticates itself")
    if url is None and http != HTTPOptions():
        raise InvalidError("token, timeout, connect_timeout, retries, retry_delay, retry_max_delay, ca_file and "
                           "max_response_bytes apply only with url")
    who: Optional[_IdentityStruct] = _identity(identity)
    for name, function in (("progress", progress), ("resolver", resolver)):
        if function is not None and not callable(function):
            raise TypeError(f"{name} must be callable or None, got {type(function).__name__}")
    if not isinstance(block_only_conflicted, bool):
        raise TypeError(f"block_only_conflicted must be bool, got {type(block_only_conflicted).__name__}")

    options = _capi.sync_options_init()
    options.max_batch_changes = _positive(max_batch_changes, "max_batch_changes", 2**63 - 1)
    options.max_batch_bytes = _positive(max_batch_bytes, "max_batch_bytes", 2**63 - 1)
    options.pull_max_records = _positive(pull_max_records, "pull_max_records", 2**32 - 1)
    options.pull_max_bytes = _positive(pull_max_bytes, "pull_max_bytes", 2**32 - 1)
    options.block_only_conflicted = 1 if block_only_conflicted else 0
    strings: List[bytes] = []
    if url is not None:
        http._apply(options, url, strings)
    if server is not None:
        options.server = server._open_handle()
        if who is not None:
            options.identity = ctypes.pointer(who.struct)
    report = _capi.sync_report_init()
    with _callbacks.frame() as frame:
        call = _SyncCall(frame, transport, progress, resolver)
        options.transport = call.c_transport
        options.progress = call.c_progress
        options.resolver = call.c_resolver
        rc = _capi.pier_sync(handle, byref(report), byref(options))
        result = SyncReport._from_c(report)
        try:
            _callbacks.finish(frame, rc)
        except PierError as error:
            error.sync_report = result  # type: ignore[attr-defined]
            raise
        except BaseException as error:
            cause = error.__cause__
            if isinstance(cause, PierError):
                cause.sync_report = result  # type: ignore[attr-defined]
            raise
    return result
