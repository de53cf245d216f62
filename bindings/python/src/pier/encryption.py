"""Encryption at rest (docs/SECURITY.md): keys, and the file-level operations.

Open an encrypted store with ``pier.Database(path, passphrase=...)`` or ``key=<32 bytes>``;
change its passphrase with ``db.change_key(...)``, rotate its data key with ``db.rekey()``;
encrypt a plain store with ``encrypt_file``, write a plain copy with ``decrypt_file``,
and read a file's key header without the key with ``encryption_info``.
"""

from __future__ import annotations

import ctypes
from ctypes import byref, c_size_t, c_void_p
from typing import Any, List, Optional, Tuple

from . import _capi
from ._convert import JSONObject, PathLike, _loads, _path
from .errors import InvalidError, check

DEFAULT_KDF_ITERATIONS = _capi.PIER_DEFAULT_KDF_ITERATIONS
MIN_KDF_ITERATIONS = _capi.PIER_MIN_KDF_ITERATIONS


def make_key(
    passphrase: Optional[str], key: Optional[bytes], kdf_iterations: Optional[int]
) -> Optional[Tuple[_capi.pier_key, List[Any]]]:
    """A ``pier_key`` (and the buffers it points into, to keep alive for the call), or
    None when neither a passphrase nor a key is given."""
    if passphrase is None and key is None:
        if kdf_iterations is not None:
            raise InvalidError("kdf_iterations needs a passphrase")
        return None
    if passphrase is not None and key is not None:
        raise InvalidError("give a passphrase or a key, not both")
    value = _capi.key_init()
    keep: List[Any] = []
    if passphrase is not None:
        if not isinstance(passphrase, str):
            raise TypeError(f"passphrase must be str, got {type(passphrase).__name__}")
        if not passphrase:
            raise InvalidError("the passphrase must not be empty")
        encoded = passphrase.encode("utf-8")
        if b"\0" in encoded:
            raise InvalidError("the passphrase must not contain NUL characters")
        value.passphrase = encoded
        keep.append(encoded)
    else:
        if not isinstance(key, (bytes, bytearray, memoryview)):
            raise TypeError(f"key must be 32 bytes, got {type(key).__name__}")
        raw = ctypes.create_string_buffer(bytes(key), len(key))
        keep.append(raw)
        value.raw_key = ctypes.cast(raw, c_void_p)
        value.raw_key_len = len(key)
    if kdf_iterations is not None:
        if isinstance(kdf_iterations, bool) or not isinstance(kdf_iterations, int):
            raise TypeError("kdf_iterations must be an int")
        if not MIN_KDF_ITERATIONS <= kdf_iterations <= 0xFFFFFFFF:
            raise InvalidError(f"kdf_iterations must be {MIN_KDF_ITERATIONS}-{0xFFFFFFFF}, got {kdf_iterations}")
        value.kdf_iterations = kdf_iterations
    return value, keep


def _required(passphrase: Optional[str], key: Optional[bytes], kdf_iterations: Optional[int]) -> Tuple[_capi.pier_key, List[Any]]:
    made = make_key(passphrase, key, kdf_iterations)
    if made is None:
        raise InvalidError("give a passphrase or a 32-byte key")
    return made


def encrypt_file(
    path: PathLike,
    dest: Optional[PathLike] = None,
    *,
    passphrase: Optional[str] = None,
    key: Optional[bytes] = None,
    kdf_iterations: Optional[int] = None,
) -> None:
    """Encrypts the plain store at ``path`` into ``dest`` (which must not exist), or in
    place when ``dest`` is None (crash-safe: a temporary file, then a rename). No
    ``Database`` may have the file open.

    Raises:
        InvalidError: bad key, ``dest`` exists, or the file is already encrypted.
        BusyError: another connection has the file open.
    """
    value, keep = _required(passphrase, key, kdf_iterations)
    check(_capi.pier_encrypt_file(_path(path), None if dest is None else _path(dest), byref(value)))
    del keep


def decrypt_file(
    path: PathLike,
    dest: PathLike,
    *,
    passphrase: Optional[str] = None,
    key: Optional[bytes] = None,
) -> None:
    """Writes a plain copy of the encrypted store at ``path`` to ``dest`` (which must not
    exist). The encrypted file is not modified.

    Raises:
        WrongKeyError: the passphrase or key does not open the file.
        InvalidError: ``dest`` exists.
    """
    value, keep = _required(passphrase, key, None)
    check(_capi.pier_decrypt_file(_path(path), byref(value), _path(dest)))
    del keep


def encryption_info(path: PathLike) -> JSONObject:
    """What the key header says, without the key: ``{"encrypted": False}`` for a plain file,
    else cipher, kdf, iterations, page_size, reserve_bytes, header_bytes, key_generation
    and interrupted_key_change.

    Raises:
        NotFoundError: no such file.
        CorruptError: the key header is damaged.
    """
    out = c_void_p()
    length = c_size_t()
    rc = _capi.pier_encryption_info(_path(path), byref(out), byref(length))
    try:
        check(rc)
        info: JSONObject = _loads(ctypes.string_at(out.value, length.value) if out.value else b"{}")
        return info
    finally:
        _capi.pier_free(out)
