"""``Server``: a sync server (handler plus SQLite master store), the face of ``pier_server_*``.

The server is sans-I/O: ``handle`` takes a request frame (what a client's transport
delivered) and returns the response frame. Serve it over HTTP, a message queue or a test
harness; or give it to ``Database.sync(server)`` for an in-process sync.

::

    with pier.Server("master.pier", {"collections": {"customers": {"policy": "manual"}}}) as server:
        with pier.Database("device.pier") as db:
            db.put("customers", pier.new_id(), {"name": "Ada"})
            db.sync(server)
        print(server.log(collection="customers"))
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime
import enum
import json
import os
import threading
import weakref
from ctypes import byref, c_int64, c_size_t, c_void_p
from typing import Any, Callable, Dict, FrozenSet, Iterable, Iterator, List, Mapping, Optional, Union

from . import _callbacks, _capi
from ._convert import _INT64_MAX, JSONObject, PathLike, _body, _count, _json_text, _loads, _optional_text, _path, _ranged, _text
from .errors import ClosedError, InvalidError, StateError, check

__all__ = [
    "Server",
    "Identity",
    "Resolution",
    "ResolverInput",
    "ServerResolver",
    "KEEP_LOCAL",
    "KEEP_SERVER",
    "MERGED",
    "REJECT",
    "MANUAL",
]


class Resolution(enum.Enum):
    """How a conflict is settled.

    On a device (``Database.resolve`` and the ``resolver`` of ``Database.sync``):
    ``KEEP_LOCAL``, ``KEEP_SERVER`` or a merged body (a dict or JSON text; ``MERGED``
    names that form in ``Database.resolve(id, MERGED, body)``). A client resolver
    returns ``None`` (or ``MANUAL``) to leave the conflict for the user.

    In a server resolver (``Server.set_resolver``): a body to keep (a dict or JSON
    text), ``KEEP_SERVER`` (the change is superseded), ``REJECT`` (refused, reason
    "custom") or ``MANUAL`` (a conflict is registered for the user; ``None`` means the same).
    """

    KEEP_LOCAL = "keep_local"
    KEEP_SERVER = "keep_server"
    MERGED = "merged"
    REJECT = "reject"
    MANUAL = "manual"

    def __repr__(self) -> str:
        return f"pier.{self.name}"


KEEP_LOCAL = Resolution.KEEP_LOCAL
KEEP_SERVER = Resolution.KEEP_SERVER
MERGED = Resolution.MERGED
REJECT = Resolution.REJECT
MANUAL = Resolution.MANUAL


# ------------------------------------------------------------------------------------
# Identity
# ------------------------------------------------------------------------------------


def _scopes(value: object, what: str) -> Optional[FrozenSet[str]]:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        # A lone string would otherwise become a set of one-letter scopes.
        raise TypeError(f"{what} must be an iterable of str (such as a list) or None, got {type(value).__name__}")
    scopes = []
    for index, scope in enumerate(value):
        if not isinstance(scope, str):
            raise TypeError(f"{what}[{index}] must be str, got {type(scope).__name__}")
        scopes.append(scope)
    return frozenset(scopes)


@dataclasses.dataclass(frozen=True, init=False)
class Identity:
    """Who is syncing, as the caller verified it (from a token, an API key, the app).

    Args:
        user: the user name, recorded in the business log.
        read_scopes: the scopes the user may read (any iterable of str); ``None`` means
            every scope, an empty list none.
        write_scopes: the scopes the user may write; ``None`` means every scope.
        is_admin: may read the business log and conflicts through the protocol.

    Passing no identity to ``Server.handle`` or ``Database.sync`` means a trusted local
    identity with every scope.

    Raises:
        TypeError: a field of the wrong type (a lone string as a scope list included).
    """

    user: str
    read_scopes: Optional[FrozenSet[str]]
    write_scopes: Optional[FrozenSet[str]]
    is_admin: bool

    def __init__(
        self,
        user: str,
        read_scopes: Optional[Iterable[str]] = None,
        write_scopes: Optional[Iterable[str]] = None,
        is_admin: bool = False,
    ) -> None:
        if not isinstance(user, str):
            raise TypeError(f"Identity.user must be str, got {type(user).__name__}")
        _text(user, "Identity.user")
        if not isinstance(is_admin, bool):
            raise TypeError(f"Identity.is_admin must be bool, got {type(is_admin).__name__}")
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "read_scopes", _scopes(read_scopes, "Identity.read_scopes"))
        object.__setattr__(self, "write_scopes", _scopes(write_scopes, "Identity.write_scopes"))
        object.__setattr__(self, "is_admin", is_admin)


class _IdentityStruct:
    """A ``pier_identity`` and the buffers it points into, alive as long as this object."""

    __slots__ = ("struct", "_keep")

    def __init__(self, identity: Identity) -> None:
        struct = _capi.identity_init()
        keep: List[Any] = []
        struct.user = _text(identity.user, "Identity.user")
        for field, scopes in (("read_scopes", identity.read_scopes), ("write_scopes", identity.write_scopes)):
            if scopes is None:
                continue  # NULL: every scope
            names = [_text(scope, f"Identity.{field}[i]") for scope in sorted(scopes)]
            # At least one element, so that an empty list is a non-NULL pointer (no scope)
            # and never NULL (every scope).
            array = (ctypes.c_char_p * max(1, len(names)))(*names)
            keep.append(array)
            setattr(struct, field, ctypes.cast(array, ctypes.POINTER(ctypes.c_char_p)))
            setattr(struct, field[: -len("scopes")] + "scope_count", len(names))
        struct.is_admin = 1 if identity.is_admin else 0
        self.struct = struct
        self._keep = keep


def _identity(identity: object) -> Optional[_IdentityStruct]:
    if identity is None:
        return None
    if not isinstance(identity, Identity):
        raise TypeError(f"identity must be a pier.Identity or None, got {type(identity).__name__}")
    return _IdentityStruct(identity)


# ------------------------------------------------------------------------------------
# Server resolvers
# ------------------------------------------------------------------------------------


def _json_or_none(pointer: Optional[int], length: int) -> Optional[JSONObject]:
    if not pointer:
        return None
    value: JSONObject = json.loads(ctypes.string_at(pointer, length).decode("utf-8"))
    return value


def _string(value: Optional[bytes]) -> str:
    return (value or b"").decode("utf-8", "replace")


@dataclasses.dataclass(frozen=True)
class ResolverInput(Mapping[str, Any]):
    """What a server resolver sees: a change whose base is not the server's version.

    Readable as attributes (``input.client_body``) or as a mapping
    (``input["client_body"]``). Bodies are dicts, or ``None`` for a deleted side.
    """

    collection: str
    id: str
    client_body: Optional[JSONObject]
    server_body: Optional[JSONObject]
    base_version: int
    server_version: int
    client_hlc: int
    server_hlc: int
    client_id: str
    user: str

    @property
    def client_deletes(self) -> bool:
        """True when the client's change is a delete."""
        return self.client_body is None

    @property
    def server_deleted(self) -> bool:
        """True when the record is deleted on the server."""
        return self.server_body is None

    def __getitem__(self, key: str) -> Any:
        if key not in _RESOLVER_INPUT_FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_RESOLVER_INPUT_FIELDS)

    def __len__(self) -> int:
        return len(_RESOLVER_INPUT_FIELDS)


