"""The jobs and registry contracts on the local stack's nodeos: build and deploy, the full
lifecycle, the authorization matrix, bad input, equal-length jobs."""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from contracts_world import (
    Chain,
    World,
    assertion,
    deployment,
    escrow,
    fresh_name,
    make_world,
    open_protocol,
    parties,
    payout_args,
    protocol_args,
    units_text,
)

from actors.stack import devchain
from contracts import build as contract_build
from contracts import deploy as contract_deploy
from contracts import pay, serialize


def _payout(chain: Chain, w: World, contributor: str, kind: str) -> dict:
    return payout_args(w, contributor, kind)


# ------------------------------------------------------------------ 1. build and deploy

def test_build_is_reproducible(tmp_path) -> None:
    first = {a.name: a.sha256 for a in contract_build.build(tmp_path / "a")}
    second = {a.name: a.sha256 for a in contract_build.build(tmp_path / "b")}
    assert first == second
    assert set(first) == {"jobs", "registry"}


def test_deploy_sets_code_abi_and_eosio_code(chain: Chain) -> None:
    for name in ("jobs", "registry"):
        wasm = (contract_build.BUILD_DIR / f"{name}.wasm").read_bytes()
        assert devchain.code_hash(chain.url, name) == hashlib.sha256(wasm).hexdigest()
        abi = devchain.rpc(chain.url, "/v1/chain/get_abi", {"account_name": name})["abi"]
        assert abi["version"] == "eosio::abi/1.1"
    for account in ("jobs", "registry"):
        info = devchain.rpc(chain.url, "/v1/chain/get_account", {"account_name": account})
        active = next(p for p in info["permissions"] if p["perm_name"] == "active")
        assert [a["permission"] for a in active["required_auth"]["accounts"]] == [
            {"actor": account, "permission": "eosio.code"}]
    # The scheduler's permission: one key, linked to the three crediting actions only.
    info = devchain.rpc(chain.url, "/v1/chain/get_account", {"account_name": "jobs"})
    [pusher] = [p for p in info["permissions"] if p["perm_name"] == "pusher"]
    assert pusher["parent"] == "active"
    assert pusher["required_auth"]["keys"] == [{"key": devchain.DEV_PUBLIC_KEY, "weight": 1}]
    assert sorted(link["action"] for link in pusher["linked_actions"]) == [
        "newjob", "removejob", "updatedptch"]
    assert {link["account"] for link in pusher["linked_actions"]} == {"jobs"}
    assert chain.rows("jobs", "jobs", "reg") == [{"registry_contract": "registry"}]
    assert chain.rows("registry", "registry", "config") == [{"jobs_contract": "jobs"}]
    assert {"contract": "eosio.token"} in chain.rows("jobs", "jobs", "token")
    # A second deploy finds everything in place and changes nothing.
    again = contract_deploy.deploy(contract_deploy.Deployment(chain.url))
    assert again["created"] == [] and again["code_set"] == []
    assert not (again["eosio_code"] or again["registry_eosio_code"] or again["pusher"]
                or again["token_allowed"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "actors.cli", "contracts", *args],
                          capture_output=True, text=True, timeout=300, check=False)


def test_cli_build_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    outputs = []
    for folder in ("one", "two"):
        result = _cli("build", "--out", str(tmp_path / folder))
        assert result.returncode == 0, result.stderr
        outputs.append({name: (tmp_path / folder / f"{name}.wasm").read_bytes()
                        for name in ("jobs", "registry")})
    assert outputs[0] == outputs[1]


def test_cli_deploy_to_configured_accounts(chain: Chain, stack: dict) -> None:
    jobs, registry = fresh_name("jobs"), fresh_name("regy")
    result = _cli("deploy", "--stack", str(stack["workdir"]), "--jobs-account", jobs,
                  "--registry-account", registry)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["created"] == [jobs, registry] and report["code_set"] == [jobs, registry]
    for account, name in ((jobs, "jobs"), (registry, "registry")):
        wasm = (contract_build.BUILD_DIR / f"{name}.wasm").read_bytes()
        assert devchain.code_hash(chain.url, account) == hashlib.sha256(wasm).hexdigest()
    assert chain.rows(jobs, jobs, "reg") == [{"registry_contract": registry}]
    assert chain.rows(registry, registry, "config") == [{"jobs_contract": jobs}]
    info = devchain.rpc(chain.url, "/v1/chain/get_account", {"account_name": jobs})
    active = next(p for p in info["permissions"] if p["perm_name"] == "active")
    assert [a["permission"] for a in active["required_auth"]["accounts"]] == [
        {"actor": jobs, "permission": "eosio.code"}]
    # An operator error is one line, no traceback.
    bad = _cli("deploy", "--url", "http://127.0.0.1:9", "--jobs-account", jobs)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("clusterjobs: error: ")
    assert "Traceback" not in bad.stderr


def test_cli_delegate_and_deposit(chain: Chain, stack: dict) -> None:
    """`contracts delegate` gives a key the fund account's cjpay permission linked to
    jobs::payout only; `contracts deposit` fills a protocol's escrow; a bad deposit is one
    error line."""
    from pyeoskit import eosapi

    w = make_world(chain, workers=0, dispatchers=0)
    chain.push(chain.registry, "addprotocol", protocol_args(w), parties(w))
    key = eosapi.create_key()["public"]
    where = ("--stack", str(stack["workdir"]))
    done = _cli("delegate", *where, "--funder", w.funder, "--key", key)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (f"{w.funder}@cjpay holds {key} and is linked to "
                                   "jobs::payout only")
    info = devchain.rpc(chain.url, "/v1/chain/get_account", {"account_name": w.funder})
    [cjpay] = [p for p in info["permissions"] if p["perm_name"] == "cjpay"]
    assert cjpay["required_auth"]["keys"] == [{"key": key, "weight": 1}]
    assert [(link["account"], link["action"]) for link in cjpay["linked_actions"]] == [
        ("jobs", "payout")]
    done = _cli("deposit", *where, "--funder", w.funder, "--researcher", w.researcher,
                "--quantity", "12.5000 JOB")
    assert done.returncode == 0, done.stderr
    assert escrow(chain, w) == 125_000
    bad = _cli("deposit", *where, "--funder", w.funder, "--researcher", fresh_name("nox"),
               "--quantity", "1.0000 JOB")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    [line] = bad.stderr.strip().splitlines()[-1:]
    assert line.startswith("clusterjobs: error: eosio.token::transfer failed: ") and (
        "no protocol for researcher" in line), line


# ------------------------------------------------------------------ 2. lifecycle

