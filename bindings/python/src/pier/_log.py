"""Pier's log lines in Python: a user callback, or the ``"pier"`` logger.

libpier has one process-wide log callback. This module installs a single C trampoline
that lives as long as the process (so C can never call a freed ``CFUNCTYPE``, even on a
thread that read the old callback just before it was replaced) and forwards each line to
the Python function currently installed.

The trampoline never lets an exception escape into C: an ``Exception`` raised by the
user's function is logged to ``logging.getLogger("pier")`` with its traceback (and the
Pier call that produced the line goes on); a ``KeyboardInterrupt`` or ``SystemExit`` is
kept and raised on the calling thread as soon as the Pier call returns.
"""

from __future__ import annotations

import atexit
import enum
import logging
import threading
from typing import Callable, Optional, Union

from . import _capi
from .errors import check, defer

__all__ = ["LogLevel", "LogCallback", "set_log_callback", "log_to_python", "logger"]

#: The logger Pier's lines go to with ``log_to_python``, and where errors raised by a log
#: callback are reported. It has a NullHandler: configure logging to see anything.
logger = logging.getLogger("pier")
logger.addHandler(logging.NullHandler())


class LogLevel(enum.IntEnum):
    """PIER_LOG_* levels."""

    DEBUG = _capi.PIER_LOG_DEBUG
    INFO = _capi.PIER_LOG_INFO
    WARN = _capi.PIER_LOG_WARN
    ERROR = _capi.PIER_LOG_ERROR


#: A log callback: receives the level and the message of one line. It may run on any
#: thread that calls Pier (never on a thread the library starts: the lines of a sync's
#: helper thread are delivered on the thread that called sync) and must not call Pier on
#: the handle that produced the line.
LogCallback = Callable[[LogLevel, str], None]

_PYTHON_LEVELS = {
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARN: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
}

_lock = threading.Lock()
_target: Optional[LogCallback] = None


def _level(value: int) -> Union[LogLevel, int]:
    try:
        return LogLevel(value)
    except ValueError:
        return value


def _trampoline(_ctx: Optional[int], level: int, message: Optional[bytes]) -> None:
    target = _target
    if target is None:
        return
    text = (message or b"").decode("utf-8", "replace")
    try:
        target(_level(level), text)  # type: ignore[arg-type]
    except Exception:
        try:
            logger.exception("the Pier log callback %r raised on the line %r", target, text)
        except Exception:  # pragma: no cover - a broken logging setup must not reach C
            pass
    except BaseException as error:  # KeyboardInterrupt, SystemExit: raise after the call
        defer(error)


# Created once and never released: C may hold this pointer on another thread at any time.
_C_TRAMPOLINE = _capi.pier_log_cb(_trampoline)


def _min_level(level: Union[int, str]) -> int:
    if isinstance(level, bool) or not isinstance(level, (int, str)):
        raise TypeError(f"level must be a pier.LogLevel, an int or a level name, got {type(level).__name__}")
    if isinstance(level, str):
        try:
            return int(LogLevel[level.upper()])
        except KeyError:
            names = ", ".join(member.name.lower() for member in LogLevel)
            raise ValueError(f"level must be one of {names}, got {level!r}") from None
    return int(level)


def set_log_callback(callback: Optional[LogCallback], level: Union[int, str] = LogLevel.INFO) -> None:
    """Installs ``callback(level, message)`` as the receiver of Pier's log lines.

    Replaces any earlier callback (including ``log_to_python``); ``None`` removes it.
    Lines below ``level`` are never formatted. An exception raised by the callback is
    logged to the ``"pier"`` logger and never reaches the library.

    Raises:
        TypeError: callback is not callable, or level is not an int or a name.
        InvalidError: level is outside LogLevel.DEBUG..LogLevel.ERROR.
    """
    global _target
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    min_level = _min_level(level)
    with _lock:
        if callback is None:
            check(_capi.pier_log_set_callback(_capi.pier_log_cb(), None, min_level))
            _target = None
            return
        previous = _target
        _target = callback
        try:
            check(_capi.pier_log_set_callback(_C_TRAMPOLINE, None, min_level))
        except BaseException:
            _target = previous
            raise


def _to_logger(level: LogLevel, message: str) -> None:
    logger.log(_PYTHON_LEVELS.get(level, logging.ERROR), message)


def log_to_python(level: int = logging.INFO) -> None:
    """Sends Pier's log lines to ``logging.getLogger("pier")``.

    ``level`` is a ``logging`` level (``logging.DEBUG`` ... ``logging.ERROR``); lines below
    it are not even formatted by the library. Replaces any callback set with
    ``set_log_callback``.
    """
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"level must be a logging level (int), got {type(level).__name__}")
    if level <= logging.DEBUG:
        pier_level = LogLevel.DEBUG
    elif level <= logging.INFO:
        pier_level = LogLevel.INFO
    elif level <= logging.WARNING:
        pier_level = LogLevel.WARN
    else:
        pier_level = LogLevel.ERROR
    set_log_callback(_to_logger, pier_level)


def _remove_at_exit() -> None:
    """Detaches the callback before the interpreter tears down."""
    global _target
    _target = None
    try:
        _capi.pier_log_set_callback(_capi.pier_log_cb(), None, _capi.PIER_LOG_INFO)
    except Exception:  # pragma: no cover
        pass


atexit.register(_remove_at_exit)
