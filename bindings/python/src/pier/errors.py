"""Pier's exceptions, one class per status code of pier.h.

Every failing C call goes through ``check``, which reads ``pier_errmsg()`` at once (it
is per thread and the next failing call overwrites it) and raises the class mapped from
the status code. Classes also inherit a builtin where one fits, so ordinary Python
handlers work: ``except KeyError`` catches a missing record, ``except ValueError`` an
invalid argument or a closed database, ``except OSError`` an I/O error.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Tuple, Type

from . import _capi

__all__ = [
    "PierError",
    "InternalError",
    "InvalidError",
    "NotFoundError",
    "ClosedError",
    "NotADatabaseError",
    "VersionError",
    "ReadOnlyError",
    "StateError",
    "BusyError",
    "PierIOError",
    "NoMemoryError",
    "CorruptError",
    "WrongKeyError",
    "ConflictError",
    "ProtocolError",
    "NetworkError",
    "AuthError",
    "ForbiddenError",
    "LimitError",
    "CancelledError",
    "check",
    "error_class",
]


def _static(text: Optional[bytes]) -> str:
    return (text or b"").decode("utf-8", "replace")


class PierError(Exception):
    """A Pier call failed.

    Attributes:
        code: the negative ``PIER_E...`` status code.
        name: the code's C constant, such as ``"PIER_EINVALID"``.
        message: what went wrong and what to do about it (``pier_errmsg()``).
    """

    #: The status code of the class; instances may carry another (unknown) code.
    default_code: int = _capi.PIER_ERROR

    code: int
    message: str

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        # One positional argument only: OSError-derived subclasses would otherwise read
        # extra arguments as errno and strerror.
        super().__init__(message)
        self.message = message
        self.code = type(self).default_code if code is None else code

    @property
    def name(self) -> str:
        """The C constant of ``code``, such as ``"PIER_EINVALID"``."""
        return _static(_capi.pier_errname(self.code))

    @property
    def summary(self) -> str:
        """The short fixed description of ``code`` (``pier_errstr``)."""
        return _static(_capi.pier_errstr(self.code))

    def __str__(self) -> str:
        return self.message or self.summary

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code} {self.name})"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.message, self.code))


class InternalError(PierError):
    """PIER_ERROR: a bug in Pier; the message has details."""

    default_code = _capi.PIER_ERROR


class InvalidError(PierError, ValueError):
    """PIER_EINVALID: a bad name or id, a body that is not a JSON object, too large, ..."""

    default_code = _capi.PIER_EINVALID


class NotFoundError(PierError, KeyError):
    """PIER_ENOTFOUND: no such record, store file or object."""

    default_code = _capi.PIER_ENOTFOUND


class ClosedError(PierError, ValueError):
    """PIER_ECLOSED: the database was closed (a ValueError, like I/O on a closed file)."""

    default_code = _capi.PIER_ECLOSED


class NotADatabaseError(PierError):
    """PIER_ENOTDB: the file is not a Pier store; it was left untouched."""

    default_code = _capi.PIER_ENOTDB


class VersionError(PierError):
    """PIER_EVERSION: the store was written by a newer Pier."""

    default_code = _capi.PIER_EVERSION


class ReadOnlyError(PierError):
    """PIER_EREADONLY: a write on a read-only store, or a query that would write."""

    default_code = _capi.PIER_EREADONLY


class StateError(PierError):
    """PIER_ESTATE: the call is not valid now (a nested transaction, commit with none open)."""

    default_code = _capi.PIER_ESTATE


class BusyError(PierError):
    """PIER_EBUSY: another connection held the database lock past the busy timeout."""

    default_code = _capi.PIER_EBUSY


class PierIOError(PierError, OSError):
    """PIER_EIO: an I/O error or a full disk; nothing half-written survives."""

    default_code = _capi.PIER_EIO


class NoMemoryError(PierError, MemoryError):
    """PIER_ENOMEM: out of memory."""

    default_code = _capi.PIER_ENOMEM


class CorruptError(PierError):
    """PIER_ECORRUPT: stored data failed an integrity check."""

    default_code = _capi.PIER_ECORRUPT


class WrongKeyError(PierError):
    """PIER_EKEY: wrong or missing encryption key or passphrase."""

    default_code = _capi.PIER_EKEY


class ConflictError(PierError):
    """PIER_ECONFLICT: unresolved conflicts block the operation."""

    default_code = _capi.PIER_ECONFLICT


class ProtocolError(PierError):
    """PIER_EPROTOCOL: a malformed, truncated or oversized frame or message."""

    default_code = _capi.PIER_EPROTOCOL


class NetworkError(PierError, ConnectionError):
    """PIER_ENETWORK: the sync server could not be reached or the link failed."""

    default_code = _capi.PIER_ENETWORK


class AuthError(PierError):
    """PIER_EAUTH: authentication failed (bad, expired or missing credentials)."""

    default_code = _capi.PIER_EAUTH


class ForbiddenError(PierError, PermissionError):
    """PIER_EFORBIDDEN: authenticated, but not allowed to do this."""

    default_code = _capi.PIER_EFORBIDDEN


class LimitError(PierError):
    """PIER_ELIMIT: a configured limit was exceeded."""

    default_code = _capi.PIER_ELIMIT


class CancelledError(PierError):
    """PIER_ECANCELLED: a callback asked to stop, or the operation was interrupted."""

    default_code = _capi.PIER_ECANCELLED


_CLASSES: Dict[int, Type[PierError]] = {
    cls.default_code: cls
    for cls in (
        InternalError,
        InvalidError,
        NotFoundError,
        ClosedError,
        NotADatabaseError,
        VersionError,
        ReadOnlyError,
        StateError,
        BusyError,
        PierIOError,
        NoMemoryError,
        CorruptError,
        WrongKeyError,
        ConflictError,
        ProtocolError,
        NetworkError,
        AuthError,
        ForbiddenError,
        LimitError,
        CancelledError,
    )
}


def error_class(code: int) -> Type[PierError]:
    """The exception class of a status code (PierError for codes this binding does not know)."""
    return _CLASSES.get(code, PierError)


# Exceptions that must not be swallowed (KeyboardInterrupt, SystemExit) but were raised
# inside a callback that C called on this thread. ``check`` re-raises them once the C
# call has returned.
_deferred = threading.local()


def defer(error: BaseException) -> None:
    """Keeps ``error`` to be raised by the next ``check`` on this thread."""
    if getattr(_deferred, "error", None) is None:
        _deferred.error = error


def check(rc: int) -> None:
    """Raises the exception mapped from ``rc`` unless it is PIER_OK.

    Must be called right after the C call, on the same thread: the message comes from the
    thread-local ``pier_errmsg()``.
    """
    if rc != _capi.PIER_OK:
        message = _static(_capi.pier_errmsg())
        error = _deferred.__dict__.pop("error", None)
        raised = error_class(rc)(message, rc)
        if error is not None:
            raise error from raised
        raise raised
    error = _deferred.__dict__.pop("error", None)
    if error is not None:
        raise error
