"""Build the jobs and registry contracts to wasm with Debian's clang-16 and wasm-ld-16.

The build is reproducible: no debug information, no paths or timestamps in the output, fixed
flags, so the same sources give the same bytes. Each wasm is then checked against what nodeos
accepts (imports only whitelisted host functions from ``env``, exports only ``apply`` and the
memory, data segments below 64 KiB).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from contracts.errors import ContractsError

log = logging.getLogger("clusterjobs.contracts")

HERE = Path(__file__).resolve().parent
BUILD_DIR = HERE / "build"
CONTRACTS = ("jobs", "registry")

CLANG = "clang-16"
WASM_LD = "wasm-ld-16"

COMPILE_FLAGS = (
    "--target=wasm32", "-mcpu=mvp", "-O2", "-std=c++17", "-nostdlib", "-ffreestanding",
    "-fno-builtin", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics",
    "-Wall", "-Wextra", "-Werror", "-ffile-prefix-map=/=", "-g0",
)
# The CDT's layout: a small stack first so the data segments start below 64 KiB.
LINK_FLAGS = (
    "--no-entry", "--allow-undefined", "-z", "stack-size=8192", "--stack-first",
    "--gc-sections", "--strip-all",
)

# Host functions the contracts may import (a subset of Leap 4.x's whitelist): nodeos checks
# the signatures at setcode; this list catches helpers it lacks (e.g. __muloti4) at build time.
HOST_FUNCTIONS = frozenset({
    "eosio_assert", "eosio_assert_message", "prints_l", "read_action_data", "action_data_size",
    "require_auth", "has_auth", "is_account", "current_receiver", "get_sender", "current_time",
    "send_inline",
    "require_recipient",  # only the test contract testing/faketoken imports it
    "memmove", "memset",
    "db_store_i64", "db_update_i64", "db_remove_i64", "db_get_i64", "db_next_i64",
    "db_previous_i64", "db_find_i64", "db_lowerbound_i64", "db_end_i64",
    "db_idx64_store", "db_idx64_update", "db_idx64_remove", "db_idx64_next",
    "db_idx64_find_primary", "db_idx64_lowerbound", "db_idx64_end",
    "__multi3", "__divti3", "__udivti3", "__modti3", "__umodti3",
    "__ashlti3", "__ashrti3", "__lshrti3",
})
MAX_DATA_END = 64 * 1024
MAX_PAGES = 528


@dataclass(frozen=True)
class WasmInfo:
    """What the checks need from a wasm module."""

    imports: list[tuple[str, str, int]]  # (module, name, kind)
    exports: list[tuple[str, int]]  # (name, kind)
    data_ends: list[int]  # end offset of each active data segment
    memory_pages: int  # initial pages of the (only) memory


@dataclass(frozen=True)
class Artifact:
    """One built contract."""

    name: str
    wasm: Path
    abi: Path
    sha256: str


def _leb(data: bytes, pos: int, signed: bool = False) -> tuple[int, int]:
    """Decode a LEB128 number at ``pos``; returns (value, position after it)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if signed and byte & 0x40:
                value -= 1 << shift
            return value, pos


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    return _leb(data, pos)


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    return _leb(data, pos, signed=True)


def _name(data: bytes, pos: int) -> tuple[str, int]:
    length, pos = _uleb(data, pos)
    return data[pos:pos + length].decode(), pos + length