def test_full_lifecycle(chain: Chain) -> None:
    w = make_world(chain, workers=1, dispatchers=1)
    worker, dispatcher = w.workers[0], w.dispatchers[0]
    funder_start = chain.units(w.funder)
    registry_start = chain.units(chain.registry)
    # The protocol starts with an empty escrow; the funder's deposit fills it.
    chain.push(chain.registry, "addprotocol", protocol_args(w, worker_rate=0.3,
                                                            dispatcher_rate=0.125),
               parties(w))
    [row] = chain.rows("registry", w.owner, "protocol")
    worker_fixed = pay.rate_to_fixed(0.3, 4)
    dispatcher_fixed = pay.rate_to_fixed(0.125, 4)
    assert row["worker_pay_rate"] == worker_fixed
    assert row["dispatcher_pay_rate"] == dispatcher_fixed
    assert row["fund"] == "0.0000 JOB" and row["fundaccount"] == w.funder
    assert int(row["max_task_time"]) == 7 * 24 * 3600 * 10**6  # the default
    assert chain.row("registry", "registry", "researcher", w.researcher) == {
        "researcher": w.researcher, "owner": w.owner, "max_task_time": row["max_task_time"]}
    chain.push_many([chain.deposit_action(w.funder, w.researcher, "600.0000 JOB")])
    chain.push_many([chain.deposit_action(w.funder, w.researcher, "400.0000 JOB")])
    assert escrow(chain, w) == 10_000_000
    assert chain.units(w.funder) == funder_start - 10_000_000
    assert chain.units(chain.registry) == registry_start + 10_000_000

    chain.push(chain.jobs, "conntoreg", {"registry_contract": chain.registry},
               {chain.jobs: "active"})
    chain.push_many([
        (chain.jobs, "regworker", {"worker": worker, "researcher": w.researcher},
         {chain.jobs: "active"}),
        (chain.jobs, "regdisptch", {"dispatcher": dispatcher, "researcher": w.researcher},
         {chain.jobs: "active"}),
    ])
    worker_times = [1_234_567 + 1_001 * i for i in range(30)]
    dispatcher_times = [2_000_003 + 997 * i for i in range(30)]
    chain.push_many([(chain.jobs, "newjob",
                      {"researcher": w.researcher, "worker": worker, "time": t},
                      {chain.jobs: "active"}) for t in worker_times])
    chain.push_many([(chain.jobs, "updatedptch",
                      {"researcher": w.researcher, "dispatcher": dispatcher, "time": t},
                      {chain.jobs: "active"}) for t in dispatcher_times])
    worker_total, dispatcher_total = sum(worker_times), sum(dispatcher_times)
    assert chain.rows("jobs", worker, "worker") == [
        {"researcher": w.researcher, "total_time": worker_total, "unpaid_time": worker_total}]
    assert len(chain.rows("jobs", worker, "job")) == 30

    expect_w = pay.compute_pay(worker_total, worker_total, worker_fixed)
    expect_d = pay.compute_pay(dispatcher_total, dispatcher_total, dispatcher_fixed)
    assert expect_w > 0 and expect_d > 0

    chain.push(chain.jobs, "payout", _payout(chain, w, worker, "worker"), {w.funder: "active"})
    assert chain.units(worker) == expect_w
    # Paid out of the escrow, not the funder's own balance.
    assert chain.units(w.funder) == funder_start - 10_000_000
    assert escrow(chain, w) == 10_000_000 - expect_w
    # unpaid_time resets, total_time stays.
    assert chain.rows("jobs", worker, "worker") == [
        {"researcher": w.researcher, "total_time": worker_total, "unpaid_time": 0}]

    chain.push(chain.jobs, "payout", _payout(chain, w, dispatcher, "dispatcher"),
               {w.funder: "active"})
    assert chain.units(dispatcher) == expect_d
    assert chain.rows("jobs", dispatcher, "dispatcher") == [
        {"researcher": w.researcher, "total_time": dispatcher_total, "unpaid_time": 0}]
    [row] = chain.rows("registry", w.owner, "protocol")
    assert row["fund"] == units_text(10_000_000 - expect_w - expect_d)

    # A repeated payout with nothing unpaid fails and moves nothing.
    balances = (chain.units(worker), chain.units(w.funder))
    assert chain.error(chain.jobs, "payout", _payout(chain, w, worker, "worker"),
                       {w.funder: "active"}) == assertion(
        f"nothing to pay: worker {worker} has no unpaid time for researcher {w.researcher}")
    assert (chain.units(worker), chain.units(w.funder)) == balances

    # Unpaid time worth less than a unit is settled without a transfer (so it never blocks
    # delprotocol) ...
    chain.push(chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker,
                                      "time": 100}, {chain.jobs: "active"})
    assert pay.compute_pay(worker_total + 100, 100, worker_fixed) == 0
    answer = chain.push(chain.jobs, "payout", _payout(chain, w, worker, "worker"),
                        {w.funder: "active"})
    [trace] = answer["processed"]["action_traces"]
    assert trace["console"] == ("nothing to transfer: the unpaid time is worth less than one "
                                "unit")
    assert chain.units(worker) == expect_w
    assert chain.rows("jobs", worker, "worker")[0]["unpaid_time"] == 0
    # ... and its fraction is paid with later time: the sum of payouts is the value of the
    # whole time.
    chain.push(chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker,
                                      "time": 5_000_000}, {chain.jobs: "active"})
    chain.push(chain.jobs, "payout", _payout(chain, w, worker, "worker"), {w.funder: "active"})
    paid_w = pay.time_value(worker_total + 5_000_100, worker_fixed)
    assert chain.units(worker) == paid_w
    assert chain.rows("jobs", worker, "worker") == [
        {"researcher": w.researcher, "total_time": worker_total + 5_000_100, "unpaid_time": 0}]
    # delprotocol returns what the escrow has left to the fund account.
    chain.push(chain.registry, "delprotocol", {"owner": w.owner, "researcher": w.researcher},
               {w.owner: "active"})
    assert chain.units(w.funder) == funder_start - paid_w - expect_d
    assert chain.units(chain.registry) == registry_start


# ------------------------------------------------------------------ 3. authorization matrix

