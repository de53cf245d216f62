"""Status codes map to exception classes, which also inherit the natural builtins."""

from __future__ import annotations

import pickle
import threading
from typing import Dict, List, Type

import pytest

import pier
from pier import _capi, errors

EXPECTED: Dict[int, Type[pier.PierError]] = {
    -1: pier.InternalError,
    -2: pier.InvalidError,
    -3: pier.NotFoundError,
    -4: pier.ClosedError,
    -5: pier.NotADatabaseError,
    -6: pier.VersionError,
    -7: pier.ReadOnlyError,
    -8: pier.StateError,
    -9: pier.BusyError,
    -10: pier.PierIOError,
    -11: pier.NoMemoryError,
    -12: pier.CorruptError,
    -13: pier.WrongKeyError,
    -14: pier.ConflictError,
    -15: pier.ProtocolError,
    -16: pier.NetworkError,
    -17: pier.AuthError,
    -18: pier.ForbiddenError,
    -19: pier.LimitError,
    -20: pier.CancelledError,
}


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_every_status_code_has_its_class(code: int) -> None:
    cls = errors.error_class(code)
    assert cls is EXPECTED[code]
    assert cls.default_code == code
    error = cls("message")
    assert error.code == code
    assert error.name == _capi.pier_errname(code).decode()
    assert error.summary == _capi.pier_errstr(code).decode()
    assert isinstance(error, pier.PierError)


@pytest.mark.parametrize(
    "cls, builtin",
    [
        (pier.InvalidError, ValueError),
        (pier.NotFoundError, KeyError),
        (pier.ClosedError, ValueError),
        (pier.PierIOError, OSError),
        (pier.NoMemoryError, MemoryError),
        (pier.NetworkError, ConnectionError),
        (pier.ForbiddenError, PermissionError),
    ],
)
def test_classes_inherit_natural_builtins(cls: Type[pier.PierError], builtin: Type[BaseException]) -> None:
    error = cls("what went wrong")
    assert isinstance(error, builtin)
    with pytest.raises(builtin):
        raise error


def test_str_is_the_message_even_for_key_and_os_errors() -> None:
    assert str(pier.NotFoundError("no record \"a\"")) == 'no record "a"'  # KeyError would quote it
    io = pier.PierIOError("disk full")
    assert str(io) == "disk full" and io.args == ("disk full",)  # OSError would read errno
    assert repr(pier.InvalidError("x")) == "InvalidError('x', code=-2 PIER_EINVALID)"
    assert str(pier.LimitError()) == "limit exceeded"  # no message: the code's summary


def test_errors_pickle_round_trip() -> None:
    for cls in EXPECTED.values():
        error = pickle.loads(pickle.dumps(cls("message")))
        assert type(error) is cls and error.message == "message" and error.code == cls.default_code
    unknown = pickle.loads(pickle.dumps(pier.PierError("odd", -99)))
    assert unknown.code == -99


def test_check_passes_ok_and_raises_the_mapped_class_with_errmsg() -> None:
    assert errors.check(0) is None
    handle = _capi.pier_db_p()
    rc = _capi.pier_db_open(handle, b"", None)  # empty path: invalid
    with pytest.raises(pier.InvalidError) as caught:
        errors.check(rc)
    assert caught.value.message == "path must not be empty"
    assert caught.value.name == "PIER_EINVALID"


def test_unknown_codes_raise_the_base_class() -> None:
    with pytest.raises(pier.PierError) as caught:
        errors.check(-99)
    assert type(caught.value) is pier.PierError
    assert caught.value.code == -99
    assert caught.value.name == "PIER_E_UNKNOWN"


def test_messages_are_per_thread() -> None:
    """pier_errmsg is thread-local; check() reads it on the failing thread at once."""
    results: List[str] = []
    barrier = threading.Barrier(4)

    def fail(n: int) -> None:
        barrier.wait()
        for _ in range(200):
            try:
                errors.check(_capi.pier_log_set_callback(_capi.pier_log_cb(), None, 100 + n))
            except pier.InvalidError as error:
                if not error.message.endswith(f"got {100 + n}"):
                    results.append(error.message)

    threads = [threading.Thread(target=fail, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == []
