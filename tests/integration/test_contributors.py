"""`clusterjobs contributors` on the stack: the leading master's agents joined with the jobs
contract's rows, the protocol's price and the balances that moved."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

from actors.stack import devchain
from contracts import build as contract_build
from contracts import deploy as contract_deploy
from scheduler import contributors
from scheduler.chain import ChainClient, Signer


def fresh(prefix: str) -> str:
    return prefix + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz")
                            for _ in range(12 - len(prefix)))


def test_contributors_table(stack: dict, stack_dir: Path) -> None:
    url = str(stack["nodeos"])
    contract_build.build()
    contract_deploy.deploy(contract_deploy.Deployment(url))
    api = devchain.connect(url)
    state = contributors.master_state(stack["mesos_masters"])
    agent = state["slaves"][0]
    worker = agent["attributes"]["eos_account"]
    devchain.ensure_account(worker)
    owner, researcher, funder, dispatcher = (fresh(p) for p in ("own", "res", "fun", "dsp"))
    for name in (owner, researcher, funder, dispatcher):
        devchain.create_account(name)
    api.push_action("eosio.token", "transfer", {"from": "eosio", "to": funder,
                                                "quantity": "100.0000 JOB", "memo": "fund"},
                    {"eosio": "active"})
    client = ChainClient(url, Signer("jobs", "active", (devchain.DEV_PRIVATE_KEY,)))
    client.push([client.action("registry", "addprotocol", {
        "title": "contributors test", "owner": owner, "researcher": researcher,
        "datadir": f"/protocols/{researcher}", "fundaccount": funder, "fund": "50.0000 JOB",
        "tokencontract": "eosio.token", "dispatcher_pay_rate": 0.5, "worker_pay_rate": 0.25},
        [(owner, "active"), (funder, "active"), (researcher, "active")])])
    # The fund goes into the registry's escrow: a transfer whose memo is the researcher.
    contract_deploy.deposit(url, funder, researcher, "50.0000 JOB",
                            contract_deploy.Deployment(url))
    client.push([client.action("jobs", "regworker", {"worker": worker,
                                                     "researcher": researcher}),
                 client.action("jobs", "regdisptch", {"dispatcher": dispatcher,
                                                      "researcher": researcher})])
    client.push([client.action("jobs", "newjob", {"researcher": researcher, "worker": worker,
                                                  "time": 8_000_000}),
                 client.action("jobs", "updatedptch", {"researcher": researcher,
                                                       "dispatcher": dispatcher,
                                                       "time": 3_000_000})])
    before = devchain.balance(url, worker) or "0.0000 JOB"
    client.push([client.action("jobs", "payout", {
        "owner": owner, "funder": funder, "researcher": researcher, "contributor": worker,
        "type": "worker"}, [(funder, "active")])])
    client.push([client.action("jobs", "newjob", {"researcher": researcher, "worker": worker,
                                                  "time": 1_000_000})])

    result = subprocess.run([sys.executable, "-m", "actors.cli", "contributors", "--json",
                             "--stack", str(stack_dir)], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    rows = [r for r in json.loads(result.stdout) if r["researcher"] == researcher]
    by_type = {r["type"]: r for r in rows}
    assert set(by_type) == {"worker", "dispatcher"} and len(rows) == 2
    w = by_type["worker"]
    assert (w["account"], w["total_us"], w["unpaid_us"], w["paid_us"]) == (
        worker, 9_000_000, 1_000_000, 8_000_000)
    assert w["paid"] == "2.0000 JOB"  # 8 s at 0.25 JOB/s
    moved = float(w["balance"].split()[0]) - float(before.split()[0])
    assert round(moved, 4) == 2.0  # what the payout transferred
    assert agent["id"] in w["agent_ids"]
    d = by_type["dispatcher"]
    assert (d["account"], d["total_us"], d["unpaid_us"], d["paid"], d["agent_ids"]) == (
        dispatcher, 3_000_000, 3_000_000, "0.0000 JOB", [])
    text = subprocess.run([sys.executable, "-m", "actors.cli", "contributors",
                           "--stack", str(stack_dir)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert text.returncode == 0 and researcher in text.stdout