def test_authorization_matrix(chain: Chain, world: World) -> None:
    w = world
    jobs, registry = chain.jobs, chain.registry
    spare_worker, spare_dispatcher = chain.account("wrk"), chain.account("dsp")
    others = [w.owner, w.researcher, w.funder, w.workers[0], w.dispatchers[0], registry]
    worker, dispatcher = w.workers[0], w.dispatchers[0]
    token = chain.account("tok")  # any account can be allowed as a token contract
    cases: list[tuple[str, str, dict, dict[str, str], list[dict[str, str]], str]] = [
        (jobs, "conntoreg", {"registry_contract": registry}, {jobs: "active"},
         [{a: "active"} for a in others], "missing authority of jobs"),
        (jobs, "regworker", {"worker": spare_worker, "researcher": w.researcher},
         {jobs: "active"}, [{a: "active"} for a in others], "missing authority of jobs"),
        (jobs, "delworker", {"worker": spare_worker, "researcher": w.researcher},
         {jobs: "active"}, [{a: "active"} for a in others], "missing authority of jobs"),
        (jobs, "regdisptch", {"dispatcher": spare_dispatcher, "researcher": w.researcher},
         {jobs: "active"}, [{a: "active"} for a in others], "missing authority of jobs"),
        (jobs, "deldisptch", {"dispatcher": spare_dispatcher, "researcher": w.researcher},
         {jobs: "active"}, [{a: "active"} for a in others], "missing authority of jobs"),
        # The scheduler's jobs@pusher suffices for the three crediting actions.
        (jobs, "newjob", {"researcher": w.researcher, "worker": worker, "time": 9_000_000},
         {jobs: "pusher"}, [{a: "active"} for a in others], "missing authority of jobs"),
        (jobs, "removejob", {"researcher": w.researcher, "worker": worker, "time": 9_000_000},
         {jobs: "pusher"}, [{a: "active"} for a in others], "missing authority of jobs"),
        (jobs, "updatedptch", {"researcher": w.researcher, "dispatcher": dispatcher,
                               "time": 9_000_000},
         {jobs: "pusher"}, [{a: "active"} for a in others], "missing authority of jobs"),
        (jobs, "allowtoken", {"tokencontract": token}, {jobs: "active"},
         [{a: "active"} for a in others], "missing authority of jobs"),
        (jobs, "denytoken", {"tokencontract": token}, {jobs: "active"},
         [{a: "active"} for a in others], "missing authority of jobs"),
        (jobs, "payout", _payout(chain, w, worker, "worker"), {w.funder: "active"},
         [{a: "active"} for a in (jobs, w.owner, w.researcher, worker, registry)],
         f"missing authority of {w.funder}"),
        (jobs, "payout", _payout(chain, w, dispatcher, "dispatcher"), {w.funder: "active"},
         [{a: "active"} for a in (jobs, w.owner, w.researcher, dispatcher, registry)],
         f"missing authority of {w.funder}"),
        (registry, "conntojobs", {"jobs_contract": jobs}, {registry: "active"},
         [{a: "active"} for a in (jobs, *others[:-1])], "missing authority of registry"),
        (registry, "delprotocol", {"owner": w.owner, "researcher": w.researcher},
         {w.owner: "active"},
         [{a: "active"} for a in (w.researcher, w.funder, worker, jobs, registry)],
         f"missing authority of {w.owner}"),
    ]
    for contract, action, args, right, wrongs, message in cases:
        for wrong in wrongs:
            assert chain.error(contract, action, args, wrong) == message, (action, wrong)
        if contract == jobs and right == {jobs: "active"}:
            # jobs@pusher is linked to newjob, updatedptch and removejob only.
            assert chain.error(contract, action, args, {jobs: "pusher"}) == (
                'action declares irrelevant authority \'{"actor":"jobs","permission":"pusher"}\'; '
                'minimum authority is {"actor":"jobs","permission":"active"}'), action
        chain.push(contract, action, args, right)

    # addprotocol needs the owner, the fund account and the researcher.
    args = protocol_args(w)
    owner_and_funder = {w.owner: "active", w.funder: "active"}
    for wrong, missing in (({w.owner: "active"}, w.funder), ({w.funder: "active"}, w.owner),
                           ({w.researcher: "active"}, w.owner), ({jobs: "active"}, w.owner),
                           (owner_and_funder, w.researcher),
                           ({**owner_and_funder, jobs: "active"}, w.researcher)):
        reason = chain.error(registry, "addprotocol", args, wrong)
        assert reason == f"missing authority of {missing}"
    chain.push(registry, "addprotocol", args, parties(w))


def test_registry_payout_only_inline_from_jobs(chain: Chain, world: World) -> None:
    w = world
    args = {"owner": w.owner, "researcher": w.researcher, "worker": w.workers[0],
            "unpaid_time": {"_count": 10_000_000}, "type": "worker"}
    # Even signed by the jobs account a direct push is refused: only jobs' inline action pays.
    assert chain.error(chain.registry, "payout", args, {chain.jobs: "active"}) == assertion(
        "payout runs only as an inline action of jobs")
    for other in (w.funder, w.owner, chain.registry):
        assert chain.error(chain.registry, "payout", args, {other: "active"}) == (
            "missing authority of jobs")
    assert chain.units(w.workers[0]) == 0


def test_payout_needs_no_delegation_of_the_funders_active(chain: Chain) -> None:
    """Escrow: the fund account's active holds only its own key (no contract's eosio.code);
    its signature on jobs::payout is the consent, the tokens come from the registry."""
    w = make_world(chain, workers=1, dispatchers=0)
    open_protocol(chain, w)
    chain.push_many([
        (chain.jobs, "regworker", {"worker": w.workers[0], "researcher": w.researcher},
         {chain.jobs: "active"}),
        (chain.jobs, "newjob", {"researcher": w.researcher, "worker": w.workers[0],
                                "time": 10_000_000}, {chain.jobs: "active"}),
    ])
    info = devchain.rpc(chain.url, "/v1/chain/get_account", {"account_name": w.funder})
    assert {p["perm_name"]: p["required_auth"]["accounts"] for p in info["permissions"]} == {
        "owner": [], "active": []}
    funder_before = chain.units(w.funder)
    chain.push(chain.jobs, "payout", _payout(chain, w, w.workers[0], "worker"),
               {w.funder: "active"})
    assert chain.units(w.workers[0]) == pay.compute_pay(10_000_000, 10_000_000,
                                                        pay.rate_to_fixed(0.3, 4)) == 30_000
    assert chain.units(w.funder) == funder_before
    assert escrow(chain, w) == 10_000_000 - 30_000


# ------------------------------------------------------------------ 4. bad input

def _snapshot(chain: Chain, w: World) -> dict:
    """Every table a bad action could touch, for the world's accounts."""
    tables = [("registry", w.owner, "protocol"), ("registry", "registry", "config"),
              ("jobs", "jobs", "reg")]
    for account in w.workers:
        tables += [("jobs", account, "worker"), ("jobs", account, "job")]
    for account in w.dispatchers:
        tables.append(("jobs", account, "dispatcher"))
    state: dict = {t: chain.rows(*t) for t in tables}
    state["researcher"] = chain.row("registry", "registry", "researcher", w.researcher)
    state["owed"] = chain.row("jobs", "jobs", "owed", w.researcher)
    state["tokens"] = chain.rows("jobs", "jobs", "token")
    state["balances"] = [chain.units(a)
                         for a in (w.funder, *w.workers, *w.dispatchers, chain.registry)]
    return state


