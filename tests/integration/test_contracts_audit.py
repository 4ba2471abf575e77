"""The audit of issue 13 as chain tests: each attack that used to succeed now fails to do
harm (escrowed funds, idempotent credits, consented settlement, bounded credits, least
privilege). Helpers in tests/fixtures/contracts_world.py, fixtures in conftest.py."""

from __future__ import annotations

import secrets
from decimal import Decimal
from pathlib import Path

from contracts_world import (
    Chain,
    World,
    assertion,
    escrow,
    fresh_name,
    make_world,
    open_protocol,
    payout_args,
    protocol_args,
)

from actors.stack import devchain
from contracts import build as contract_build
from contracts import deploy as contract_deploy
from contracts import pay


def _fresh_deployment(chain: Chain) -> Chain:
    """Both contracts on new accounts, so a test may replace their code."""
    target = contract_deploy.Deployment(chain.url, fresh_name("jobs"), fresh_name("regy"))
    contract_deploy.deploy(target)
    return Chain(chain.url, target.jobs, target.registry, chain.api)


def _register_and_credit(chain: Chain, w: World, time: int) -> None:
    J = {chain.jobs: "active"}
    chain.push_many([
        (chain.jobs, "regworker", {"worker": w.workers[0], "researcher": w.researcher}, J),
        (chain.jobs, "newjob", {"researcher": w.researcher, "worker": w.workers[0],
                                "time": time}, J),
    ])


# ------------------------------------------------------------------ (a) escrow

def test_a_contract_accounts_key_cannot_take_a_funders_tokens(chain: Chain,
                                                               tmp_path: Path) -> None:
    """Finding 1: whoever holds jobs@active or registry@active can setcode. Before, the funder
    had delegated its active to both contracts' eosio.code, and such code took the funder's
    whole balance. Now no funder delegates active: code set on the jobs account takes nothing
    from the funder; code set on the registry reaches at most the escrowed remainder (its own
    balance), never the funder's."""
    own = _fresh_deployment(chain)
    w = make_world(own, workers=1, dispatchers=0)  # the funder holds 10000.0000 JOB
    open_protocol(own, w, fund="1000.0000 JOB")
    # The scheduler's delegated permission is in place too: it changes nothing below.
    contract_deploy.delegate_fund(own.url, w.funder, contract_deploy.Deployment(
        own.url, own.jobs, own.registry))
    _register_and_credit(own, w, 10_000_000)
    own.push(own.jobs, "payout", payout_args(w, w.workers[0], "worker"), {w.funder: "active"})
    left = 10_000_000 - 30_000
    assert escrow(own, w) == left == own.units(own.registry)
    funder_before = own.units(w.funder)
    assert funder_before == 90_000_000

    thief = contract_build.build_one("thief", "testing/thief", tmp_path)
    attacker = own.account("thf")

    def steal(contract: str, source: str, units: int) -> str:
        quantity = f"{units // 10_000}.{units % 10_000:04d} JOB"
        return own.error(contract, "steal", {"token": "eosio.token", "from": source,
                                             "to": attacker, "quantity": quantity},
                         {contract: "active"})

    # Code set on the jobs account with its own key: neither the funder nor the escrow.
    devchain.deploy_contract(own.jobs, thief.wasm, thief.abi)
    for source in (w.funder, own.registry):
        reason = steal(own.jobs, source, 10_000)
        assert reason.startswith(
            f'transaction declares authority \'{{"actor":"{source}","permission":"active"}}\''
        ), reason
        assert f'"actor":"{own.jobs}","permission":"eosio.code"' in reason
    # Code set on the registry with its own key: the funder's tokens stay out of reach ...
    devchain.deploy_contract(own.registry, thief.wasm, thief.abi)
    reason = steal(own.registry, w.funder, 10_000)
    assert reason.startswith(
        f'transaction declares authority \'{{"actor":"{w.funder}","permission":"active"}}\''
    ), reason
    # ... and of the escrow it reaches what is left, not a unit more.
    assert steal(own.registry, own.registry, left + 1) == assertion("overdrawn balance")
    own.push(own.registry, "steal", {"token": "eosio.token", "from": own.registry,
                                     "to": attacker, "quantity": "997.0000 JOB"},
             {own.registry: "active"})
    assert own.units(attacker) == left
    assert own.units(w.funder) == funder_before


def test_deposits_only_from_the_fund_account_in_the_protocols_token(chain: Chain,
                                                                    world: World) -> None:
    """The registry counts a transfer into a protocol's escrow only from the protocol's token
    contract, its fund account and symbol, with the researcher as memo; everything else sent
    to the registry is refused (nothing is stranded there unaccounted for)."""
    w = world
    before = escrow(chain, w)
    stranger = chain.account("str")
    chain.fund(stranger, "10.0000 JOB")
    symbol = "T" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(6))
    chain.push_many([
        ("eosio.token", "create", {"issuer": "eosio", "maximum_supply": f"100.0000 {symbol}"},
         {"eosio.token": "active"}),
        ("eosio.token", "issue", {"to": "eosio", "quantity": f"100.0000 {symbol}",
                                  "memo": ""}, {"eosio": "active"}),
        ("eosio.token", "transfer", {"from": "eosio", "to": w.funder,
                                     "quantity": f"100.0000 {symbol}", "memo": ""},
         {"eosio": "active"}),
    ])
    ghost = fresh_name("nox")
    cases = [
        (stranger, "1.0000 JOB", w.researcher,
         f"deposits to the protocol of researcher {w.researcher} come from its fundaccount "
         f"{w.funder}, not from {stranger}"),
        (w.funder, f"1.0000 {symbol}", w.researcher,
         f"the deposit's symbol 4,{symbol} is not the protocol's 4,JOB"),
        (w.funder, "1.0000 JOB", ghost, f"no protocol for researcher {ghost} to deposit into"),
        (w.funder, "1.0000 JOB", f"{w.researcher} ",
         "a deposit's memo must be the researcher of a protocol (an account name)"),
        (w.funder, "1.0000 JOB", "",
         "a deposit's memo must be the researcher of a protocol (an account name)"),
    ]
    for source, quantity, memo, message in cases:
        assert chain.error("eosio.token", "transfer",
                           {"from": source, "to": chain.registry, "quantity": quantity,
                            "memo": memo}, {source: "active"}) == assertion(message), memo
    assert escrow(chain, w) == before
    chain.push_many([chain.deposit_action(w.funder, w.researcher, "2.5000 JOB")])
    assert escrow(chain, w) == before + 25_000


def test_the_escrow_stays_until_the_time_is_paid_then_returns(chain: Chain,
                                                               world: World) -> None:
    """delprotocol is refused while contributors hold unpaid time earned under the protocol
    (the funder cannot walk away with the escrow); once they are paid it returns the
    remainder to the fund account."""
    w = world
    worker, dispatcher = w.workers[0], w.dispatchers[0]
    J = {chain.jobs: "active"}
    chain.push_many([
        (chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker,
                                "time": 10_000_000}, J),
        (chain.jobs, "updatedptch", {"researcher": w.researcher, "dispatcher": dispatcher,
                                     "time": 8_000_000}, J),
    ])
    assert chain.row("jobs", "jobs", "owed", w.researcher) == {"researcher": w.researcher,
                                                               "rows": 2}
    delete = {"owner": w.owner, "researcher": w.researcher}
    for rows in (2, 1):
        assert chain.error(chain.registry, "delprotocol", delete, {w.owner: "active"}) == (
            assertion(f"the protocol of researcher {w.researcher} still owes unpaid time to "
                      f"contributors ({rows} rows); pay them out first"))
        kind, who = ("worker", worker) if rows == 2 else ("dispatcher", dispatcher)
        chain.push(chain.jobs, "payout", payout_args(w, who, kind), {w.funder: "active"})
    assert chain.row("jobs", "jobs", "owed", w.researcher) is None
    funder_before, left = chain.units(w.funder), escrow(chain, w)
    assert left == 10_000_000 - 30_000 - 10_000
    chain.push(chain.registry, "delprotocol", delete, {w.owner: "active"})
    assert chain.units(w.funder) == funder_before + left
    assert chain.row("registry", "registry", "researcher", w.researcher) is None
    # Without a protocol nothing more is credited, so nothing is owed without an escrow.
    assert chain.error(chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker,
                                              "time": 1_000}, J) == assertion(
        f"researcher {w.researcher} has no protocol")


