"""The ctypes layer matches include/pier.h one to one: every function, callback type,
constant, struct (field names, layout, initialiser), and no leftover declarations."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from ctypes import POINTER, c_char, c_char_p, c_double, c_int, c_int64, c_size_t, c_uint, c_void_p
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import pier
from pier import _capi

from conftest import repo_root

ROOT = repo_root()
HEADER = ROOT / "include" / "pier.h" if ROOT else None
needs_header = pytest.mark.skipif(HEADER is None, reason="include/pier.h is not in this checkout")

# C type (as written in pier.h, whitespace-normalised) -> the ctypes type _capi must use.
C_TYPES: Dict[str, Any] = {
    "void": None,
    "int": c_int,
    "unsigned int": c_uint,
    "size_t": c_size_t,
    "const char *": c_char_p,
    "char *": POINTER(c_char),
    "char **": POINTER(c_void_p),  # out-buffers: never auto-converted, freed with pier_free
    "void *": c_void_p,
    "int *": POINTER(c_int),
    "int64_t *": POINTER(c_int64),
    "size_t *": POINTER(c_size_t),
    "const size_t *": POINTER(c_size_t),
    "const char *const *": POINTER(c_char_p),
    "pier_db *": _capi.pier_db_p,
    "pier_db **": POINTER(_capi.pier_db_p),
    "const pier_open_options *": POINTER(_capi.pier_open_options),
    "const pier_key *": POINTER(_capi.pier_key),
    "pier_log_cb": _capi.pier_log_cb,
    "int64_t": c_int64,
    "unsigned char **": POINTER(c_void_p),  # out-frames, like char **
    "const unsigned char *": c_char_p,  # (pointer, length) input: bytes pass straight through
    "pier_server *": _capi.pier_server_p,
    "pier_server **": POINTER(_capi.pier_server_p),
    "const pier_identity *": POINTER(_capi.pier_identity),
    "pier_resolver_cb": _capi.pier_resolver_cb,
    "pier_sync_report *": POINTER(_capi.pier_sync_report),
    "const pier_sync_options *": POINTER(_capi.pier_sync_options),
}

# Parameter types of the callback typedefs, as C hands them to Python. Pointers to
# (pointer, length) data and out-pointers are c_void_p so ctypes never copies or
# truncates them at a NUL behind our back.
CALLBACK_TYPES: Dict[str, Any] = {
    "void": None,
    "int": c_int,
    "void *": c_void_p,
    "size_t": c_size_t,
    "const char *": c_char_p,
    "size_t *": POINTER(c_size_t),
    "const char **": POINTER(c_void_p),
    "const unsigned char *": c_void_p,
    "const unsigned char **": POINTER(c_void_p),
    "const pier_resolver_input *": POINTER(_capi.pier_resolver_input),
    "const pier_sync_progress *": POINTER(_capi.pier_sync_progress),
    "const pier_conflict *": POINTER(_capi.pier_conflict),
}


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _normalise(c_type: str) -> str:
    c_type = re.sub(r"\s+", " ", c_type).strip()
    c_type = re.sub(r"\s*\*\s*", " *", c_type)  # "char**" -> "char **"
    c_type = c_type.replace("* *", "**").replace("* const", "*const")
    return c_type


def _split_parameter(parameter: str) -> str:
    """'const char *collection' -> 'const char *'."""
    parameter = _normalise(parameter)
    match = re.match(r"^(.*?)(\w+)$", parameter)
    assert match, parameter
    return _normalise(match.group(1))


def header_functions() -> Dict[str, Tuple[str, List[str]]]:
    assert HEADER is not None
    text = _strip_comments(HEADER.read_text())
    found: Dict[str, Tuple[str, List[str]]] = {}
    for match in re.finditer(r"([A-Za-z_][\w \t*]*?)\b(pier_\w+)\s*\(([^)]*)\)\s*;", text):
        returns, name, parameters = match.groups()
        if "typedef" in returns:
            continue
        parameter_types = [] if parameters.strip() in ("", "void") else [_split_parameter(p) for p in parameters.split(",")]
        found[name] = (_normalise(returns), parameter_types)
    return found


def header_constants() -> Dict[str, int]:
    assert HEADER is not None
    constants: Dict[str, int] = {}
    for name, value in re.findall(r"#define\s+(PIER_\w+)\s+(-?(?:0x[0-9a-fA-F]+|\d+))\b", HEADER.read_text()):
        constants[name] = int(value, 0)
    return constants


def header_callbacks() -> Dict[str, Tuple[str, List[str]]]:
    assert HEADER is not None
    text = _strip_comments(HEADER.read_text())
    found: Dict[str, Tuple[str, List[str]]] = {}
    for returns, name, parameters in re.findall(r"typedef\s+([\w \t*]+?)\s*\(\s*\*\s*(pier_\w+)\s*\)\s*\(([^)]*)\)\s*;", text):
        found[name] = (_normalise(returns), [_split_parameter(p) for p in parameters.split(",")])
    return found


def header_structs() -> Dict[str, List[Tuple[str, str]]]:
    """Visible structs: name -> [(C type, field name)] in declaration order."""
    assert HEADER is not None
    text = _strip_comments(HEADER.read_text())
    found: Dict[str, List[Tuple[str, str]]] = {}
    for name, body, alias in re.findall(r"typedef\s+struct\s+(pier_\w+)\s*\{(.*?)\}\s*(pier_\w+)\s*;", text, flags=re.S):
        assert name == alias
        fields = []
        for declaration in body.split(";"):
            declaration = _normalise(declaration)
            if declaration:
                match = re.match(r"^(.*?)(\w+)$", declaration)
                assert match, declaration
                fields.append((_normalise(match.group(1)), match.group(2)))
        found[name] = fields
    return found


def header_initialisers() -> Dict[str, str]:
    """PIER_<NAME>_INIT macros -> the struct type they initialise (from the matching *_VERSION)."""
    assert HEADER is not None
    text = HEADER.read_text()
    names = re.findall(r"#define\s+PIER_(\w+)_INIT\b", text)
    return {name: f"pier_{name.lower()}" for name in names}


# C types of struct fields -> the ctypes type _capi uses.
FIELD_TYPES: Dict[str, Any] = {
    "unsigned int": c_uint,
    "int": c_int,
    "size_t": c_size_t,
    "int64_t": c_int64,
    "double": c_double,
    "const char *": c_char_p,
    "void *": c_void_p,
    "const char *const *": POINTER(c_char_p),
    "pier_server *": _capi.pier_server_p,
    "const pier_identity *": POINTER(_capi.pier_identity),
    "const pier_key *": POINTER(_capi.pier_key),
    "pier_transport_cb": _capi.pier_transport_cb,
    "pier_progress_cb": _capi.pier_progress_cb,
    "pier_conflict_cb": _capi.pier_conflict_cb,
}

# Fields whose C type is const char * but which are (pointer, length) data, not
# NUL-terminated strings: c_void_p, read with string_at(pointer, length).
LENGTH_DELIMITED_FIELDS = {("pier_resolver_input", "client_body"), ("pier_resolver_input", "server_body"), ("pier_key", "raw_key")}


@needs_header
def test_every_header_function_is_declared_with_matching_types() -> None:
    functions = header_functions()
    assert len(functions) >= 28, sorted(functions)
    for name, (returns, parameters) in functions.items():
        function = getattr(_capi, name, None)
        assert function is not None, f"{name} is in pier.h but not in _capi"
        assert function.restype is C_TYPES[returns], f"{name}: restype {function.restype} for {returns}"
        assert function.argtypes is not None, f"{name}: argtypes not set"
        assert list(function.argtypes) == [C_TYPES[p] for p in parameters], f"{name}: {function.argtypes} vs {parameters}"


@needs_header
def test_capi_declares_nothing_the_header_lacks() -> None:
    functions = header_functions()
    declared = {name for name, value in vars(_capi).items() if name.startswith("pier_") and hasattr(value, "argtypes") and not isinstance(value, type)}
    assert declared == set(functions)


@needs_header
def test_every_prototype_is_written_in_a_comment() -> None:
    source = Path(_capi.__file__).read_text()
    for name in header_functions():
        assert re.search(rf"^# .*\b{name}\(", source, flags=re.M), f"{name} has no prototype comment"


@needs_header
def test_constants_match_the_header() -> None:
    constants = header_constants()
    assert len(constants) > 40
    for name, value in constants.items():
        assert getattr(_capi, name) == value, name


@needs_header
def test_version_matches_the_header() -> None:
    constants = header_constants()
    assert pier.version_number() // 10000 == constants["PIER_VERSION_MAJOR"] == _capi.PIER_VERSION_MAJOR
    assert pier.version() == _capi.PIER_VERSION_STRING
    assert pier.version_number() == _capi.PIER_VERSION_NUMBER


@needs_header
def test_every_callback_type_matches_its_typedef() -> None:
    callbacks = header_callbacks()
    assert set(callbacks) == {"pier_log_cb", "pier_resolver_cb", "pier_transport_cb", "pier_progress_cb", "pier_conflict_cb"}
    for name, (returns, parameters) in callbacks.items():
        function_type = getattr(_capi, name, None)
        assert function_type is not None, f"{name} is in pier.h but not in _capi"
        assert function_type._restype_ is CALLBACK_TYPES[returns], name
        assert list(function_type._argtypes_) == [CALLBACK_TYPES[p] for p in parameters], f"{name}: {parameters}"


@needs_header
def test_every_struct_is_declared_with_the_header_fields_in_order() -> None:
    structs = header_structs()
    assert set(structs) == {
        "pier_key", "pier_open_options", "pier_identity", "pier_resolver_input", "pier_sync_progress",
        "pier_conflict", "pier_sync_options", "pier_sync_report",
    }
    for name, fields in structs.items():
        structure = getattr(_capi, name, None)
        assert structure is not None, f"{name} is in pier.h but not in _capi"
        assert [field[0] for field in structure._fields_] == [field for _, field in fields], name
        for (c_type, field), (_, ctypes_type) in zip(fields, structure._fields_):
            expected = c_void_p if (name, field) in LENGTH_DELIMITED_FIELDS else FIELD_TYPES[c_type]
            assert ctypes_type is expected, f"{name}.{field}: {ctypes_type} for {c_type}"


@needs_header
def test_every_initialiser_macro_has_a_python_twin() -> None:
    initialisers = header_initialisers()
    assert set(initialisers) == {"OPEN_OPTIONS", "KEY", "IDENTITY", "SYNC_OPTIONS", "SYNC_REPORT"}
    for macro, struct in initialisers.items():
        function = getattr(_capi, struct[len("pier_"):] + "_init")
        value = function()
        assert isinstance(value, getattr(_capi, struct))
        assert value.version == getattr(_capi, f"PIER_{macro}_VERSION") == header_constants()[f"PIER_{macro}_VERSION"] >= 1


def _compile_and_run(tmp_path: Path, name: str, source: str) -> str:
    assert ROOT is not None
    program = tmp_path / f"{name}.c"
    program.write_text(source)
    binary = tmp_path / name
    subprocess.run(["cc", "-Wall", "-Werror", "-I", str(ROOT / "include"), "-o", str(binary), str(program)], check=True)
    return subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout


@needs_header
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_every_struct_layout_matches_the_c_compiler(tmp_path: Path) -> None:
    structs = header_structs()
    lines = []
    for name, fields in structs.items():
        offsets = " ".join(f'printf(" %zu", offsetof({name}, {field}));' for _, field in fields)
        lines.append(f'printf("{name} %zu %zu", sizeof({name}), _Alignof({name})); {offsets} printf("\\n");')
    output = _compile_and_run(
        tmp_path, "layout",
        '#include <stdio.h>\n#include <stddef.h>\n#include "pier.h"\nint main(void) {\n' + "\n".join(lines) + "\nreturn 0;\n}\n",
    )
    for line in output.splitlines():
        name, *numbers = line.split()
        structure = getattr(_capi, name)
        expected = [int(number) for number in numbers]
        actual = [ctypes.sizeof(structure), ctypes.alignment(structure)] + [getattr(structure, field).offset for field, _ in structure._fields_]
        assert actual == expected, name


@needs_header
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_every_initialiser_gives_the_bytes_of_the_c_macro(tmp_path: Path) -> None:
    """PIER_X_INIT and _capi.x_init() produce the same bytes (static storage zeroes padding)."""
    initialisers = header_initialisers()
    lines = []
    for macro, struct in initialisers.items():
        lines.append(
            f"{{ static const {struct} value = PIER_{macro}_INIT; const unsigned char *p = (const unsigned char *)&value;"
            f' printf("{struct} "); for (size_t i = 0; i < sizeof value; i++) printf("%02x", p[i]); printf("\\n"); }}'
        )
    output = _compile_and_run(
        tmp_path, "initialisers",
        '#include <stdio.h>\n#include "pier.h"\nint main(void) {\n' + "\n".join(lines) + "\nreturn 0;\n}\n",
    )
    seen = set()
    for line in output.splitlines():
        struct, hex_bytes = line.split()
        value = getattr(_capi, struct[len("pier_"):] + "_init")()
        assert bytes(value).hex() == hex_bytes, struct
        seen.add(struct)
    assert seen == set(initialisers.values())


def test_open_options_fields_follow_the_header_order() -> None:
    names = [field[0] for field in _capi.pier_open_options._fields_]
    assert names == ["version", "durability", "flags", "default_scope", "max_body_bytes", "busy_timeout_ms", "key"]
    options = _capi.open_options_init()
    assert (options.version, options.durability, options.flags, options.default_scope, options.max_body_bytes, options.busy_timeout_ms) == (
        _capi.PIER_OPEN_OPTIONS_VERSION, _capi.PIER_DURABILITY_NORMAL, 0, None, 0, 0)
    assert not options.key


def test_out_buffers_are_released_with_pier_free(db: pier.Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every buffer a read returns goes back through pier_free, also on failure."""
    freed: List[Any] = []
    real_free = _capi.pier_free

    def spy(buffer: Any) -> None:
        freed.append(buffer.value if isinstance(buffer, c_void_p) else buffer)
        real_free(buffer)

    monkeypatch.setattr(_capi, "pier_free", spy)
    db.put("c", "a", {"x": 1})
    db.get("c", "a")
    db.list("c")
    db.query("SELECT 1")
    db.metadata("c", "a")
    db.info()
    _ = db.client_id
    assert len(freed) == 6 and all(freed), freed
    with pytest.raises(pier.NotFoundError):
        db.get("c", "missing")
    assert len(freed) == 7 and freed[-1] is None  # the NULL out-pointer is freed too (a no-op)