def test_bad_input_is_rejected_without_table_change(chain: Chain) -> None:
    w = make_world(chain)
    jobs, registry = chain.jobs, chain.registry
    open_protocol(chain, w, max_task_time=(1 << 62) - 1)
    worker, dispatcher = w.workers[0], w.dispatchers[0]
    chain.push_many([
        (jobs, "regworker", {"worker": worker, "researcher": w.researcher}, {jobs: "active"}),
        (jobs, "regdisptch", {"dispatcher": dispatcher, "researcher": w.researcher},
         {jobs: "active"}),
    ])
    unregistered_worker, unregistered_dispatcher = w.workers[1], w.dispatchers[1]
    stranger = chain.account("own")
    ghost = fresh_name("nox")  # never created
    not_a_token = chain.account("tok")
    big = (1 << 62) - 1_000
    chain.push(jobs, "newjob", {"researcher": w.researcher, "worker": worker, "time": big},
               {jobs: "active"})
    J = {jobs: "active"}
    F = {w.funder: "active"}
    # The parties, and the stranger as the researcher of the refused protocols below.
    both = {**parties(w), stranger: "active"}
    cases: list[tuple[str, str, dict | bytes, dict[str, str], str]] = [
        # unknown protocol
        (jobs, "payout", {**_payout(chain, w, worker, "worker"), "owner": stranger}, F,
         f"unknown protocol: owner {stranger} has no protocol for researcher {w.researcher}"),
        (registry, "delprotocol", {"owner": stranger, "researcher": w.researcher},
         {stranger: "active"},
         f"unknown protocol: owner {stranger} has no protocol for researcher {w.researcher}"),
        # accounts that do not exist
        (jobs, "conntoreg", {"registry_contract": ghost}, J,
         f"registry_contract account {ghost} does not exist"),
        (jobs, "regworker", {"worker": ghost, "researcher": w.researcher}, J,
         f"worker account {ghost} does not exist"),
        (jobs, "regdisptch", {"dispatcher": dispatcher, "researcher": ghost}, J,
         f"researcher account {ghost} does not exist"),
        (registry, "addprotocol", {**protocol_args(w), "researcher": ghost}, both,
         f"researcher account {ghost} does not exist"),
        # unregistered worker or dispatcher
        (jobs, "newjob", {"researcher": w.researcher, "worker": unregistered_worker, "time": 5},
         J, f"worker {unregistered_worker} is not registered for researcher {w.researcher}"),
        (jobs, "updatedptch", {"researcher": w.researcher, "dispatcher": unregistered_dispatcher,
                               "time": 5}, J,
         f"dispatcher {unregistered_dispatcher} is not registered for researcher "
         f"{w.researcher}"),
        (jobs, "delworker", {"worker": unregistered_worker, "researcher": w.researcher}, J,
         f"worker {unregistered_worker} is not registered for researcher {w.researcher}"),
        (jobs, "payout", _payout(chain, w, unregistered_dispatcher, "dispatcher"), F,
         f"dispatcher {unregistered_dispatcher} is not registered for researcher "
         f"{w.researcher}"),
        # duplicate registration
        (jobs, "regworker", {"worker": worker, "researcher": w.researcher}, J,
         f"worker {worker} is already registered for researcher {w.researcher}"),
        (jobs, "regdisptch", {"dispatcher": dispatcher, "researcher": w.researcher}, J,
         f"dispatcher {dispatcher} is already registered for researcher {w.researcher}"),
        (registry, "addprotocol", protocol_args(w), both,
         f"owner {w.owner} already has a protocol for researcher {w.researcher}"),
        # one protocol per researcher
        (registry, "addprotocol", {**protocol_args(w), "owner": stranger}, both,
         f"researcher {w.researcher} already has a protocol (owner {w.owner})"),
        # the escrow stays while time is owed
        (registry, "delprotocol", {"owner": w.owner, "researcher": w.researcher},
         {w.owner: "active"},
         f"the protocol of researcher {w.researcher} still owes unpaid time to contributors "
         "(1 rows); pay them out first"),
        # token contracts the jobs operator allows
        (registry, "addprotocol", {**protocol_args(w), "researcher": stranger,
                                   "tokencontract": not_a_token}, both,
         f"token contract {not_a_token} is not allowed by jobs (allowtoken)"),
        (jobs, "allowtoken", {"tokencontract": "eosio.token"}, J,
         "token contract eosio.token is already allowed"),
        (jobs, "allowtoken", {"tokencontract": ghost}, J,
         f"tokencontract account {ghost} does not exist"),
        (jobs, "denytoken", {"tokencontract": not_a_token}, J,
         f"token contract {not_a_token} is not allowed"),
        # maximum task time
        (registry, "addprotocol", {**protocol_args(w), "researcher": stranger,
                                   "max_task_time": 0}, both,
         "max_task_time must be 1 to 2^62-1 microseconds"),
        (registry, "addprotocol", {**protocol_args(w), "researcher": stranger,
                                   "max_task_time": 1 << 62}, both,
         "max_task_time must be 1 to 2^62-1 microseconds"),
        # unpaid time is never dropped
        (jobs, "delworker", {"worker": worker, "researcher": w.researcher}, J,
         f"worker {worker} has unpaid time for researcher {w.researcher}; pay it out first"),
        # type
        (jobs, "payout", _payout(chain, w, worker, "miner"), F,
         'type must be "worker" or "dispatcher"'),
        (jobs, "payout", _payout(chain, w, worker, "Worker"), F,
         'type must be "worker" or "dispatcher"'),
        # time 0, too large, overflowing
        (jobs, "newjob", {"researcher": w.researcher, "worker": worker, "time": 0}, J,
         "time must be positive"),
        (jobs, "updatedptch", {"researcher": w.researcher, "dispatcher": dispatcher, "time": 0},
         J, "time must be positive"),
        (jobs, "newjob", {"researcher": w.researcher, "worker": worker, "time": 1 << 62}, J,
         "time must be below 2^62 microseconds"),
        (jobs, "newjob", {"researcher": w.researcher, "worker": worker,
                          "time": (1 << 64) - 1}, J, "time must be below 2^62 microseconds"),
        (jobs, "newjob", {"researcher": w.researcher, "worker": worker, "time": 1_000}, J,
         f"time overflows the total_time of worker {worker} for researcher {w.researcher}"),
        (jobs, "removejob", {"researcher": w.researcher, "worker": worker, "time": 12345}, J,
         f"no job of 12345 us for researcher {w.researcher} on worker {worker}"),
        # funder that is not the protocol's
        (jobs, "payout", {**_payout(chain, w, worker, "worker"), "funder": w.owner},
         {w.owner: "active"},
         f"funder {w.owner} is not the fundaccount of the protocol ({w.funder})"),
        # fund symbol and token
        (registry, "addprotocol", {**protocol_args(w), "researcher": stranger,
                                   "fund": "10.00 JOB"}, both,
         "fund symbol 2,JOB does not match the token's symbol 4,JOB on eosio.token"),
        (registry, "addprotocol", {**protocol_args(w), "researcher": stranger,
                                   "fund": "10.0000 NOPE"}, both,
         "token NOPE does not exist on eosio.token"),
        (registry, "addprotocol", {**protocol_args(w), "researcher": stranger,
                                   "fund": "0.0000 JOB"}, both, "fund must be positive"),
        # insufficient fund
        (registry, "addprotocol", {**protocol_args(w), "researcher": stranger,
                                   "fund": "9000.0001 JOB"}, both,
         f"insufficient fund: {w.funder} holds 9000.0000 JOB, the protocol needs "
         "9000.0001 JOB"),
        # strings
        (registry, "addprotocol", {**protocol_args(w), "researcher": stranger, "title": ""},
         both, "title must be 1 to 256 bytes"),
        (registry, "addprotocol", {**protocol_args(w), "researcher": stranger,
                                   "title": "é" * 128 + "x"}, both,
         "title must be 1 to 256 bytes"),
        (registry, "addprotocol", {**protocol_args(w), "researcher": stranger,
                                   "datadir": "/" + "d" * 1024}, both,
         "datadir must be an absolute path of at most 1024 bytes"),
        (registry, "addprotocol", {**protocol_args(w), "researcher": stranger,
                                   "datadir": "relative/dir"}, both,
         "datadir must be an absolute path of at most 1024 bytes"),
    ]
    # datadir must be normalized, so no protocol can alias another's folder by its text.
    for datadir in ("/protocols/mine/../victim", "/protocols//victim", "/protocols/victim/",
                    "/", "/protocols/./victim", "/..", "/protocols/a\nb"):
        cases.append((registry, "addprotocol", {**protocol_args(w), "researcher": stranger,
                                                "datadir": datadir}, both,
                      'datadir must be a normalized path: no empty, "." or ".." components, '
                      "no control characters"))
    # Rates: NaN, infinities, negative, too large (raw float32 bits: JSON cannot carry NaN).
    rate_cases = [
        (0x7FC00000, "must be a finite number"),  # NaN
        (0xFFC00001, "must be a finite number"),  # negative NaN with a payload
        (0x7F800000, "must be a finite number"),  # +inf
        (0xFF800000, "must be a finite number"),  # -inf
        (0xBF800000, "must not be negative"),  # -1.0
        (0x80000001, "must not be negative"),  # smallest negative subnormal
        (0x49800000, "must be at most 1000000 tokens per second"),  # 1048576.0
        (0x00000001, "is below the smallest rate the fund's precision can pay"),  # subnormal
    ]
    fine = serialize.pack_f32(0.5)
    for bits, message in rate_cases:
        bad = serialize.pack_f32_bits(bits)
        for rate_field, data in (("dispatcher_pay_rate", (bad, fine)),
                                 ("worker_pay_rate", (fine, bad))):
            packed = serialize.addprotocol("t", w.owner, stranger, "/d", w.funder,
                                           "1.0000 JOB", "eosio.token", *data)
            cases.append((registry, "addprotocol", packed, both, f"{rate_field} {message}"))

    before = _snapshot(chain, w)
    stranger_before = chain.rows("registry", w.owner, "protocol")
    for contract, action, args, auth, message in cases:
        assert chain.error(contract, action, args, auth) == assertion(message), (action, args)
    assert _snapshot(chain, w) == before
    assert chain.rows("registry", w.owner, "protocol") == stranger_before
    assert chain.rows("registry", stranger, "protocol") == []


