"""The chain edge's pure parts: keys, names, error classification, the operator verbs' parsing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from actors import cli
from scheduler import chain, chain_cli
from scheduler.chain import ChainClient, ChainError, Signer

DEV_KEY = "5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD3"
DEV_PUBLIC = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"


def test_keys_from_a_file_skip_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# the scheduler's key\n\n{DEV_KEY}\n")
    assert chain.load_keys(path, {}) == (DEV_KEY,)


def test_keys_from_the_environment_comma_separated() -> None:
    assert chain.load_keys(None, {chain.KEY_ENV: f"{DEV_KEY}, {DEV_KEY}"}) == (DEV_KEY, DEV_KEY)


def test_no_key_is_one_clear_error() -> None:
    with pytest.raises(ChainError, match="no signing key: give --key-file or set "
                                         "CLUSTERJOBS_CHAIN_KEY"):
        chain.load_keys(None, {})


def test_a_bad_key_is_named_by_position_never_shown(tmp_path: Path) -> None:
    secretish = "5Kxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    path = tmp_path / "keys"
    path.write_text(f"{DEV_KEY}\n{secretish}\n")
    with pytest.raises(ChainError) as err:
        chain.load_keys(path, {})
    assert str(err.value) == f"key file {path}: key 2 is not a valid private key"
    assert secretish not in str(err.value)


def test_a_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(ChainError, match=r"key file .*nokey: No such file or directory"):
        chain.load_keys(tmp_path / "nokey", {})


def test_public_key_of_the_dev_key() -> None:
    assert chain.public_key(DEV_KEY) == DEV_PUBLIC
    assert chain.public_key("not a key") is None


def test_signer_repr_hides_the_key() -> None:
    signer = Signer("jobs", "pusher", (DEV_KEY,))
    assert DEV_KEY not in repr(signer) and DEV_KEY not in str(signer)
    assert signer.authority == {"actor": "jobs", "permission": "pusher"}


@pytest.mark.parametrize("name,ok", [
    ("jobs", True), ("alice.x", True), ("a1b2c3d4e5", True), ("abcdefghijkl", True),
    ("", False), ("Bob", False), ("abcdefghijklm", False), ("six6", False), ("trail.", False),
])
def test_account_names(name: str, ok: bool) -> None:
    assert chain.is_account_name(name) is ok


def test_parse_actor() -> None:
    assert chain.parse_actor("fund@cjpay") == ("fund", "cjpay")
    assert chain.parse_actor("jobs") == ("jobs", "active")
    with pytest.raises(ValueError, match="'Fund' is not a valid account name"):
        chain.parse_actor("Fund@x")


def _error(code: int, name: str, message: str) -> dict:
    return {"code": 500, "message": "Internal Service Error",
            "error": {"code": code, "name": name, "what": "w",
                      "details": [{"message": message, "file": "f", "line_number": 1}]}}


def test_assertions_are_permanent_with_the_contracts_words() -> None:
    err = chain._classify("/v1/chain/push_transaction", 500, _error(
        3050003, "eosio_assert_message_exception",
        "assertion failure with message: worker bob is not registered for researcher alice"),
        "")
    assert str(err) == ("assertion failure with message: worker bob is not registered for "
                        "researcher alice")
    assert (err.code, err.retriable, err.duplicate) == (3050003, False, False)


def test_duplicate_and_expired_are_retriable() -> None:
    dup = chain._classify("/p", 409, _error(3040008, "tx_duplicate", "duplicate transaction x"),
                          "")
    assert dup.retriable and dup.duplicate
    assert chain._classify("/p", 500, _error(3040005, "expired_tx_exception", "expired"),
                           "").retriable
    assert chain._classify("/p", 500, _error(3080004, "tx_cpu_usage_exceeded", "cpu"),
                           "").retriable


def test_missing_authority_is_permanent() -> None:
    err = chain._classify("/p", 401, _error(3090003, "unsatisfied_authorization", "no sig"), "")
    assert not err.retriable


def test_non_nodeos_answers() -> None:
    assert chain._classify("/p", 502, None, "<html>bad gateway</html>").retriable
    err = chain._classify("/p", 404, None, "not found")
    assert not err.retriable and str(err) == "/p: HTTP 404: not found"


def test_an_unreachable_node_is_retriable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ChainError) as err:
        ChainClient(f"http://127.0.0.1:{port}", timeout=2).info()
    assert err.value.retriable and "cannot reach nodeos at http://127.0.0.1:" in str(err.value)


def test_signing_without_a_key() -> None:
    client = ChainClient("http://127.0.0.1:1")
    with pytest.raises(ChainError, match="no signing key"):
        client.sign([], 0, "00" * 32)


def test_transaction_id_is_sha256_of_the_packed_transaction() -> None:
    assert chain.transaction_id("") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def test_parse_time() -> None:
    assert chain.parse_time("1970-01-01T00:00:01.500") == 1.5


# ------------------------------------------------------------------ the operator verbs

def test_every_seed_verb_is_there_with_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(chain_cli.VERBS) == {"conntoreg", "regworker", "delworker", "regdisptch",
                                    "deldisptch", "addprotocol", "delprotocol", "payout",
                                    "removejob", "allowtoken", "denytoken"}
    for verb in chain_cli.VERBS:
        with pytest.raises(SystemExit) as done:
            cli.build_parser().parse_args(["chain", verb, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        assert "--account" in text and "--key-file" in text and "--json" in text


@pytest.mark.parametrize("argv,message", [
    (["regworker", "Bob", "alice"], "argument worker: 'Bob' is not a valid account name"),
    (["removejob", "alice", "bob", "0"], "argument time: 0 is not between 1 and 2^62-1 µs"),
    (["removejob", "alice", "bob", "1.5"], "argument time: '1.5' is not a whole number of µs"),
    (["payout", "own", "fun", "res", "bob", "miner"],
     "argument type: 'miner' is not 'worker' or 'dispatcher'"),
    (["addprotocol", "t", "own", "res", "/p", "fun", "10 JOB", "eosio.token", "nan", "0.1"],
     "argument dispatcher_pay_rate: nan is not a rate between 0 and 1000000"),
    (["addprotocol", "t", "own", "res", "/p", "fun", "ten", "eosio.token", "0.1", "0.1"],
     "argument fund: 'ten' is not an amount like '1000.0000 JOB'"),
])
def test_bad_arguments_are_one_line(argv: list[str], message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.build_parser().parse_args(["chain", *argv])
    assert done.value.code == 2
    assert message in capsys.readouterr().err


def test_default_signers() -> None:
    verbs = chain_cli.VERBS
    data = {"owner": "own", "fundaccount": "fun", "researcher": "res", "funder": "fun"}
    assert chain_cli._authorization(verbs["regworker"], data, "jobs", None) == [
        ("jobs", "active")]
    assert chain_cli._authorization(verbs["addprotocol"], data, "registry", None) == [
        ("own", "active"), ("fun", "active"), ("res", "active")]
    assert chain_cli._authorization(verbs["payout"], data, "jobs", None) == [("fun", "active")]
    assert chain_cli._authorization(verbs["payout"], data, "jobs", ["fun@cjpay"]) == [
        ("fun", "cjpay")]
    with pytest.raises(ChainError, match="--account: 'X' is not a valid account name"):
        chain_cli._authorization(verbs["payout"], data, "jobs", ["X"])
