"""Finds and loads libpier.so, refusing a library of another major version.

Search order:

1. ``PIER_LIBRARY``: the path of the library to load. When it is set, nothing else is
   tried, so a wrong path is an error rather than a silent fallback.
2. The repository's build folders: walking up from this file, ``build/lib/libpier.so.0``
   and ``build-*/lib/libpier.so.0`` (what ``scripts/build-lib`` produces), so the tests
   and examples run from a checkout without installing anything.
3. The system loader: ``ctypes.util.find_library("pier")``, then ``libpier.so.0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path
from typing import List, Optional

#: The major version of the C API this binding was written against (PIER_VERSION_MAJOR).
BINDING_VERSION_MAJOR = 0

_SONAME = f"libpier.so.{BINDING_VERSION_MAJOR}"


def _build_folder_candidates(start: Path) -> List[Path]:
    """Libraries in ``build/lib`` and ``build-*/lib`` of ``start`` and its parents."""
    found: List[Path] = []
    for folder in [start, *start.parents]:
        candidate = folder / "build" / "lib" / _SONAME
        if candidate.is_file():
            found.append(candidate)
        if folder.is_dir():
            try:
                variants = sorted(folder.glob("build-*/lib/" + _SONAME))
            except OSError:
                variants = []
            found.extend(path for path in variants if path.is_file())
        if found:
            # The nearest checkout wins; never mix libraries of two checkouts.
            return found
    return found


def _candidates() -> List[str]:
    here = Path(__file__).resolve().parent
    candidates = [str(path) for path in _build_folder_candidates(here)]
    system = ctypes.util.find_library("pier")
    if system:
        candidates.append(system)
    candidates.append(_SONAME)
    return candidates


def _check_version(library: ctypes.CDLL, where: str) -> None:
    function = library.pier_version_number
    function.argtypes = []
    function.restype = ctypes.c_int
    number = int(function())
    major = number // 10000
    if major != BINDING_VERSION_MAJOR:
        version = f"{major}.{number // 100 % 100}.{number % 100}"
        raise ImportError(
            f"{where} is libpier {version}, but this binding needs major version "
            f"{BINDING_VERSION_MAJOR}; install a matching libpier or point PIER_LIBRARY at one"
        )


def load(path: Optional[str] = None) -> ctypes.CDLL:
    """Loads libpier: ``path`` if given, else as the module docstring describes.

    Raises ImportError when no library is found or its major version differs.
    """
    explicit = path if path is not None else os.environ.get("PIER_LIBRARY")
    if explicit:
        if not os.path.exists(explicit):
            raise ImportError(f"PIER_LIBRARY is {explicit!r}, but no such file exists")
        try:
            library = ctypes.CDLL(explicit)
        except OSError as error:
            raise ImportError(f"cannot load libpier from PIER_LIBRARY={explicit!r}: {error}") from error
        _check_version(library, explicit)
        return library

    errors: List[str] = []
    for candidate in _candidates():
        try:
            library = ctypes.CDLL(candidate)
        except OSError as error:
            errors.append(f"{candidate}: {error}")
            continue
        _check_version(library, candidate)
        return library
    raise ImportError(
        "cannot find libpier: build it with scripts/build-lib, install it on the library "
        "path, or set PIER_LIBRARY to its path (tried: " + "; ".join(errors) + ")"
    )


#: The loaded library; every ctypes declaration in _capi hangs off it.
library: ctypes.CDLL = load()

#: Where it came from (for error messages and ``pier.library_path()``).
path: str = getattr(library, "_name", "")