def test_payout_beyond_the_protocol_fund_is_refused(chain: Chain) -> None:
    w = make_world(chain, workers=1, dispatchers=0)
    open_protocol(chain, w, fund="1.0000 JOB", worker_rate=1.0)
    worker = w.workers[0]
    chain.push_many([
        (chain.jobs, "regworker", {"worker": worker, "researcher": w.researcher},
         {chain.jobs: "active"}),
        (chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker,
                                "time": 2_000_000}, {chain.jobs: "active"}),
    ])
    before = _snapshot(chain, w)
    assert chain.error(chain.jobs, "payout", _payout(chain, w, worker, "worker"),
                       {w.funder: "active"}) == assertion(
        "insufficient fund: the protocol has 1.0000 JOB left, the payout needs 2.0000 JOB")
    assert _snapshot(chain, w) == before


def test_protocol_strings_at_their_limits_and_delprotocol(chain: Chain) -> None:
    w = make_world(chain, workers=0, dispatchers=0)
    title, datadir = "t" * 256, "/" + "d" * 1023
    chain.push(chain.registry, "addprotocol", {**protocol_args(w), "title": title,
                                               "datadir": datadir},
               parties(w))
    [row] = chain.rows("registry", w.owner, "protocol")
    assert (row["title"], row["datadir"], row["researcher"]) == (title, datadir, w.researcher)
    chain.push(chain.registry, "delprotocol", {"owner": w.owner, "researcher": w.researcher},
               {w.owner: "active"})
    assert chain.rows("registry", w.owner, "protocol") == []


# ------------------------------------------------------------------ 5. equal-length jobs

def test_equal_length_jobs_do_not_collide_and_removejob_by_time(chain: Chain,
                                                                world: World) -> None:
    w = world
    worker = w.workers[0]
    other = make_world(chain, workers=0, dispatchers=0, fund="1.0000 JOB")
    open_protocol(chain, other, fund="1.0000 JOB")
    J = {chain.jobs: "active"}
    chain.push(chain.jobs, "regworker", {"worker": worker, "researcher": other.researcher}, J)

    def job(researcher: str, time: int) -> tuple:
        return (chain.jobs, "newjob", {"researcher": researcher, "worker": worker, "time": time},
                J)

    chain.push_many([job(w.researcher, 7_000), job(w.researcher, 7_000),
                     job(other.researcher, 7_000), job(w.researcher, 7_000),
                     job(w.researcher, 8_000)])
    rows = chain.rows("jobs", worker, "job")
    assert [(r["id"], r["researcher"], r["time"]) for r in rows] == [
        (0, w.researcher, 7_000), (1, w.researcher, 7_000), (2, other.researcher, 7_000),
        (3, w.researcher, 7_000), (4, w.researcher, 8_000)]
    assert chain.rows("jobs", worker, "worker") == [
        {"researcher": w.researcher, "total_time": 29_000, "unpaid_time": 29_000},
        {"researcher": other.researcher, "total_time": 7_000, "unpaid_time": 7_000},
    ] or chain.rows("jobs", worker, "worker") == [
        {"researcher": other.researcher, "total_time": 7_000, "unpaid_time": 7_000},
        {"researcher": w.researcher, "total_time": 29_000, "unpaid_time": 29_000},
    ]

    remove = {"researcher": other.researcher, "worker": worker, "time": 7_000}
    chain.push(chain.jobs, "removejob", remove, J)
    assert [r["id"] for r in chain.rows("jobs", worker, "job")] == [0, 1, 3, 4]
    assert chain.error(chain.jobs, "removejob", remove, J) == assertion(
        f"no job of 7000 us for researcher {other.researcher} on worker {worker}")
    remove["researcher"] = w.researcher
    chain.push(chain.jobs, "removejob", remove, J)  # the oldest of equal length goes first
    assert [r["id"] for r in chain.rows("jobs", worker, "job")] == [1, 3, 4]
    chain.push(chain.jobs, "removejob", {**remove, "time": 8_000}, J)
    assert [r["id"] for r in chain.rows("jobs", worker, "job")] == [1, 3]
    # Removing archives the row only: the credited time stays.
    assert {r["total_time"] for r in chain.rows("jobs", worker, "worker")} == {29_000, 7_000}
    # The next id follows the last row: unique among live rows, but id 4 comes back after
    # its row was removed (documented in contracts/README.md).
    chain.push(*job(w.researcher, 7_000)[:3], J)
    assert [r["id"] for r in chain.rows("jobs", worker, "job")] == [1, 3, 4]