_RESOLVER_INPUT_FIELDS = tuple(field.name for field in dataclasses.fields(ResolverInput))

#: A server resolver: returns a body to keep (dict or JSON text), KEEP_SERVER, REJECT,
#: MANUAL or None (= MANUAL).
ServerResolver = Callable[[ResolverInput], Union[Mapping[str, Any], str, bytes, Resolution, None]]

_DECISIONS = {
    Resolution.KEEP_SERVER: _capi.PIER_DECIDE_KEEP_SERVER,
    Resolution.REJECT: _capi.PIER_DECIDE_REJECT,
    Resolution.MANUAL: _capi.PIER_DECIDE_MANUAL,
}

# Servers whose resolver is running on this thread: calling back into them from the
# resolver is refused (pier.h forbids it; the library would deadlock or abort).
_in_resolver = threading.local()


def _resolving() -> Dict[int, int]:
    active: Optional[Dict[int, int]] = getattr(_in_resolver, "servers", None)
    if active is None:
        active = _in_resolver.servers = {}
    return active


class _ServerResolverTrampoline:
    """The ``pier_resolver_cb`` of one Python resolver of one collection."""

    def __init__(self, server_key: int, collection: str, function: ServerResolver) -> None:
        self._server_key = server_key
        self._collection = collection
        self._function = function
        # The body handed to C stays valid until the next call on the same thread.
        self._bodies = threading.local()
        self.c_function = _capi.pier_resolver_cb(self._call)

    def _call(self, _ctx: Optional[int], raw: Any, out_body: Any, out_len: Any) -> int:
        active = _resolving()
        active[self._server_key] = active.get(self._server_key, 0) + 1
        try:
            value = raw.contents
            request = ResolverInput(
                collection=_string(value.collection),
                id=_string(value.id),
                client_body=_json_or_none(value.client_body, value.client_body_len),
                server_body=_json_or_none(value.server_body, value.server_body_len),
                base_version=int(value.base_version),
                server_version=int(value.server_version),
                client_hlc=int(value.client_hlc),
                server_hlc=int(value.server_hlc),
                client_id=_string(value.client_id),
                user=_string(value.user),
            )
            result = self._function(request)
            if result is None:
                return _capi.PIER_DECIDE_MANUAL
            if isinstance(result, Resolution):
                if result not in _DECISIONS:
                    raise TypeError(
                        f"a server resolver returns a body, pier.KEEP_SERVER, pier.REJECT or pier.MANUAL, not {result!r}"
                    )
                return _DECISIONS[result]
            data = _body(result, "the resolver's body")
            buffer = ctypes.create_string_buffer(data, len(data))
            self._bodies.last = buffer
            out_body[0] = ctypes.addressof(buffer)
            out_len[0] = len(data)
            return _capi.PIER_DECIDE_KEEP_BODY
        except BaseException as error:
            _callbacks.record(error, f"the server resolver of {self._collection!r} (the change became a manual conflict)")
            return _capi.PIER_DECIDE_MANUAL
        finally:
            count = active.get(self._server_key, 1) - 1
            if count:
                active[self._server_key] = count
            else:
                active.pop(self._server_key, None)


