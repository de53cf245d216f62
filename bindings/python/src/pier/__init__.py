"""Pier: an embeddable offline-first sync library (Python binding of libpier).

::

    import pier

    with pier.Database("field.pier") as db:
        customer = pier.new_id()
        db.put("customers", customer, {"name": "Ada", "city": "London"})
        db.patch("customers", customer, {"city": "Paris"})
        print(db.get("customers", customer))
        print(db.query("SELECT id, json_extract(body, '$.city') AS city FROM records"))

    with pier.Server("master.pier", {"collections": {"customers": {"policy": "manual"}}}) as server:
        with pier.Database("field.pier") as db:
            report = db.sync(server)          # or db.sync(transport=post_to_my_server)
            for conflict in db.conflicts():
                db.resolve(conflict, pier.KEEP_LOCAL)

The library is found through the ``PIER_LIBRARY`` environment variable, the repository's
``build/lib`` folder, or the system loader; see ``pier._lib``.
"""

from __future__ import annotations

from ._log import LogCallback, LogLevel, log_to_python, logger, set_log_callback
from .database import Body, Database, JSONObject, library_path, new_id, version, version_number
from .encryption import DEFAULT_KDF_ITERATIONS, decrypt_file, encrypt_file, encryption_info
from .server import KEEP_LOCAL, KEEP_SERVER, MANUAL, MERGED, REJECT, Identity, Resolution, ResolverInput, Server, ServerResolver
from .sync import CollectionMode, Conflict, ConflictResolver, ProgressCallback, SyncProgress, SyncReport, Transport
from . import errors as _errors
from .errors import (
    AuthError,
    BusyError,
    CancelledError,
    ClosedError,
    ConflictError,
    CorruptError,
    ForbiddenError,
    InternalError,
    InvalidError,
    LimitError,
    NetworkError,
    NoMemoryError,
    NotADatabaseError,
    NotFoundError,
    PierError,
    PierIOError,
    ProtocolError,
    ReadOnlyError,
    StateError,
    VersionError,
    WrongKeyError,
)

__version__ = "0.1.0"

__all__ = [
    "Database",
    "encrypt_file",
    "decrypt_file",
    "encryption_info",
    "DEFAULT_KDF_ITERATIONS",
    "Server",
    "Identity",
    "SyncReport",
    "SyncProgress",
    "Conflict",
    "CollectionMode",
    "Resolution",
    "ResolverInput",
    "KEEP_LOCAL",
    "KEEP_SERVER",
    "MERGED",
    "REJECT",
    "MANUAL",
    "Transport",
    "ProgressCallback",
    "ConflictResolver",
    "ServerResolver",
    "Body",
    "JSONObject",
    "new_id",
    "version",
    "version_number",
    "library_path",
    "LogLevel",
    "LogCallback",
    "set_log_callback",
    "log_to_python",
    "logger",
] + [name for name in _errors.__all__ if name.endswith("Error")]