def parse_wasm(data: bytes) -> WasmInfo:
    """Read the import, memory, export and data sections of a wasm binary."""
    if data[:8] != b"\x00asm\x01\x00\x00\x00":
        raise ContractsError("not a wasm version 1 binary")
    imports: list[tuple[str, str, int]] = []
    exports: list[tuple[str, int]] = []
    data_ends: list[int] = []
    pages = 0
    pos = 8
    while pos < len(data):
        section = data[pos]
        size, pos = _uleb(data, pos + 1)
        body_end = pos + size
        if section == 2:  # imports
            count, p = _uleb(data, pos)
            for _ in range(count):
                module, p = _name(data, p)
                field, p = _name(data, p)
                kind = data[p]
                p += 1
                if kind != 0:
                    raise ContractsError(f"imports a non-function {module}.{field}")
                _, p = _uleb(data, p)
                imports.append((module, field, kind))
        elif section == 5:  # memory
            count, p = _uleb(data, pos)
            if count != 1:
                raise ContractsError(f"declares {count} memories, nodeos needs exactly 1")
            flags = data[p]
            pages, p = _uleb(data, p + 1)
            if flags & 1:
                _, p = _uleb(data, p)
        elif section == 7:  # exports
            count, p = _uleb(data, pos)
            for _ in range(count):
                field, p = _name(data, p)
                kind = data[p]
                _, p = _uleb(data, p + 1)
                exports.append((field, kind))
        elif section == 11:  # data
            count, p = _uleb(data, pos)
            for _ in range(count):
                flags, p = _uleb(data, p)
                if flags != 0 or data[p] != 0x41:  # active, memory 0, i32.const offset
                    raise ContractsError("data segment is not an active i32.const segment")
                offset, p = _sleb(data, p + 1)
                if data[p] != 0x0B:
                    raise ContractsError("data segment offset is not a constant")
                length, p = _uleb(data, p + 1)
                data_ends.append(offset + length)
                p += length
        pos = body_end
    return WasmInfo(imports, exports, data_ends, pages)


def check_wasm(name: str, info: WasmInfo) -> None:
    """Raise ContractsError naming the first thing nodeos would refuse."""
    for module, field, _ in info.imports:
        if module != "env":
            raise ContractsError(f"{name}.wasm imports {module}.{field}: only env is allowed")
        if field not in HOST_FUNCTIONS:
            raise ContractsError(f"{name}.wasm imports {field}, which is not a whitelisted "
                                 "host function")
    names = sorted(field for field, _ in info.exports)
    if names != ["apply", "memory"]:
        raise ContractsError(f"{name}.wasm exports {names}: only apply and memory are allowed")
    if info.data_ends and max(info.data_ends) > MAX_DATA_END:
        raise ContractsError(f"{name}.wasm has data up to byte {max(info.data_ends)}: "
                             f"nodeos needs it below {MAX_DATA_END}")
    if info.memory_pages > MAX_PAGES:
        raise ContractsError(f"{name}.wasm starts with {info.memory_pages} pages "
                             f"(at most {MAX_PAGES})")


def _run(argv: list[str], cwd: Path) -> None:
    try:
        result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ContractsError(f"{argv[0]} not found: install Debian's clang-16 and lld-16") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        first = next((line for line in detail if "error" in line), detail[0] if detail else "")
        raise ContractsError(f"{argv[0]} failed: {first}")


def build(out_dir: Path = BUILD_DIR) -> list[Artifact]:
    """Compile, link and check both contracts; copy their ABIs beside the wasm files."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ContractsError(f"cannot write the build to {out_dir}: {exc.strerror}") from None
    return [build_one(name, name, out_dir) for name in CONTRACTS]


def build_one(name: str, source_dir: str, out_dir: Path,
              defines: tuple[str, ...] = ()) -> Artifact:
    """Compile, link and check ``contracts/<source_dir>/<name>.cpp`` (with its ``.abi``)
    into ``out_dir``; also used by the tests for the test-only contracts under testing/ and
    for test copies built with ``defines`` (``NAME=VALUE`` preprocessor definitions)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / f"{name}.o"
    wasm = out_dir / f"{name}.wasm"
    # Relative source paths from contracts/ keep the objects free of absolute paths.
    _run([CLANG, *COMPILE_FLAGS, *(f"-D{d}" for d in defines), "-Iinclude", "-c",
          f"{source_dir}/{name}.cpp", "-o", str(obj)], cwd=HERE)
    _run([WASM_LD, *LINK_FLAGS, str(obj), "-o", str(wasm)], cwd=HERE)
    code = wasm.read_bytes()
    check_wasm(name, parse_wasm(code))
    abi = out_dir / f"{name}.abi"
    shutil.copyfile(HERE / source_dir / f"{name}.abi", abi)
    digest = hashlib.sha256(code).hexdigest()
    log.info("built contract", extra={"contract": name, "bytes": len(code), "sha256": digest})
    return Artifact(name, wasm, abi, digest)