# ------------------------------------------------------------------------------------
# Server
# ------------------------------------------------------------------------------------

_LOG_TEXT_FILTERS = ("collection", "record_id", "client_id", "outcome")


def _milliseconds(value: object, what: str) -> int:
    """Unix milliseconds from an int or an aware datetime."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise InvalidError(f"{what} must be a timezone-aware datetime (or Unix milliseconds)")
        return int(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be Unix milliseconds (int) or a datetime, got {type(value).__name__}")
    return value


def _free_server(handle: Any, _callbacks_alive: Any) -> None:
    # The resolvers are an argument so they outlive every C call that might use them.
    _capi.pier_server_free(handle)


class Server:
    """A sync server: the handler and its SQLite master store.

    Args:
        path: the master store file (created if missing).
        config: ``None`` for the defaults, or the configuration as a dict (encoded as
            JSON) or as JSON text: collection policies, update/delete rules, limits, the
            drift bound, the tombstone horizon, such as
            ``{"collections": {"customers": {"policy": "manual"}}}``. Unknown keys are
            refused. The default policy is ``last_write_wins``.

    Raises:
        InvalidError: a bad configuration (not JSON, an unknown key or policy).
        NotADatabaseError, VersionError, PierIOError: the master file cannot be used.

    A server may be used from several threads at once. ``close()`` (or ``with``) closes
    the master store; later calls raise ClosedError. The C handle is released when the
    object is collected.
    """

    def __init__(self, path: PathLike, config: Union[Mapping[str, Any], str, None] = None) -> None:
        path_bytes = _path(path)
        if config is None:
            config_bytes: Optional[bytes] = None
        elif isinstance(config, Mapping):
            config_bytes = _json_text(dict(config), "config")
        elif isinstance(config, str):
            config_bytes = _text(config, "config")
        else:
            raise TypeError(f"config must be a dict, JSON text (str) or None, got {type(config).__name__}")
        handle = _capi.pier_server_p()
        rc = _capi.pier_server_open(byref(handle), path_bytes, config_bytes)
        self._handle = handle
        self._path = os.fsdecode(path_bytes)
        self._closed = False
        # Every resolver ever installed: C may still run a replaced one on another thread.
        self._trampolines: List[_ServerResolverTrampoline] = []
        self._finalizer: Optional[weakref.finalize] = None  # type: ignore[type-arg]
        if handle:
            self._finalizer = weakref.finalize(self, _free_server, handle, self._trampolines)
        check(rc)

    # -- lifetime ---------------------------------------------------------------------

    def _open_handle(self) -> Any:
        if _resolving().get(id(self)):
            raise StateError("a server resolver must not call back into its server (pier.h); return a decision instead")
        return self._handle

    def close(self) -> None:
        """Closes the master store. Calling it again does nothing; later calls raise ClosedError."""
        if self._closed:
            return
        handle = self._open_handle()
        self._closed = True
        check(_capi.pier_server_close(handle))

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    @property
    def path(self) -> str:
        """The master store file."""
        return self._path

    def __enter__(self) -> "Server":
        if self._closed:
            raise ClosedError("the server is closed; open it again with pier.Server")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<pier.Server {self._path!r} {'closed' if self._closed else 'open'}>"

    # -- the protocol -----------------------------------------------------------------

    def handle(self, request: Union[bytes, bytearray, memoryview], identity: Optional[Identity] = None) -> bytes:
        """Handles one request frame for a verified identity and returns the response frame.

        A malformed or refused request still gets a frame (an error message the client
        understands). ``identity=None`` is a trusted local identity with every scope.

        An exception raised by a server resolver during the call is raised here once the
        library has returned (the change it was deciding became a manual conflict).
        """
        if not isinstance(request, (bytes, bytearray, memoryview)):
            raise TypeError(f"request must be bytes, got {type(request).__name__}")
        data = bytes(request)
        who = _identity(identity)
        handle = self._open_handle()
        out = c_void_p()
        length = c_size_t()
        with _callbacks.frame() as frame:
            rc = _capi.pier_server_handle(handle, byref(out), byref(length), data, len(data),
                                          byref(who.struct) if who is not None else None)
            try:
                response = ctypes.string_at(out.value, length.value) if out.value else b""
            finally:
                _capi.pier_free(out)
            _callbacks.finish(frame, rc)
        return response

    # -- administration ---------------------------------------------------------------

    def _json(self, function: Callable[..., int], *arguments: Any) -> Any:
        handle = self._open_handle()
        out = c_void_p()
        length = c_size_t()
        rc = function(handle, byref(out), byref(length), *arguments)
        try:
            check(rc)
            return _loads(ctypes.string_at(out.value, length.value) if out.value else b"null")
        finally:
            _capi.pier_free(out)

    def log(
        self,
        *,
        collection: Optional[str] = None,
        record_id: Optional[str] = None,
        client_id: Optional[str] = None,
        outcome: Optional[str] = None,
        since: Union[int, datetime.datetime, None] = None,
        until: Union[int, datetime.datetime, None] = None,
        after_seq: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> List[JSONObject]:
        """The business log: one entry per change the server processed, oldest first.

        Each entry is a dict with seq, server_time, client_id, user, collection,
        record_id, op, outcome (such as "applied", "merged", "superseded", "rejected",
        "conflict"), base_version, new_version, client_hlc and detail. Filters combine;
        ``since``/``until`` are Unix milliseconds or aware datetimes; ``after_seq`` pages
        (pass the last ``seq`` seen); without ``limit`` the library returns 100 entries.
        """
        filters: Dict[str, Any] = {}
        for name, value in (("collection", collection), ("record_id", record_id), ("client_id", client_id), ("outcome", outcome)):
            if value is not None:
                _text(value, name)
                filters[name] = value
        for name, moment in (("since", since), ("until", until)):
            if moment is not None:
                filters[name] = _milliseconds(moment, name)
        for name, number in (("after_seq", after_seq), ("limit", limit)):
            if number is not None:
                filters[name] = _count(number, name)
        filter_json = _json_text(filters, "log filter") if filters else None
        entries: List[JSONObject] = self._json(_capi.pier_server_log, filter_json)
        return entries

    def conflicts(self, collection: Optional[str] = None, open_only: bool = False) -> List[JSONObject]:
        """Conflicts registered on the server, newest first.

        Each is a dict with conflict_id, collection, record_id, client_id, user,
        base_version, server_version, client_body, server_body (dicts or None),
        client_deleted, server_deleted, created_at, status and resolved_version.
        ``open_only`` hides the resolved ones.
        """
        name = _optional_text(collection, "collection")
        if not isinstance(open_only, bool):
            raise TypeError(f"open_only must be bool, got {type(open_only).__name__}")
        conflicts: List[JSONObject] = self._json(_capi.pier_server_conflicts, name, 1 if open_only else 0)
        return conflicts

    def purge_tombstones(self, horizon_ms: Optional[int] = None) -> int:
        """Purges tombstones every active client has pulled and that are older than
        ``horizon_ms`` (default: the configured horizon). Clients behind the purge are
        told to resync. Returns the number purged."""
        horizon = -1
        if horizon_ms is not None:
            horizon = _ranged(horizon_ms, "horizon_ms", 0, _INT64_MAX, "INT64_MAX", " (None for the configured horizon)")
        out = c_int64()
        check(_capi.pier_server_purge_tombstones(self._open_handle(), byref(out), horizon))
        return int(out.value)

    def set_resolver(self, collection: str, resolver: Optional[ServerResolver]) -> None:
        """Installs the resolver of a collection whose policy is ``"custom"`` (``None``
        removes it; a custom collection without a resolver registers conflicts).

        ``resolver(input: ResolverInput)`` runs on the thread handling the request (in
        ``handle`` or an in-process ``Database.sync``), inside the batch's transaction,
        and must not call this server. It returns the body to keep (a dict or JSON text:
        the client's, the server's or a new one), ``pier.KEEP_SERVER``, ``pier.REJECT``
        or ``pier.MANUAL`` (``None`` is MANUAL too). If it raises, the change becomes a
        manual conflict, the exception is logged to the ``"pier"`` logger, and it is
        raised again by the ``handle`` or ``sync`` call that ran the resolver.
        """
        name = _text(collection, "collection")
        handle = self._open_handle()
        if resolver is None:
            check(_capi.pier_server_set_resolver(handle, name, _capi.pier_resolver_cb(), None))
            return
        if not callable(resolver):
            raise TypeError(f"resolver must be callable or None, got {type(resolver).__name__}")
        trampoline = _ServerResolverTrampoline(id(self), collection, resolver)
        self._trampolines.append(trampoline)  # before C can call it
        check(_capi.pier_server_set_resolver(handle, name, trampoline.c_function, None))
