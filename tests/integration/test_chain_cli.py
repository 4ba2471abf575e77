"""`clusterjobs chain VERB` against the stack's nodeos with the deployed contracts: every verb
works, a rejection is the chain's one-line message with exit 1, keys come from a key file or
the environment and never show."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from pyeoskit.chainnative import ChainNative

from actors.stack import devchain
from contracts import build as contract_build
from contracts import deploy as contract_deploy
from scheduler.chain import ChainClient, Signer

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def fresh(prefix: str) -> str:
    name = prefix + "".join(secrets.choice(_LETTERS) for _ in range(12 - len(prefix)))
    devchain.create_account(name)
    return name


@pytest.fixture(scope="module")
def url(stack: dict) -> str:
    url = str(stack["nodeos"])
    contract_build.build()
    contract_deploy.deploy(contract_deploy.Deployment(url))
    devchain.connect(url)
    return url


def run(stack_dir: Path, *argv: str, env: dict[str, str] | None = None,
        target: tuple[str, ...] | None = None) -> subprocess.CompletedProcess:
    """``clusterjobs --log-level debug chain ARGV`` (by default on the stack, with --json)."""
    where = target if target is not None else ("--stack", str(stack_dir))
    full = {k: v for k, v in os.environ.items() if k != "CLUSTERJOBS_CHAIN_KEY"}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "actors.cli", "--log-level", "debug", "chain",
                           *argv, *where], capture_output=True, text=True, timeout=120,
                          env=full, check=False)


def ok(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def rejected(result: subprocess.CompletedProcess) -> str:
    """The single error line of a refused verb."""
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("clusterjobs:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def rows(url: str, code: str, scope: str, table: str) -> list[dict]:
    return ChainClient(url).rows(code, scope, table)


def test_every_verb_on_the_chain(url: str, stack_dir: Path) -> None:
    owner, researcher, funder = fresh("own"), fresh("res"), fresh("fun")
    worker, dispatcher = fresh("wrk"), fresh("dsp")
    devchain.connect(url).push_action(
        "eosio.token", "transfer",
        {"from": "eosio", "to": funder, "quantity": "100.0000 JOB", "memo": "fund"},
        {"eosio": "active"})
    done = ok(run(stack_dir, "addprotocol", "cli test", owner, researcher,
                  f"/protocols/{researcher}", funder, "50.0000 JOB", "eosio.token", "0.5", "1",
                  "--json"))
    # The fund goes into the registry's escrow (issue 13): a transfer whose memo is the
    # researcher.
    contract_deploy.deposit(url, funder, researcher, "50.0000 JOB",
                            contract_deploy.Deployment(url))
    assert done["authorization"] == [f"{owner}@active", f"{funder}@active",
                                     f"{researcher}@active"]
    assert len(done["transaction_id"]) == 64 and done["block_num"] > 0
    assert rows(url, "registry", owner, "protocol")[0]["researcher"] == researcher

    ok(run(stack_dir, "regworker", worker, researcher, "--json"))
    ok(run(stack_dir, "regdisptch", dispatcher, researcher, "--json"))
    assert rows(url, "jobs", worker, "worker") == [
        {"researcher": researcher, "total_time": 0, "unpaid_time": 0}]

    # Time credited by the pusher's client (3 s worker, 2 s dispatcher), then paid by the verb.
    client = ChainClient(url, Signer("jobs", "active", (devchain.DEV_PRIVATE_KEY,)))
    client.push([client.action("jobs", "newjob", {"researcher": researcher, "worker": worker,
                                                  "time": 3_000_000}),
                 client.action("jobs", "updatedptch", {"researcher": researcher,
                                                       "dispatcher": dispatcher,
                                                       "time": 2_000_000})])
    ok(run(stack_dir, "payout", owner, funder, researcher, worker, "worker", "--json"))
    ok(run(stack_dir, "payout", owner, funder, researcher, dispatcher, "dispatcher", "--json"))
    assert devchain.balance(url, worker) == "3.0000 JOB"  # 3 s at 1 JOB/s
    assert devchain.balance(url, dispatcher) == "1.0000 JOB"  # 2 s at 0.5 JOB/s

    ok(run(stack_dir, "removejob", researcher, worker, "3000000", "--json"))
    assert rows(url, "jobs", worker, "job") == []
    ok(run(stack_dir, "delworker", worker, researcher, "--json"))
    ok(run(stack_dir, "deldisptch", dispatcher, researcher, "--json"))
    assert rows(url, "jobs", worker, "worker") == []
    ok(run(stack_dir, "delprotocol", owner, researcher, "--json"))
    assert rows(url, "registry", owner, "protocol") == []
    # The jobs operator's token whitelist (issue 13).
    ok(run(stack_dir, "allowtoken", worker, "--json"))
    assert {"contract": worker} in rows(url, "jobs", "jobs", "token")
    ok(run(stack_dir, "denytoken", worker, "--json"))
    assert {"contract": worker} not in rows(url, "jobs", "jobs", "token")
    text = run(stack_dir, "conntoreg", "registry")
    assert text.returncode == 0 and text.stdout.startswith("jobs::conntoreg done: transaction ")


def test_a_rejection_is_the_chains_message(url: str, stack_dir: Path) -> None:
    researcher = fresh("res")
    line = rejected(run(stack_dir, "regworker", "nosuchacct", researcher))
    assert line == ("clusterjobs: error: jobs::regworker rejected: assertion failure with "
                    "message: worker account nosuchacct does not exist")
    worker = fresh("wrk")
    line = rejected(run(stack_dir, "payout", "nosuchowner", worker, researcher, worker,
                        "worker"))
    assert line.startswith("clusterjobs: error: jobs::payout rejected: ")


def test_keys_from_a_file_or_the_environment_never_shown(url: str, stack_dir: Path,
                                                         tmp_path: Path) -> None:
    worker, researcher = fresh("wrk"), fresh("res")
    key_file = tmp_path / "jobs.key"
    key_file.write_text(devchain.DEV_PRIVATE_KEY + "\n")
    with_file = run(stack_dir, "regworker", worker, researcher, "--key-file", str(key_file),
                    "--json", target=("--nodeos", url))
    assert ok(with_file)["authorization"] == ["jobs@active"]
    with_env = run(stack_dir, "delworker", worker, researcher, "--json",
                   env={"CLUSTERJOBS_CHAIN_KEY": devchain.DEV_PRIVATE_KEY},
                   target=("--nodeos", url))
    ok(with_env)
    for result in (with_file, with_env):
        assert devchain.DEV_PRIVATE_KEY not in result.stdout + result.stderr

    # A key that is not the account's: nodeos's own reason, one line.
    other = tmp_path / "other.key"
    other.write_text(ChainNative.create_key()["private"] + "\n")
    line = rejected(run(stack_dir, "regworker", worker, researcher, "--key-file", str(other),
                        target=("--nodeos", url)))
    assert line.startswith("clusterjobs: error: jobs::regworker rejected: transaction declares "
                           "authority '{\"actor\":\"jobs\",\"permission\":\"active\"}', but does "
                           "not have signatures for it")

    # Outside a local stack no key means no signature, said plainly.
    line = rejected(run(stack_dir, "regworker", worker, researcher, target=("--nodeos", url)))
    assert line == "clusterjobs: error: no signing key: give --key-file or set " \
                   "CLUSTERJOBS_CHAIN_KEY"


def test_an_unreachable_nodeos(stack_dir: Path) -> None:
    line = rejected(run(stack_dir, "conntoreg", "registry",
                        env={"CLUSTERJOBS_CHAIN_KEY": devchain.DEV_PRIVATE_KEY},
                        target=("--nodeos", "http://127.0.0.1:9")))
    assert line.startswith("clusterjobs: error: jobs::conntoreg failed: cannot reach nodeos "
                           "at http://127.0.0.1:9")