def test_payout_through_a_permission_linked_to_the_schedulers_key(chain: Chain,
                                                                   world: World) -> None:
    """The deployment the scheduler uses (`contracts delegate`): the funder's permission cjpay
    holds only the scheduler's key and is linked to jobs::payout; that key can pay out what is
    owed and cannot move the funder's tokens, deposit, or delete the protocol."""
    from pyeoskit import eosapi, wallet

    w = world
    key = eosapi.create_key()
    assert contract_deploy.delegate_fund(chain.url, w.funder, deployment(chain),
                                         key=key["public"]) is True
    assert contract_deploy.delegate_fund(chain.url, w.funder, deployment(chain),
                                         key=key["public"]) is False  # idempotent
    wallet.import_key("clusterjobs-test", key["private"])
    chain.push(chain.jobs, "newjob", {"researcher": w.researcher, "worker": w.workers[0],
                                      "time": 4_000_000}, {chain.jobs: "pusher"})
    chain.push(chain.jobs, "payout", _payout(chain, w, w.workers[0], "worker"),
               {w.funder: "cjpay"})
    assert chain.units(w.workers[0]) == pay.compute_pay(4_000_000, 4_000_000,
                                                        pay.rate_to_fixed(0.3, 4))
    irrelevant = (f"action declares irrelevant authority '{{\"actor\":\"{w.funder}\","
                  f"\"permission\":\"cjpay\"}}'; minimum authority is "
                  f"{{\"actor\":\"{w.funder}\",\"permission\":\"active\"}}")
    for contract, action, args in (
            ("eosio.token", "transfer", {"from": w.funder, "to": w.owner,
                                         "quantity": "1.0000 JOB", "memo": ""}),
            ("eosio.token", "transfer", {"from": w.funder, "to": chain.registry,
                                         "quantity": "1.0000 JOB", "memo": w.researcher}),
            ("eosio", "linkauth", {"account": w.funder, "code": "eosio.token",
                                   "type": "transfer", "requirement": "cjpay"})):
        prefix = "link " if action == "linkauth" else ""  # nodeos's wording for linkauth
        assert chain.error(contract, action, args, {w.funder: "cjpay"}) == (
            prefix + irrelevant), action


# ------------------------------------------------------------------ 6. review: attacks, limits

def _credit_worker(chain: Chain, w: World, time: int) -> None:
    chain.push(chain.jobs, "newjob", {"researcher": w.researcher, "worker": w.workers[0],
                                      "time": time}, {chain.jobs: "active"})


def test_a_stranger_cannot_open_a_protocol_on_someone_elses_researcher(chain: Chain,
                                                                     world: World) -> None:
    """Worker rows are keyed by researcher only, so whoever holds a protocol for a researcher
    can settle that researcher's workers. Without the researcher's consent a stranger could
    open (stranger, researcher) with a tiny rate and a 1-unit budget, pay every worker a
    fraction of a token and zero their unpaid time, so the real protocol never pays it."""
    w = world
    worker = w.workers[0]
    _credit_worker(chain, w, 10_000_000)  # 10 s: 3.0000 JOB at the real protocol's 0.3/s
    mallory = make_world(chain, workers=0, dispatchers=0, fund="1.0000 JOB")
    squat = {**protocol_args(mallory, fund="0.0100 JOB", worker_rate=0.0001,
                             dispatcher_rate=0.0001), "researcher": w.researcher}
    reason = chain.error(chain.registry, "addprotocol", squat,
                         {mallory.owner: "active", mallory.funder: "active"})
    assert reason == f"missing authority of {w.researcher}"
    assert chain.rows("registry", mallory.owner, "protocol") == []
    # So only the real funder can settle the worker, at the real rate.
    attack = {**_payout(chain, w, worker, "worker"), "owner": mallory.owner,
              "funder": mallory.funder}
    assert chain.error(chain.jobs, "payout", attack, {mallory.funder: "active"}) == assertion(
        f"unknown protocol: owner {mallory.owner} has no protocol for researcher "
        f"{w.researcher}")
    assert chain.rows("jobs", worker, "worker")[0]["unpaid_time"] == 10_000_000
    chain.push(chain.jobs, "payout", _payout(chain, w, worker, "worker"), {w.funder: "active"})
    assert chain.units(worker) == pay.compute_pay(10_000_000, 10_000_000,
                                                  pay.rate_to_fixed(0.3, 4)) == 30_000


def test_action_data_beyond_the_first_memory_page(chain: Chain, world: World) -> None:
    """The bump allocator grows the memory: a 150 KB action (its buffer alone needs three
    more 64 KiB pages) still gets the contract's own message, not a memory fault."""
    w = world
    packed = serialize.addprotocol("t" * 150_000, w.owner, w.researcher, "/d", w.funder,
                                   "1.0000 JOB", "eosio.token", serialize.pack_f32(0.5),
                                   serialize.pack_f32(0.5))
    assert chain.error(chain.registry, "addprotocol", packed, parties(w)) == assertion(
        "title must be 1 to 256 bytes")
    big_type = _payout(chain, w, w.workers[0], "w" * 150_000)
    assert chain.error(chain.jobs, "payout", big_type, {w.funder: "active"}) == assertion(
        'type must be "worker" or "dispatcher"')


def test_a_small_payout_after_a_large_total_is_not_stuck(chain: Chain) -> None:
    """Only the payout must fit a token amount, not the value of the whole total_time at
    today's rate: after a rate change (delprotocol + addprotocol) a worker with a long history
    must still be paid for new time, or the unpaid time is stuck forever (and delworker
    refuses the row)."""
    w = make_world(chain, workers=1, dispatchers=0)
    worker = w.workers[0]
    history = 50_000_000_000_000_000  # < 2^62 us
    open_protocol(chain, w, worker_rate=1e-9, max_task_time=history)
    chain.push(chain.jobs, "regworker", {"worker": worker, "researcher": w.researcher},
               {chain.jobs: "active"})
    _credit_worker(chain, w, history)
    chain.push(chain.jobs, "payout", _payout(chain, w, worker, "worker"), {w.funder: "active"})
    paid = chain.units(worker)
    assert paid == pay.time_value(history, pay.rate_to_fixed(1e-9, 4)) > 0
    # The owner re-prices the protocol (everything paid, so delprotocol is allowed): 10,000
    # JOB per second. No time is credited while there is no protocol.
    chain.push(chain.registry, "delprotocol", {"owner": w.owner, "researcher": w.researcher},
               {w.owner: "active"})
    assert chain.error(chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker,
                                              "time": 1_000}, {chain.jobs: "active"}) == (
        assertion(f"researcher {w.researcher} has no protocol"))
    open_protocol(chain, w, worker_rate=10_000.0)
    _credit_worker(chain, w, 1_000)  # 1 ms = 10.0000 JOB
    chain.push(chain.jobs, "payout", _payout(chain, w, worker, "worker"), {w.funder: "active"})
    assert chain.units(worker) - paid == 100_000
    assert chain.rows("jobs", worker, "worker")[0]["unpaid_time"] == 0


def _set_fake_row(chain: Chain, fake: str, scope: int, table: str, key: int,
                  data: bytes) -> None:
    chain.push(fake, "setrow", {"scope": scope, "table": table, "key": key, "data": data.hex()},
               {fake: "active"})


def test_a_fake_tokens_balance_row_with_another_symbol_is_refused(chain: Chain,
                                                                  fake_token: str) -> None:
    """A token contract the registry cannot trust may hold an `accounts` row whose symbol is
    not the token's (here precision 200): it must be refused with a clear message, and never
    reach the asset printer (whose digit buffer holds 18 digits)."""
    w = make_world(chain, workers=0, dispatchers=0, fund="1.0000 JOB")
    code = serialize.symbol_value(0, "JOB") >> 8
    stat = (serialize.pack_asset("1000.0000 JOB") + serialize.pack_asset("1000.0000 JOB")
            + serialize.pack_name(fake_token))
    _set_fake_row(chain, fake_token, code, "stat", code, stat)
    balance = struct.pack("<qQ", 5, serialize.symbol_value(200, "JOB"))
    _set_fake_row(chain, fake_token, serialize.name_value(w.funder), "accounts", code, balance)
    args = protocol_args(w, fund="1.0000 JOB", token=fake_token)
    # Refused first because the jobs operator does not allow this token contract ...
    assert chain.error(chain.registry, "addprotocol", args, parties(w)) == assertion(
        f"token contract {fake_token} is not allowed by jobs (allowtoken)")
    # ... and, were it allowed, for its malformed row.
    chain.push(chain.jobs, "allowtoken", {"tokencontract": fake_token}, {chain.jobs: "active"})
    try:
        assert chain.error(chain.registry, "addprotocol", args, parties(w)) == assertion(
            f"the balance of {w.funder} on {fake_token} has symbol 200,JOB, not the token's "
            "4,JOB")
    finally:
        chain.push(chain.jobs, "denytoken", {"tokencontract": fake_token},
                   {chain.jobs: "active"})
    assert chain.rows("registry", w.owner, "protocol") == []


