"""``Database``: a local Pier store, the Pythonic face of ``pier_db_*``.

Records are JSON objects: methods take a ``dict`` (encoded compactly) or JSON text as
``str``/``bytes`` and return ``dict``s. Arguments of the wrong type raise ``TypeError``
before the library is called; everything the library validates (names, ids, bodies,
SQL) raises the ``PierError`` subclass of its status code with the library's message.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import threading
import weakref
from ctypes import byref, c_int, c_int64, c_size_t, c_void_p
from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _capi
from ._convert import (
    _INT_MAX,
    _SIZE_MAX,
    Body,
    JSONObject,
    PathLike,
    _body,
    _count,
    _json_text,
    _loads,
    _optional_text,
    _path,
    _ranged,
    _text,
)
from . import sync as _sync
from .encryption import make_key
from .errors import ClosedError, InvalidError, StateError, check
from .server import Identity, Resolution, Server
from .sync import CollectionMode, Conflict, ConflictResolver, ProgressCallback, SyncReport, Transport

__all__ = ["Database", "Body", "JSONObject", "new_id", "version", "version_number", "library_path"]

_STATES = {
    _capi.PIER_STATE_SYNCED: "synced",
    _capi.PIER_STATE_PENDING: "pending",
    _capi.PIER_STATE_CONFLICTED: "conflicted",
    _capi.PIER_STATE_REJECTED: "rejected",
}

_DURABILITY = {"normal": _capi.PIER_DURABILITY_NORMAL, "full": _capi.PIER_DURABILITY_FULL}


# ------------------------------------------------------------------------------------
# Module-level functions
# ------------------------------------------------------------------------------------


def new_id() -> str:
    """A new time-ordered UUIDv7 (``pier_uuid7``): later ids sort after earlier ones."""
    buffer = ctypes.create_string_buffer(_capi.PIER_UUID_BUFFER_SIZE)
    check(_capi.pier_uuid7(buffer))
    return buffer.value.decode("ascii")


def version() -> str:
    """The version of the loaded libpier, such as ``"0.1.0"``."""
    return (_capi.pier_version() or b"").decode("ascii")


def version_number() -> int:
    """The loaded libpier's version as MAJOR * 10000 + MINOR * 100 + PATCH."""
    return int(_capi.pier_version_number())


def library_path() -> str:
    """Where the loaded libpier came from."""
    from . import _lib

    return _lib.path


# ------------------------------------------------------------------------------------
# Database
# ------------------------------------------------------------------------------------


