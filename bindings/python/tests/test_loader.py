"""Finding libpier: PIER_LIBRARY, the build folders, the system loader; refusing a
library of another major version."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

import pytest

import pier
from pier import _lib

SRC = Path(pier.__file__).resolve().parent.parent


def run_python(code: str, library: Optional[str]) -> subprocess.CompletedProcess[str]:
    env: Dict[str, str] = {key: value for key, value in os.environ.items() if key != "PIER_LIBRARY"}
    env["PYTHONPATH"] = str(SRC)
    if library is not None:
        env["PIER_LIBRARY"] = library
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_the_loaded_library_is_reported() -> None:
    assert pier.library_path()
    assert _lib.library.pier_version_number() // 10000 == _lib.BINDING_VERSION_MAJOR


def test_pier_library_overrides_the_search() -> None:
    real = os.path.realpath(pier.library_path()) if os.path.exists(pier.library_path()) else None
    if real is None:
        pytest.skip("the library was found by the system loader; no path to point at")
    result = run_python("import pier; print(pier.library_path()); print(pier.version())", real)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [real, pier.version()]


def test_a_missing_pier_library_is_a_clear_import_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "libpier.so.0")
    result = run_python("import pier", missing)
    assert result.returncode != 0
    assert f"ImportError: PIER_LIBRARY is {missing!r}, but no such file exists" in result.stderr


def test_a_file_that_is_not_a_library_is_a_clear_import_error(tmp_path: Path) -> None:
    bogus = tmp_path / "libpier.so.0"
    bogus.write_text("not an ELF file")
    result = run_python("import pier", str(bogus))
    assert result.returncode != 0
    assert "ImportError: cannot load libpier from PIER_LIBRARY" in result.stderr


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_a_library_of_another_major_version_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "fake.c"
    source.write_text("int pier_version_number(void) { return 10203; }\n")
    library = tmp_path / "libpier.so.1"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    result = run_python("import pier", str(library))
    assert result.returncode != 0
    assert f"ImportError: {library} is libpier 1.2.3, but this binding needs major version 0" in result.stderr


def test_build_folders_are_found_walking_up(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    deep = checkout / "bindings" / "python" / "src" / "pier"
    deep.mkdir(parents=True)
    for build in ("build", "build-asan"):
        (checkout / build / "lib").mkdir(parents=True)
        (checkout / build / "lib" / "libpier.so.0").write_bytes(b"")
    found = _lib._build_folder_candidates(deep)
    assert found == [checkout / "build" / "lib" / "libpier.so.0", checkout / "build-asan" / "lib" / "libpier.so.0"]
    assert _lib._build_folder_candidates(tmp_path / "elsewhere") == []