def test_notifications_do_not_run_our_actions(chain: Chain, world: World,
                                              fake_token: str) -> None:
    """A contract may notify ours with an action named like theirs (here `payout` carrying
    registry::payout's data): both contracts ignore such notifications, so nothing runs (a
    handled one would abort the sender's transaction or, worse, act on forged data). The
    registry handles token transfers only: a deposit from the protocol's token contract."""
    w = world
    _credit_worker(chain, w, 10_000_000)
    forged = (serialize.pack_name(w.owner) + serialize.pack_name(w.researcher)
              + serialize.pack_name(w.workers[0]) + struct.pack("<q", 10_000_000)
              + serialize.pack_string("worker"))
    before = _snapshot(chain, w)
    for target in (chain.registry, chain.jobs):
        chain.push(fake_token, "payout", serialize.pack_name(target) + forged,
                   {fake_token: "active"})
    # A look-alike transfer to the registry (a fake deposit) is refused, escrow unchanged.
    fake_deposit = {"from": w.funder, "to": chain.registry, "quantity": "500.0000 JOB",
                    "memo": w.researcher}
    assert chain.error(fake_token, "transfer", fake_deposit, {w.funder: "active"}) == (
        assertion(f"the protocol of researcher {w.researcher} is funded on eosio.token, not "
                  f"on {fake_token}"))
    assert _snapshot(chain, w) == before
    # Real transfers to the jobs account go through (it does not abort them) and change no
    # table; to the registry only deposits pass.
    held = chain.units(chain.jobs)
    chain.fund(chain.jobs, "0.0001 JOB")
    assert chain.units(chain.jobs) == held + 1
    assert _snapshot(chain, w) == before
    assert chain.error("eosio.token", "transfer",
                       {"from": "eosio", "to": chain.registry, "quantity": "0.0001 JOB",
                        "memo": "test fund"}, {"eosio": "active"}) == assertion(
        "a deposit's memo must be the researcher of a protocol (an account name)")


def test_one_worker_for_two_researchers_and_registered_again(chain: Chain) -> None:
    """A worker's time is kept per researcher: one researcher's funder pays only that
    researcher's row; after delworker + regworker the row starts from zero and pays exactly
    the new time (nothing twice, nothing of the other researcher)."""
    a = make_world(chain, workers=1, dispatchers=0)
    b = make_world(chain, workers=0, dispatchers=0)
    worker = a.workers[0]
    b.workers = [worker]
    J = {chain.jobs: "active"}
    open_protocol(chain, a, worker_rate=0.3)
    open_protocol(chain, b, worker_rate=2.0)
    chain.push_many([
        (chain.jobs, "regworker", {"worker": worker, "researcher": a.researcher}, J),
        (chain.jobs, "regworker", {"worker": worker, "researcher": b.researcher}, J),
        (chain.jobs, "newjob", {"researcher": a.researcher, "worker": worker,
                                "time": 10_000_000}, J),
        (chain.jobs, "newjob", {"researcher": b.researcher, "worker": worker,
                                "time": 3_000_000}, J),
    ])
    # a's funder cannot settle b's row through a's protocol (it is keyed by researcher).
    cross = {**_payout(chain, a, worker, "worker"), "researcher": b.researcher}
    assert chain.error(chain.jobs, "payout", cross, {a.funder: "active"}) == assertion(
        f"unknown protocol: owner {a.owner} has no protocol for researcher {b.researcher}")
    chain.push(chain.jobs, "payout", _payout(chain, a, worker, "worker"), {a.funder: "active"})
    assert chain.units(worker) == 30_000
    rows = {r["researcher"]: r for r in chain.rows("jobs", worker, "worker")}
    assert rows[a.researcher]["unpaid_time"] == 0
    assert rows[b.researcher]["unpaid_time"] == 3_000_000
    # Registered again for a: a fresh row, paid for the new time only.
    chain.push_many([
        (chain.jobs, "delworker", {"worker": worker, "researcher": a.researcher}, J),
        (chain.jobs, "regworker", {"worker": worker, "researcher": a.researcher}, J),
        (chain.jobs, "newjob", {"researcher": a.researcher, "worker": worker,
                                "time": 1_000_000}, J),
    ])
    chain.push(chain.jobs, "payout", _payout(chain, a, worker, "worker"), {a.funder: "active"})
    chain.push(chain.jobs, "payout", _payout(chain, b, worker, "worker"), {b.funder: "active"})
    assert chain.units(worker) == 30_000 + 3_000 + 60_000
    assert {r["researcher"]: (r["total_time"], r["unpaid_time"])
            for r in chain.rows("jobs", worker, "worker")} == {
        a.researcher: (1_000_000, 0), b.researcher: (3_000_000, 0)}


def test_removejob_past_many_equal_length_jobs_grows_memory(chain: Chain, world: World) -> None:
    """removejob loads every job of that length until it finds the researcher's own: 2,200
    rows of another researcher need about 70 KB of row buffers, more than the first memory
    page leaves after the stack and data (the allocator must grow memory in a success path)."""
    w = world
    worker = w.workers[0]
    other = make_world(chain, workers=0, dispatchers=0, fund="1.0000 JOB")
    open_protocol(chain, other, fund="1.0000 JOB")
    J = {chain.jobs: "active"}
    chain.push(chain.jobs, "regworker", {"worker": worker, "researcher": other.researcher}, J)
    crowd = 2_200
    for start in range(0, crowd, 100):
        chain.push_many([(chain.jobs, "newjob", {"researcher": other.researcher,
                                                 "worker": worker, "time": 4_242}, J)
                         for _ in range(start, min(start + 100, crowd))])
    _credit_worker(chain, w, 4_242)
    chain.push(chain.jobs, "removejob", {"researcher": w.researcher, "worker": worker,
                                         "time": 4_242}, J)
    answer = devchain.rpc(chain.url, "/v1/chain/get_table_rows",
                          {"code": chain.jobs, "scope": worker, "table": "job", "json": True,
                           "lower_bound": str(crowd - 1), "limit": 10})
    assert [(r["id"], r["researcher"]) for r in answer["rows"]] == [
        (crowd - 1, other.researcher)]


