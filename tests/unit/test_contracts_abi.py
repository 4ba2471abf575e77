"""The hand-written ABIs against the C++ code, the Python packer and pyeoskit; the built wasm
against what nodeos accepts."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from contracts import build as contract_build
from contracts import serialize

ROOT = Path(contract_build.__file__).resolve().parent
READ_TYPES = {"nm": "name", "u64": "uint64", "i64": "int64", "str": "string", "ast": "asset",
              "f32_bits": "float32"}


def _abi(name: str) -> dict:
    return json.loads((ROOT / name / f"{name}.abi").read_text())


def _sources(name: str) -> str:
    return "\n".join(p.read_text() for p in [ROOT / name / f"{name}.cpp",
                                              *(ROOT / "include" / "cj").glob("*.hpp")])


def _body(source: str, signature: str) -> str:
    start = source.index(signature)
    depth, i = 0, source.index("{", start)
    for j in range(i, len(source)):
        depth += {"{": 1, "}": -1}.get(source[j], 0)
        if depth == 0:
            return source[i:j]
    raise AssertionError(signature)


def _reads(body: str) -> list[str]:
    return [READ_TYPES[m] for m in re.findall(r"\br\.(nm|u64|i64|str|ast|f32_bits)\(\)", body)]


def _abi_types(abi: dict, struct: str) -> list[str]:
    [found] = [s for s in abi["structs"] if s["name"] == struct]
    # microseconds travels as its int64 count; a `$` suffix marks an optional trailing field
    # (binary extension), read the same way when present.
    return [{"microseconds": "int64"}.get(f["type"], f["type"]).removesuffix("$")
            for f in found["fields"]]


@pytest.mark.parametrize("contract", ["jobs", "registry"])
def test_action_arguments_are_read_in_the_abis_order(contract: str) -> None:
    source = _sources(contract)
    abi = _abi(contract)
    dispatch = dict(re.findall(r'case "(\w+)"_n\.value: return (\w+)\(', source))
    assert sorted(dispatch) == sorted(a["name"] for a in abi["actions"])
    for action in abi["actions"]:
        handler = dispatch[action["name"]]
        reads = _reads(_body(source, f"void {handler}(reader& r"))
        assert reads == _abi_types(abi, action["type"]), action["name"]


@pytest.mark.parametrize("contract,tables", [
    ("jobs", {"worker": "contributor_row", "dispatcher": "contributor_row", "job": "job_row",
              "reg": "reg_row", "credit": "credit_row", "owed": "owed_row",
              "token": "token_row"}),
    ("registry", {"protocol": "protocol_row", "config": "config_row",
                  "researcher": "researcher_row"}),
])
def test_rows_are_read_in_the_abis_order(contract: str, tables: dict[str, str]) -> None:
    source = _sources(contract)
    abi = _abi(contract)
    assert sorted(t["name"] for t in abi["tables"]) == sorted(tables)
    for table in abi["tables"]:
        row = _body(source, f"struct {tables[table['name']]} {{")
        reads = _reads(_body(row, "void read(reader& r)"))
        assert reads == _abi_types(abi, table["type"]), table["name"]


def test_seed_interface_names_are_kept() -> None:
    jobs = {a["name"] for a in _abi("jobs")["actions"]}
    assert jobs == {"conntoreg", "regworker", "delworker", "regdisptch", "deldisptch", "newjob",
                    "removejob", "updatedptch", "payout", "allowtoken", "denytoken"}
    # The seed's nine arguments, then the optional max_task_time (a binary extension).
    assert _abi_types(_abi("registry"), "addprotocol") == [
        "string", "name", "name", "string", "name", "asset", "name", "float32", "float32",
        "uint64"]
    [add] = [s for s in _abi("registry")["structs"] if s["name"] == "addprotocol"]
    assert add["fields"][-1] == {"name": "max_task_time", "type": "uint64$"}
    assert [f["name"] for f in _abi("registry")["structs"][1]["fields"]][-3:-1] == [
        "dispatcher_pay_rate", "worker_pay_rate"]


def test_python_packer_matches_pyeoskit_with_the_abi() -> None:
    from pyeoskit import eosapi

    eosapi.set_abi("registry", (ROOT / "registry" / "registry.abi").read_text())
    args = {"title": "t é", "owner": "alice", "researcher": "bob.x", "datadir": "/p",
            "fundaccount": "carol", "fund": "10.0500 JOB", "tokencontract": "eosio.token",
            "dispatcher_pay_rate": 0.125, "worker_pay_rate": 1.5}
    expected = eosapi.pack_args("registry", "addprotocol", args)
    packed = serialize.addprotocol("t é", "alice", "bob.x", "/p", "carol", "10.0500 JOB",
                                   "eosio.token", serialize.pack_f32(0.125),
                                   serialize.pack_f32(1.5))
    assert packed == expected


def test_names_and_symbols() -> None:
    assert serialize.name_value("eosio") == 0x5530EA0000000000
    assert serialize.name_value("eosio.token") == 0x5530EA033482A600
    assert serialize.symbol_value(4, "JOB") == 0x424F4A04
    with pytest.raises(ValueError):
        serialize.name_value("UPPER")


@pytest.mark.skipif(shutil.which("clang-16") is None, reason="needs Debian's clang-16")
def test_built_wasm_passes_the_nodeos_checks(tmp_path: Path) -> None:
    for artifact in contract_build.build(tmp_path):
        info = contract_build.parse_wasm(artifact.wasm.read_bytes())
        contract_build.check_wasm(artifact.name, info)
        assert {field for _, field, _ in info.imports} <= contract_build.HOST_FUNCTIONS
        assert "__muloti4" not in {field for _, field, _ in info.imports}
        assert max(info.data_ends) < 64 * 1024


def test_wasm_checks_refuse_what_nodeos_refuses() -> None:
    good = contract_build.WasmInfo([("env", "require_auth", 0)], [("apply", 0), ("memory", 2)],
                                   [1000], 1)
    contract_build.check_wasm("x", good)
    bad = [
        (good.__class__([("env", "__muloti4", 0)], good.exports, [1000], 1), "__muloti4"),
        (good.__class__(good.imports, [*good.exports, ("helper", 0)], [1000], 1), "exports"),
        (good.__class__(good.imports, good.exports, [70_000], 1), "below 65536"),
        (good.__class__([("wasi", "fd_write", 0)], good.exports, [1000], 1), "only env"),
    ]
    for info, words in bad:
        with pytest.raises(contract_build.ContractsError, match=words):
            contract_build.check_wasm("x", info)


def test_credit_id_is_an_optional_trailing_argument() -> None:
    """The seed's three-argument newjob/updatedptch still pack: credit_id is a binary
    extension, and only a trailing field may be one."""
    from pyeoskit import eosapi

    eosapi.set_abi("jobs", (ROOT / "jobs" / "jobs.abi").read_text())
    for action, contributor in (("newjob", "worker"), ("updatedptch", "dispatcher")):
        fields = [f for s in _abi("jobs")["structs"] if s["name"] == action
                  for f in s["fields"]]
        assert [f["type"] for f in fields] == ["name", "name", "uint64", "uint64$"]
        args = {"researcher": "alice", contributor: "bob", "time": 5}
        seed = eosapi.pack_args("jobs", action, args)
        assert len(seed) == 24
        assert eosapi.pack_args("jobs", action, {**args, "credit_id": 2**64 - 1}) == (
            seed + b"\xff" * 8)