class Database:
    """A local Pier store: one SQLite file (plus its -wal and -shm files).

    ::

        with pier.Database("field.pier") as db:
            db.put("customers", pier.new_id(), {"name": "Ada"})

    Args:
        path: the store file; created unless ``readonly`` or ``must_exist``.
        durability: ``"normal"`` (survives an app crash; the default) or ``"full"``
            (survives a power failure too).
        readonly: open read-only; the file must exist and writes raise ReadOnlyError.
        must_exist: raise NotFoundError instead of creating a missing file.
        default_scope: the scope of records written without one (the library's default
            is ``"default"``).
        max_body_bytes: the largest body accepted (default 1 MiB, at most 64 MiB).
        busy_timeout_ms: how long a write waits for another connection's lock before
            BusyError; ``0`` means do not wait (default 5000).
        passphrase: encryption at rest: the store's passphrase (a new file is created
            encrypted). See docs/SECURITY.md.
        key: encryption at rest with a raw 32-byte key instead of a passphrase.
        kdf_iterations: PBKDF2 iterations when a new file's passphrase wraps its data key
            (default 600,000; at least 1,000). Opening reads the count from the file.

    Raises:
        NotADatabaseError: the file is garbage or another application's SQLite database
            (it is left untouched).
        VersionError: the store was written by a newer Pier.
        NotFoundError: ``readonly`` or ``must_exist`` and there is no file.
        InvalidError: an option is out of range.
        WrongKeyError: the file is encrypted and no key or the wrong one was given, or a
            key was given for a plain file (the file is left untouched).
        CorruptError: the encrypted file's key header is damaged.

    One ``Database`` may be shared by threads: the library serialises calls on it. A
    transaction belongs to the database, not to a thread: while one is open, writes from
    every thread join it. ``close()`` (or ``with``) releases the file; a database that is
    never closed is released when it is garbage-collected.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        durability: str = "normal",
        readonly: bool = False,
        must_exist: bool = False,
        default_scope: Optional[str] = None,
        max_body_bytes: Optional[int] = None,
        busy_timeout_ms: Optional[int] = None,
        passphrase: Optional[str] = None,
        key: Optional[bytes] = None,
        kdf_iterations: Optional[int] = None,
    ) -> None:
        path_bytes = _path(path)
        if not isinstance(durability, str):
            raise TypeError(f"durability must be 'normal' or 'full', got {type(durability).__name__}")
        if durability not in _DURABILITY:
            raise InvalidError(f"durability must be 'normal' or 'full', got {durability!r}")

        options = _capi.open_options_init()
        options.durability = _DURABILITY[durability]
        options.flags = (_capi.PIER_OPEN_READONLY if readonly else 0) | (_capi.PIER_OPEN_MUST_EXIST if must_exist else 0)
        scope = _optional_text(default_scope, "default_scope")
        options.default_scope = scope
        if max_body_bytes is not None:
            # 0 means "the default" to C; from Python it would be a silent surprise.
            if _count(max_body_bytes, "max_body_bytes") < 1:
                raise InvalidError(f"max_body_bytes must be 1-{_capi.PIER_MAX_BODY_BYTES_CEILING}, got {max_body_bytes}")
            options.max_body_bytes = min(max_body_bytes, 2**63 - 1)
        if busy_timeout_ms is not None:
            # C reads 0 as "the default" and a negative value as "no wait".
            timeout = _count(busy_timeout_ms, "busy_timeout_ms")
            if timeout < 0 or timeout > _INT_MAX:
                raise InvalidError(f"busy_timeout_ms must be 0-{_INT_MAX}, got {timeout}")
            options.busy_timeout_ms = timeout if timeout > 0 else -1

        encryption = make_key(passphrase, key, kdf_iterations)
        if encryption is not None:
            options.key = ctypes.pointer(encryption[0])

        handle = _capi.pier_db_p()
        rc = _capi.pier_db_open(byref(handle), path_bytes, byref(options))
        del encryption
        self._raw_handle = handle
        # Set on the thread running pier_sync on this handle, for the length of the call.
        self._syncing = threading.local()
        self._path = os.fsdecode(path_bytes)
        self._readonly = bool(readonly)
        self._closed = False
        self._finalizer: Optional[weakref.finalize] = None  # type: ignore[type-arg]
        if handle:
            # The last resort: releases the handle when the object is collected unclosed
            # (or at interpreter exit). It must not reference self. Registered before
            # check() so a handle is never lost, even if check raises an exception a log
            # callback deferred (KeyboardInterrupt) after a successful open.
            self._finalizer = weakref.finalize(self, _capi.pier_db_free, handle)
        check(rc)

    # -- lifetime ---------------------------------------------------------------------

    @property
    def _handle(self) -> Any:
        """The C handle, refused to a callback of this database's own sync.

        libpier holds the handle's lock for the whole of pier_sync and aborts the process
        ("Recursive call to lock Mutex") when a callback calls back in on the same handle;
        an exception is better than a crash.
        """
        if getattr(self._syncing, "active", False):
            raise StateError(
                "this Database is syncing on this thread: a sync callback (transport, progress, resolver) "
                "cannot use the Database being synced; open a second pier.Database on the same file to read it"
            )
        return self._raw_handle

    def close(self) -> None:
        """Closes the store, rolling back an open transaction. Calling it again does nothing.

        Later calls raise ClosedError. The C handle is kept (every call on it answers
        PIER_ECLOSED) until this object is collected, so a thread still using the
        database gets an error, never a crash.
        """
        if self._closed:
            return
        handle = self._handle
        self._closed = True
        check(_capi.pier_db_close(handle))

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    @property
    def path(self) -> str:
        """The store file's path."""
        return self._path

    @property
    def readonly(self) -> bool:
        """True when opened with ``readonly=True``."""
        return self._readonly

    def __enter__(self) -> "Database":
        if self._closed:
            raise ClosedError("the store is closed; open it again with pier.Database")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<pier.Database {self._path!r} {state}>"

    # -- writes -----------------------------------------------------------------------

    def put(self, collection: str, id: str, body: Body, *, scope: Optional[str] = None) -> None:
        """Stores ``body`` (a JSON object) as record ``id`` of ``collection``, replacing it.

        The write is tracked for sync. A new record gets the store's default scope or
        ``scope``; with ``scope`` an existing record moves to it.

        Raises:
            InvalidError: a bad name or id, a body that is not one JSON object or is over
                the body limit.
            ReadOnlyError, ClosedError, BusyError, PierIOError.
        """
        c = _text(collection, "collection name")
        i = _text(id, "record id")
        data = _body(body)
        if scope is None:
            check(_capi.pier_db_put(self._handle, c, i, data, len(data)))
        else:
            s = _text(scope, "scope")
            check(_capi.pier_db_put_scoped(self._handle, c, i, s, data, len(data)))

    def put_many(self, collection: str, items: Union[Mapping[str, Body], Iterable[Tuple[str, Body]]]) -> None:
        """Stores several records of one collection atomically: all or none.

        ``items`` is a mapping id -> body or an iterable of ``(id, body)`` pairs. The
        error message names the index of the first bad record.
        """
        c = _text(collection, "collection name")
        pairs: Iterable[Any] = items.items() if isinstance(items, Mapping) else items
        if isinstance(items, (str, bytes)) or not isinstance(pairs, Iterable):
            raise TypeError(f"items must be a dict id -> body or an iterable of (id, body), got {type(items).__name__}")
        ids: List[bytes] = []
        bodies: List[bytes] = []
        for index, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"items[{index}] must be an (id, body) pair, got {type(pair).__name__}")
            ids.append(_text(pair[0], f"items[{index}] record id"))
            bodies.append(_body(pair[1], f"items[{index}] body"))
        count = len(ids)
        id_array = (ctypes.c_char_p * count)(*ids)
        body_array = (ctypes.c_char_p * count)(*bodies)
        length_array = (c_size_t * count)(*(len(body) for body in bodies))
        check(_capi.pier_db_put_many(self._handle, c, id_array, body_array, length_array, count))

    def patch(self, collection: str, id: str, patch: Body) -> None:
        """Applies a JSON merge patch (RFC 7396) to a live record.

        Each member of ``patch`` replaces the record's member of that name, ``None``
        (null) removes it, nested objects merge.

        Raises:
            NotFoundError: no live record.
            LimitError: the patched body would exceed the body limit (nothing is written).
            InvalidError, ReadOnlyError, ClosedError.
        """
        c = _text(collection, "collection name")
        i = _text(id, "record id")
        data = _body(patch, "patch")
        check(_capi.pier_db_patch(self._handle, c, i, data, len(data)))

    def delete(self, collection: str, id: str) -> None:
        """Deletes a live record.

        A record the server knows stays as a tombstone until the server acknowledges the
        delete; a record never pushed is removed outright (one in a pushed batch whose reply
        has not arrived becomes a tombstone: the server may already have it).

        Raises:
            NotFoundError: no live record.
        """
        check(_capi.pier_db_delete(self._handle, _text(collection, "collection name"), _text(id, "record id")))

    def create_index(self, collection: str, field: str) -> None:
        """Creates (if missing) an index on ``field`` (``"city"``, ``"address.city"``) of
        one collection, used by queries filtering with ``json_extract(body, '$.field')``."""
        check(_capi.pier_db_create_index(self._handle, _text(collection, "collection name"), _text(field, "field")))

    # -- reads ------------------------------------------------------------------------

    def _buffer(self, function: Callable[..., int], *arguments: Any) -> bytes:
        out = c_void_p()
        length = c_size_t()
        rc = function(self._handle, byref(out), byref(length), *arguments)
        try:
            check(rc)
            return ctypes.string_at(out.value, length.value) if out.value else b""
        finally:
            _capi.pier_free(out)

    def get_raw(self, collection: str, id: str) -> str:
        """The JSON text of a live record's body, exactly as stored.

        Raises:
            NotFoundError: no live record (also a KeyError).
        """
        data = self._buffer(_capi.pier_db_get, _text(collection, "collection name"), _text(id, "record id"))
        return data.decode("utf-8")

    def get(self, collection: str, id: str) -> JSONObject:
        """A live record's body.

        Raises:
            NotFoundError: no live record (also a KeyError).
        """
        body: JSONObject = json.loads(self.get_raw(collection, id))
        return body

    def list(self, collection: str, after: Optional[str] = None, limit: int = 100) -> List[Tuple[str, JSONObject]]:
        """Up to ``limit`` live records of ``collection`` in id order, as ``(id, body)``.

        Pass the last id of a page as ``after`` to get the next page (or use ``iter``).
        """
        c = _text(collection, "collection name")
        a = _optional_text(after, "after")
        _ranged(limit, "limit", 0, _SIZE_MAX, "SIZE_MAX")
        rows = _loads(self._buffer(_capi.pier_db_list, c, a, limit))
        return [(row["id"], row["body"]) for row in rows]

    def iter(self, collection: str, page_size: int = 100) -> Iterator[Tuple[str, JSONObject]]:
        """Every live record of ``collection`` in id order, read ``page_size`` at a time."""
        _ranged(page_size, "page_size", 1, _SIZE_MAX, "SIZE_MAX")
        _text(collection, "collection name")
        return self._pages(collection, page_size)

    def _pages(self, collection: str, page_size: int) -> Iterator[Tuple[str, JSONObject]]:
        after: Optional[str] = None
        while True:
            page = self.list(collection, after=after, limit=page_size)
            yield from page
            if len(page) < page_size:
                return
            after = page[-1][0]

    def count(self, collection: str) -> int:
        """The number of live records in ``collection``."""
        out = c_int64()
        check(_capi.pier_db_count(self._handle, byref(out), _text(collection, "collection name")))
        return int(out.value)

    def query(self, sql: str, params: Sequence[Any] = ()) -> List[JSONObject]:
        """Runs one read-only SQL statement and returns its rows as dicts.

        The view ``records(collection, id, body, scope, sync_state, version, hlc,
        local_seq)`` holds the live records; reach into bodies with
        ``json_extract(body, '$.field')``. ``params`` bind to ``?1``, ``?2``, ...: None,
        numbers, strings, booleans; lists and dicts bind as JSON text. Columns read
        straight from ``body`` come back as dicts.

        Raises:
            ReadOnlyError: the statement would write (or is a PRAGMA, ATTACH, ...).
            InvalidError: it does not compile, is more than one statement, or the number
                of parameters is wrong.
        """
        s = _text(sql, "sql")
        if isinstance(params, (str, bytes, bytearray, Mapping)) or not isinstance(params, Sequence):
            raise TypeError(f"params must be a list or tuple, got {type(params).__name__}")
        p = _json_text(list(params), "params") if len(params) > 0 else None
        rows: List[JSONObject] = _loads(self._buffer(_capi.pier_db_query, s, p))
        return rows

    def state(self, collection: str, id: str) -> str:
        """The sync state of a record (live or tombstone): ``"synced"``, ``"pending"``,
        ``"conflicted"`` or ``"rejected"``."""
        out = c_int()
        check(_capi.pier_db_state(self._handle, byref(out), _text(collection, "collection name"), _text(id, "record id")))
        return _STATES.get(out.value, f"unknown ({out.value})")

    def metadata(self, collection: str, id: str) -> JSONObject:
        """All sync metadata of a record, live or tombstone: collection, id, body, scope,
        is_from_server, is_modified, is_active, base_version, hlc, local_seq,
        changed_fields, server_body, server_version, sync_state."""
        data = self._buffer(_capi.pier_db_metadata, _text(collection, "collection name"), _text(id, "record id"))
        meta: JSONObject = _loads(data)
        return meta

    @property
    def client_id(self) -> str:
        """The store's client id: a random UUID fixed when the store was created."""
        out = c_void_p()
        rc = _capi.pier_db_client_id(self._handle, byref(out))
        try:
            check(rc)
            return ctypes.string_at(out.value).decode("utf-8") if out.value else ""
        finally:
            _capi.pier_free(out)

    def info(self) -> JSONObject:
        """A summary of the store (what ``pier inspect`` prints): path, schema_version,
        client_id, pull_cursor, pending, conflicts and per-collection counts."""
        summary: JSONObject = _loads(self._buffer(_capi.pier_db_info))
        return summary

    # -- encryption at rest ------------------------------------------------------------

    def change_key(self, *, passphrase: Optional[str] = None, key: Optional[bytes] = None, kdf_iterations: Optional[int] = None) -> None:
        """Changes the passphrase (or raw key) of this encrypted store. O(1): the data key
        is rewrapped, no page is rewritten; other connections may stay open.

        Raises:
            StateError: the store is not encrypted.
        """
        made = make_key(passphrase, key, kdf_iterations)
        if made is None:
            raise InvalidError("give the new passphrase or a 32-byte key")
        check(_capi.pier_db_change_key(self._handle, byref(made[0])))

    def rekey(self, *, passphrase: Optional[str] = None, key: Optional[bytes] = None, kdf_iterations: Optional[int] = None) -> None:
        """Rotates the data key: every page is rewritten under a new random key, crash-safely
        (a temporary file, then a rename). The new key is wrapped by the given passphrase or
        key, or by the current one when neither is given. No other connection may have the
        store open.

        Raises:
            BusyError: another connection has the store open.
            StateError: the store is not encrypted, or a transaction is open.
        """
        made = make_key(passphrase, key, kdf_iterations)
        check(_capi.pier_db_rekey(self._handle, None if made is None else byref(made[0])))

    # -- transactions -----------------------------------------------------------------

    def begin(self) -> None:
        """Opens a transaction (prefer ``with db.transaction():``).

        Raises:
            StateError: one is already open (transactions do not nest).
        """
        check(_capi.pier_db_begin(self._handle))

    def commit(self) -> None:
        """Commits the open transaction. Raises StateError when none is open."""
        check(_capi.pier_db_commit(self._handle))

    def rollback(self) -> None:
        """Discards the open transaction. Raises StateError when none is open."""
        check(_capi.pier_db_rollback(self._handle))

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Database"]:
        """Groups writes: committed when the block ends, rolled back if it raises.

        ::

            with db.transaction():
                db.put("orders", order_id, order)
                db.patch("customers", customer_id, {"last_order": order_id})

        A write that fails inside the block leaves the transaction open and unchanged by
        that write; the exception still rolls everything back unless it is caught inside
        the block. Nested use raises StateError.
        """
        self.begin()
        try:
            yield self
        except BaseException:
            try:
                self.rollback()
            except Exception:
                # The store was closed inside the block (which rolled back already), or
                # the rollback failed; the block's own exception is the one that matters.
                pass
            raise
        try:
            self.commit()
        except BaseException:
            try:
                self.rollback()  # a commit that failed (busy, I/O) may leave it open
            except Exception:
                pass
            raise

    # -- sync -------------------------------------------------------------------------

    def sync(
        self,
        server: Optional[Server] = None,
        *,
        identity: Optional[Identity] = None,
        transport: Optional[Transport] = None,
        url: Optional[str] = None,
        token: Optional[str] = None,
        timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        retries: Optional[int] = None,
        retry_delay: Optional[float] = None,
        retry_max_delay: Optional[float] = None,
        ca_file: Optional[str] = None,
        max_response_bytes: Optional[int] = None,
        max_batch_changes: Optional[int] = None,
        max_batch_bytes: Optional[int] = None,
        pull_max_records: Optional[int] = None,
        pull_max_bytes: Optional[int] = None,
        block_only_conflicted: bool = False,
        progress: Optional[ProgressCallback] = None,
        resolver: Optional[ConflictResolver] = None,
    ) -> SyncReport:
        """Pushes every pending change in batches, then pulls until the server has nothing more.

        Give exactly one of ``server`` (an in-process ``pier.Server``, with an optional
        ``identity``; none is a trusted local identity), ``url``, the base URL of a Pier
        server (``"https://sync.example.com"``) reached by the library's built-in HTTP
        transport (each round trip is ``POST <url>/v1/sync``), or ``transport``, a
        function that sends the request frame to the server and returns the response frame
        (bytes -> bytes).

        With ``url``, connection failures, timeouts and the statuses 429, 500, 502, 503 and
        504 are retried with exponential backoff and full jitter, waiting at least the
        server's ``Retry-After`` (up to ``retry_max_delay``); a resent batch is answered
        from the server's stored results, so nothing applies twice. Other 4xx statuses are
        not retried. The call runs in the library with the GIL released, so other Python
        threads keep running. During a long pull the library asks for the next page while
        it applies the current one (on a helper thread of its own; callbacks still run on
        the calling thread).

        Each response is applied in one local transaction, so an interrupted sync resumes
        where it stopped and never loses a local change; a batch whose reply was lost is
        sent again by the next sync, and the server applies nothing twice.

        Args:
            token: with ``url``: sent as ``Authorization: Bearer <token>``.
            timeout: with ``url``: seconds one request may take (default 60).
            connect_timeout: with ``url``: seconds to wait for a connection (default 10).
            retries: with ``url``: tries after the first for a transient failure
                (default 4; 0 never retries).
            retry_delay, retry_max_delay: with ``url``: the backoff of the first retry and
                the longest wait between tries, in seconds (default 0.2 and 10).
            ca_file: with ``url``: a PEM file of CA certificates to verify the server with
                instead of the system's (a test server's self-signed certificate).
            max_response_bytes: with ``url``: larger responses are refused with
                ProtocolError (default 80 MiB).
            max_batch_changes, max_batch_bytes: push batch limits (default 500 changes,
                1 MiB).
            pull_max_records, pull_max_bytes: pull page limits (default 1000 records,
                1 MiB).
            block_only_conflicted: unresolved conflicts block only their own records
                instead of the whole sync.
            progress: ``progress(pier.SyncProgress)`` after each round trip.
            resolver: ``resolver(pier.Conflict)`` settles conflicts as they arrive:
                returns ``pier.KEEP_LOCAL``, ``pier.KEEP_SERVER``, a merged body (dict or
                JSON text), or ``None`` to leave the conflict for ``resolve``.

        Callbacks run on this thread and must not use this Database (StateError; open a
        second ``pier.Database`` on the file to read it). An exception raised by a
        callback is logged to the ``"pier"`` logger and raised here once the library has
        returned: a raising transport ends the sync as PIER_ENETWORK would; after a
        raising progress callback or resolver, a host-transport sync stops before its
        next round trip (an in-process sync runs to its end); a raising resolver leaves
        its conflict for the user. The PierError of the failed call is the exception's
        ``__cause__``.

        Returns:
            a ``pier.SyncReport``. A PierError raised by sync carries the report of what
            was done as ``error.sync_report``.

        Raises:
            ConflictError: unresolved conflicts block the sync (the message lists them).
            NetworkError: the transport failed, or the server stayed unreachable or
            overloaded through every retry. AuthError: the server refused the token.
            ForbiddenError: the identity may not sync this store. LimitError: the server
            refused a request as too large. ProtocolError: a malformed response. StateError: a transaction is
            open on this Database. InvalidError: bad options.
        """
        handle = self._handle
        self._syncing.active = True
        try:
            return _sync.run(
                handle,
                server,
                identity,
                transport,
                url,
                _sync.HTTPOptions(
                    token=token,
                    timeout=timeout,
                    connect_timeout=connect_timeout,
                    retries=retries,
                    retry_delay=retry_delay,
                    retry_max_delay=retry_max_delay,
                    ca_file=ca_file,
                    max_response_bytes=max_response_bytes,
                ),
                max_batch_changes,
                max_batch_bytes,
                pull_max_records,
                pull_max_bytes,
                block_only_conflicted,
                progress,
                resolver,
            )
        finally:
            self._syncing.active = False

    def conflicts(self) -> List[Conflict]:
        """The conflicts waiting on this device, oldest first."""
        rows = _loads(self._buffer(_capi.pier_db_conflicts))
        return [Conflict._from_json(row) for row in rows]

    def resolve(self, conflict: Union[str, Conflict], resolution: Union[Resolution, Body], body: Optional[Body] = None) -> None:
        """Settles a conflict.

        ``resolution`` is ``pier.KEEP_LOCAL`` (this device's version), ``pier.KEEP_SERVER``
        (the server's), or a merged body (a dict or JSON text; ``pier.MERGED`` with
        ``body`` says the same). Keeping the local version or a merged body makes a new
        local write based on the server's version, which the next sync pushes.

        Raises:
            NotFoundError: no such conflict (already resolved?).
            InvalidError: a merged body that is not a JSON object.
        """
        conflict_id = conflict.conflict_id if isinstance(conflict, Conflict) else conflict
        cid = _text(conflict_id, "conflict_id")
        code, data = _sync.resolution_arguments(resolution, body)
        check(_capi.pier_db_resolve(self._handle, cid, code, data, len(data) if data is not None else 0))

    def set_collection_mode(self, collection: str, mode: Union[CollectionMode, str], purge_after_push: bool = False) -> None:
        """Sets how ``collection`` takes part in sync; the setting is kept in the store.

        ``mode`` is a ``pier.CollectionMode`` or its name: ``"two_way"`` (the default),
        ``"pull_only"`` (reference data; local writes raise ReadOnlyError),
        ``"push_only"`` (telemetry, never pulled; with ``purge_after_push`` records are
        removed locally once the server has them) or ``"local_only"`` (never synced).

        Raises:
            InvalidError: an unknown mode, or ``purge_after_push`` for a mode other than
                push-only.
        """
        name = _text(collection, "collection name")
        value = _sync._mode(mode)
        if not isinstance(purge_after_push, bool):
            raise TypeError(f"purge_after_push must be bool, got {type(purge_after_push).__name__}")
        check(_capi.pier_db_set_collection_mode(self._handle, name, value, 1 if purge_after_push else 0))
