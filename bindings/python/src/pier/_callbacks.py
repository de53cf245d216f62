"""Python callbacks that C calls during one Pier call, and their exceptions.

A callback must never let an exception unwind into C. Each trampoline catches what the
Python function raised, records it in the innermost *frame* of the calling thread, and
returns a status the library understands (an error code, "manual", "leave"). The
binding function that made the C call opened that frame and, once C has returned, raises
the first recorded exception (``finish``), so nothing vanishes.

Frames nest: a host transport called during ``Database.sync`` may call ``Server.handle``,
whose server resolver may raise; that exception belongs to ``Server.handle`` (and from
there to the transport), not to the outer sync.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator, List, Optional

from . import _capi
from . import errors as _errors
from ._log import logger
from .errors import PierError, error_class

__all__ = ["Frame", "frame", "record", "failed", "finish"]


class Frame:
    """The exceptions raised by callbacks during one C call on one thread."""

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: List[BaseException] = []


_local = threading.local()


def _stack() -> List[Frame]:
    stack: Optional[List[Frame]] = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


@contextlib.contextmanager
def frame() -> Iterator[Frame]:
    """Opens a frame for one C call; callbacks on this thread record into it."""
    current = Frame()
    stack = _stack()
    stack.append(current)
    try:
        yield current
    finally:
        stack.remove(current)


def record(error: BaseException, what: str) -> None:
    """Keeps ``error`` (raised by the callback described by ``what``) for the C call in
    progress on this thread, and logs an ``Exception`` to the ``"pier"`` logger."""
    if isinstance(error, Exception):
        try:
            logger.error("%s raised %s: %s", what, type(error).__name__, error, exc_info=error)
        except Exception:  # pragma: no cover - a broken logging setup must not reach C
            pass
    _note(error, f"raised by {what}")
    stack = _stack()
    if stack:
        stack[-1].errors.append(error)
    else:  # pragma: no cover - a callback outside any binding call (direct _capi use)
        _errors.defer(error)


def _note(error: BaseException, text: str) -> None:
    add_note = getattr(error, "add_note", None)  # Python 3.11+
    if add_note is not None:
        try:
            add_note(text)
        except Exception:  # pragma: no cover
            pass


def failed(current: Frame) -> bool:
    """True once a callback of this frame has raised (later callbacks may stop early)."""
    return bool(current.errors)


def finish(current: Frame, rc: int) -> None:
    """Raises what the C call and its callbacks produced, like ``errors.check``.

    With no callback exception this is ``check(rc)``. Otherwise the first callback
    exception is raised (later ones are attached as notes); when the call also failed,
    the ``PierError`` of its status code is the exception's ``__cause__``.
    """
    if not current.errors:
        _errors.check(rc)
        return
    deferred = _errors._deferred.__dict__.pop("error", None)
    if deferred is not None:
        current.errors.append(deferred)
    first = current.errors[0]
    for extra in current.errors[1:]:
        _note(first, f"and then another callback raised {type(extra).__name__}: {extra}")
    if rc != _capi.PIER_OK:
        message = (_capi.pier_errmsg() or b"").decode("utf-8", "replace")
        cause: PierError = error_class(rc)(message, rc)
        raise first from cause
    raise first