def test_a_fund_account_can_be_paid_as_a_contributor(chain: Chain, world: World) -> None:
    """Finding 5: eosio.token refuses a transfer to oneself, so a contributor who is also the
    fund account could never be paid (nor deregistered). Payouts now come from the registry's
    escrow, so it is paid like anyone else and can then be deregistered."""
    w = world
    J = {chain.jobs: "active"}
    chain.push_many([
        (chain.jobs, "regworker", {"worker": w.funder, "researcher": w.researcher}, J),
        (chain.jobs, "newjob", {"researcher": w.researcher, "worker": w.funder,
                                "time": 20_000_000}, J),
    ])
    before = chain.units(w.funder)
    chain.push(chain.jobs, "payout", payout_args(w, w.funder, "worker"), {w.funder: "active"})
    assert chain.units(w.funder) == before + 60_000
    chain.push(chain.jobs, "delworker", {"worker": w.funder, "researcher": w.researcher}, J)
    assert chain.row("jobs", w.funder, "worker", w.researcher) is None


# ------------------------------------------------------------------ (c) consented settlement

def test_a_fake_token_protocol_cannot_clear_unpaid_time(chain: Chain, world: World,
                                                        fake_token: str) -> None:
    """Finding 3: a researcher plus anyone opened a second protocol on a fake token and
    settled a worker's unpaid time, paying nothing real. Now the token contract must be one
    the jobs operator allows, a researcher has one protocol at a time, and the time is settled
    only by the protocol it was earned under, with a real transfer out of its escrow."""
    w = world
    worker = w.workers[0]
    chain.push(chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker,
                                      "time": 10_000_000}, {chain.jobs: "active"})
    mallory = make_world(chain, workers=0, dispatchers=0, fund="1.0000 JOB")
    signers = {mallory.owner: "active", mallory.funder: "active", w.researcher: "active"}
    on_fake = {**protocol_args(mallory, fund="0.0001 JOB", token=fake_token,
                               worker_rate=0.0001), "researcher": w.researcher}
    assert chain.error(chain.registry, "addprotocol", on_fake, signers) == assertion(
        f"token contract {fake_token} is not allowed by jobs (allowtoken)")
    cheap = {**protocol_args(mallory, fund="0.0001 JOB", worker_rate=0.0001),
             "researcher": w.researcher}
    assert chain.error(chain.registry, "addprotocol", cheap, signers) == assertion(
        f"researcher {w.researcher} already has a protocol (owner {w.owner})")
    settle = {**payout_args(w, worker, "worker"), "owner": mallory.owner,
              "funder": mallory.funder}
    assert chain.error(chain.jobs, "payout", settle, {mallory.funder: "active"}) == assertion(
        f"unknown protocol: owner {mallory.owner} has no protocol for researcher "
        f"{w.researcher}")
    assert chain.rows("registry", mallory.owner, "protocol") == []
    assert chain.row("jobs", worker, "worker", w.researcher)["unpaid_time"] == 10_000_000
    # The protocol it was earned under pays it, in real tokens.
    chain.push(chain.jobs, "payout", payout_args(w, worker, "worker"), {w.funder: "active"})
    assert chain.units(worker) == 30_000


# ------------------------------------------------------------------ (d) bounded credits