def test_rate_edge_values_that_are_accepted(chain: Chain) -> None:
    """-0.0 is a zero rate (IEEE -0.0 >= 0); the largest rate, 1,000,000 tokens/s, is stored
    exactly (10^16 for 4,JOB); a rate that converts to one fixed-point unit is the smallest."""
    w = make_world(chain, workers=0, dispatchers=0)
    packed = serialize.addprotocol("edges", w.owner, w.researcher, "/p/edges", w.funder,
                                   "1.0000 JOB", "eosio.token",
                                   serialize.pack_f32_bits(0x80000000),  # -0.0
                                   serialize.pack_f32(1_000_000.0))
    chain.push(chain.registry, "addprotocol", packed, parties(w))
    [row] = chain.rows("registry", w.owner, "protocol")
    assert (int(row["dispatcher_pay_rate"]), int(row["worker_pay_rate"])) == (0, 10**16)
    assert pay.rate_to_fixed(1e-10, 4) == 1


# ------------------------------------------------------------------ 7. idempotent credits

def _seen_at(chain: Chain, credit_id: int) -> int | None:
    """When the jobs contract first saw ``credit_id`` (None: never, or pruned)."""
    rows = devchain.rpc(chain.url, "/v1/chain/get_table_rows",
                        {"code": chain.jobs, "scope": chain.jobs, "table": "credit",
                         "json": True, "lower_bound": str(credit_id), "limit": 1})["rows"]
    if rows and int(rows[0]["id"]) == credit_id:
        return int(rows[0]["seen_at"])
    return None


def test_a_task_credited_twice_counts_once(chain: Chain, world: World) -> None:
    """Audit finding 2: a pusher resending a finished task's credit (a new transaction, or the
    same credit twice in one batch) must not pay it twice. With its credit_id the repeat is a
    no-op that does not abort its transaction; without one (0 or the seed's three arguments)
    every push counts."""
    w = world
    worker, dispatcher = w.workers[0], w.dispatchers[0]
    J = {chain.jobs: "active"}
    task, other, disp = (secrets.randbits(64) | 1 for _ in range(3))

    def newjob(time: int, credit_id: int | None) -> tuple:
        args = {"researcher": w.researcher, "worker": worker, "time": time}
        return (chain.jobs, "newjob", args if credit_id is None else
                {**args, "credit_id": credit_id}, J)

    def updatedptch(time: int, credit_id: int) -> tuple:
        return (chain.jobs, "updatedptch", {"researcher": w.researcher, "dispatcher": dispatcher,
                                            "time": time, "credit_id": credit_id}, J)

    # Separate transactions: the audit's two pushes of 10,000,000 us.
    chain.push_many([newjob(10_000_000, task)])
    chain.push_many([newjob(10_000_000, task)])
    assert chain.rows("jobs", worker, "worker")[0]["unpaid_time"] == 10_000_000
    # One batch holding a repeat of an earlier credit, a new one twice, and a dispatcher credit
    # twice: the batch goes through and each task counts once.
    answer = chain.push_many([newjob(10_000_000, task), newjob(3_000, other),
                              newjob(3_000, other), updatedptch(700, disp),
                              updatedptch(700, disp)])
    consoles = [t["console"] for t in answer["processed"]["action_traces"]]
    assert consoles == ["duplicate credit ignored", "", "duplicate credit ignored", "",
                        "duplicate credit ignored"]
    assert chain.rows("jobs", worker, "worker")[0]["unpaid_time"] == 10_003_000
    assert chain.rows("jobs", dispatcher, "dispatcher")[0]["unpaid_time"] == 700
    jobs = chain.rows("jobs", worker, "job")
    # nodeos shows uint64 values above 2^32 as strings.
    assert [(int(j["time"]), int(j["credit_id"])) for j in jobs] == [
        (10_000_000, task), (3_000, other)]
    seen = {i: _seen_at(chain, i) for i in (task, other, disp)}
    head = devchain.rpc(chain.url, "/v1/chain/get_info")["head_block_time"]
    head_us = int(datetime.fromisoformat(head + "+00:00").timestamp() * 1_000_000)
    # seen_at is the time of the block that held the credit (the head's or one after it).
    assert all(-1_000_000 <= head_us - seen[i] < 60_000_000 for i in (task, other, disp))
    # No identity: credit_id 0 and the seed's form both count every time.
    chain.push_many([newjob(5, 0), newjob(5, 0), newjob(5, None), newjob(5, None)])
    assert chain.rows("jobs", worker, "worker")[0]["unpaid_time"] == 10_003_020
    assert _seen_at(chain, 0) is None


def test_removejob_keeps_a_job_with_an_identity_for_the_credit_window(chain: Chain,
                                                                        world: World) -> None:
    """A job row with a credit_id is the trace of a credit a pusher may still resend: it cannot
    be archived within the 24-hour window; one without an identity can."""
    w = world
    worker = w.workers[0]
    J = {chain.jobs: "active"}
    task = secrets.randbits(64) | 1
    chain.push_many([
        (chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker, "time": 4_321,
                                "credit_id": task}, J),
        (chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker, "time": 1_234}, J),
    ])
    assert chain.error(chain.jobs, "removejob", {"researcher": w.researcher, "worker": worker,
                                                 "time": 4_321}, J) == assertion(
        f"job 0 of 4321 us for researcher {w.researcher} on worker {worker} was credited less "
        "than 24 hours ago (the credit window)")
    chain.push(chain.jobs, "removejob", {"researcher": w.researcher, "worker": worker,
                                         "time": 1_234}, J)
    assert [j["id"] for j in chain.rows("jobs", worker, "job")] == [0]


def test_identities_older_than_the_window_are_pruned(chain: Chain, tmp_path: Path) -> None:
    """A copy of the jobs contract built with a 2-second window, on fresh accounts: each new
    identity prunes the expired ones (RAM stays one window's worth), a job row with an
    identity can be archived once its window has passed, and a credit resent after the window
    counts again (the documented limit)."""
    contract_build.build_one("jobs", "jobs", tmp_path, defines=("CJ_CREDIT_WINDOW_US=2000000",))
    contract_build.build_one("registry", "registry", tmp_path)
    target = contract_deploy.Deployment(chain.url, fresh_name("jobs"), fresh_name("regy"))
    contract_deploy.deploy(target, build_dir=tmp_path)
    jobs = target.jobs
    own = Chain(chain.url, target.jobs, target.registry, chain.api)
    w = make_world(own, workers=1, dispatchers=0)
    open_protocol(own, w)
    researcher, worker = w.researcher, w.workers[0]
    J = {jobs: "active"}
    chain.push(jobs, "regworker", {"worker": worker, "researcher": researcher}, J)

    def credit(time: int, credit_id: int) -> None:
        chain.push(jobs, "newjob", {"researcher": researcher, "worker": worker, "time": time,
                                    "credit_id": credit_id}, J)

    def identities() -> set[int]:
        return {int(r["id"]) for r in chain.rows(jobs, jobs, "credit")}

    credit(100, 11)
    credit(200, 12)
    credit(100, 11)  # within the window: a no-op
    assert identities() == {11, 12}
    time.sleep(3)
    credit(300, 13)  # prunes both expired identities
    assert identities() == {13}
    chain.push(jobs, "removejob", {"researcher": researcher, "worker": worker, "time": 100}, J)
    credit(100, 11)  # after the window the identity is forgotten: it counts again
    assert identities() == {11, 13}
    assert chain.rows(jobs, worker, "worker")[0]["total_time"] == 700