def test_a_credit_above_the_protocols_maximum_task_time_is_refused(chain: Chain) -> None:
    """Finding 4: one newjob could credit up to 2^62 us. Each protocol now has a maximum task
    time (addprotocol's optional last argument, 7 days when absent), checked on every credit;
    a batch holding one credit above it is refused as a whole."""
    w = make_world(chain, workers=1, dispatchers=1)
    open_protocol(chain, w, max_task_time=60_000_000)
    worker, dispatcher = w.workers[0], w.dispatchers[0]
    J = {chain.jobs: "active"}
    chain.push_many([
        (chain.jobs, "regworker", {"worker": worker, "researcher": w.researcher}, J),
        (chain.jobs, "regdisptch", {"dispatcher": dispatcher, "researcher": w.researcher}, J),
    ])
    too_long = f"us exceeds the maximum task time of 60000000 us of the protocol of " \
               f"researcher {w.researcher}"
    assert chain.batch_error([
        (chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker,
                                "time": 5_000_000, "credit_id": secrets.randbits(64) | 1}, J),
        (chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker,
                                "time": 60_000_001}, J),
    ]) == assertion(f"time 60000001 {too_long}")
    assert chain.error(chain.jobs, "updatedptch", {"researcher": w.researcher,
                                                   "dispatcher": dispatcher,
                                                   "time": 1 << 61}, J) == assertion(
        f"time {1 << 61} {too_long}")
    assert chain.row("jobs", worker, "worker", w.researcher)["total_time"] == 0
    chain.push_many([
        (chain.jobs, "newjob", {"researcher": w.researcher, "worker": worker,
                                "time": 60_000_000}, J),
        (chain.jobs, "updatedptch", {"researcher": w.researcher, "dispatcher": dispatcher,
                                     "time": 60_000_000}, J),
    ])
    assert chain.row("jobs", worker, "worker", w.researcher)["total_time"] == 60_000_000
    assert chain.row("registry", "registry", "researcher", w.researcher) == {
        "researcher": w.researcher, "owner": w.owner, "max_task_time": 60_000_000}


# ------------------------------------------------------------------ least privilege

def test_the_schedulers_keys_reach_only_their_actions(chain: Chain, world: World) -> None:
    """Finding 6: the scheduler's pusher key sits in jobs@pusher (newjob, updatedptch,
    removejob only) and its payout key in funder@cjpay (jobs::payout only): with them it can
    credit and pay what is owed, and nothing else (no setcode, no registration, no token)."""
    w = world
    contract_deploy.delegate_fund(chain.url, w.funder, contract_deploy.Deployment(
        chain.url, chain.jobs, chain.registry))
    P = {chain.jobs: "pusher"}
    chain.push_many([
        (chain.jobs, "newjob", {"researcher": w.researcher, "worker": w.workers[0],
                                "time": 2_000_000}, P),
        (chain.jobs, "updatedptch", {"researcher": w.researcher,
                                     "dispatcher": w.dispatchers[0], "time": 2_000_000}, P),
    ])
    chain.push(chain.jobs, "payout", payout_args(w, w.workers[0], "worker"), {w.funder: "cjpay"})
    assert chain.units(w.workers[0]) == pay.compute_pay(2_000_000, 2_000_000,
                                                        pay.rate_to_fixed(0.3, 4))
    wasm = (contract_build.BUILD_DIR / "jobs.wasm").read_bytes()
    denied = [
        (chain.jobs, "regworker", {"worker": w.workers[1], "researcher": w.researcher}, P),
        (chain.jobs, "allowtoken", {"tokencontract": w.owner}, P),
        ("eosio", "setcode", {"account": chain.jobs, "vmtype": 0, "vmversion": 0,
                              "code": wasm.hex()}, P),
        ("eosio.token", "transfer", {"from": chain.jobs, "to": w.owner,
                                     "quantity": "0.0001 JOB", "memo": ""}, P),
    ]
    for contract, action, args, auth in denied:
        reason = chain.error(contract, action, args, auth)
        assert reason == (
            'action declares irrelevant authority \'{"actor":"jobs","permission":"pusher"}\'; '
            'minimum authority is {"actor":"jobs","permission":"active"}'), (action, reason)


def test_the_sample_protocol_is_escrowed(chain: Chain, stack: dict) -> None:
    """`stack up`'s sample protocol follows the escrow model: its fund sits in the registry,
    the fund account's active names no contract, and its cjpay permission is linked to
    jobs::payout only."""
    sample = stack["sample"]
    funder = sample["fund_account"]
    [row] = [r for r in chain.rows(sample["registry_account"], sample["owner"], "protocol")
             if r["researcher"] == sample["researcher"]]
    assert row["fundaccount"] == funder and row["fund"] != "0.0000 JOB"
    assert chain.units(sample["registry_account"]) >= int(
        Decimal(row["fund"].split()[0]).scaleb(4))
    info = devchain.rpc(chain.url, "/v1/chain/get_account", {"account_name": funder})
    permissions = {p["perm_name"]: p for p in info["permissions"]}
    assert permissions["active"]["required_auth"]["accounts"] == []
    assert [(link["account"], link["action"])
            for link in permissions["cjpay"]["linked_actions"]] == [
        (sample["jobs_account"], "payout")]
