"""newjob throughput on the local nodeos: actions per second for 1, 10, 50 and 100 actions per
transaction, and the CPU microseconds nodeos bills per newjob action, for the seed's
three-argument form (the baseline) and with a credit_id (the task identity that makes a resent
credit a no-op), measured alternately in the same run.

Uses the stack named by --stack or CLUSTERJOBS_STACK; otherwise starts a nodeos-only stack in a
temporary folder and stops it at the end. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from actors import logfmt
from actors.stack import devchain, nodeos, orchestrator
from actors.stack.services import Service
from contracts import build as contract_build
from contracts import deploy as contract_deploy

BATCHES = {1: 200, 10: 40, 50: 10, 100: 6}  # actions per transaction -> transactions
FORMS = ("3 args", "credit_id")  # the seed's form (baseline) and with the task identity


def _fresh(prefix: str) -> str:
    import secrets

    return prefix + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7))


def run(url: str) -> None:
    contract_build.build()
    contract_deploy.deploy(contract_deploy.Deployment(url))
    api = devchain.connect(url)
    researcher, worker = _fresh("bres"), _fresh("bwrk")
    owner, funder = _fresh("bown"), _fresh("bfun")
    for account in (researcher, worker, owner, funder):
        devchain.create_account(account)
    # A credit needs the researcher's protocol (its maximum task time is checked).
    api.push_actions([
        ["eosio.token", "transfer", {"from": "eosio", "to": funder, "quantity": "1.0000 JOB",
                                     "memo": "benchmark"}, {"eosio": "active"}],
        ["registry", "addprotocol", {
            "title": "benchmark", "owner": owner, "researcher": researcher,
            "datadir": f"/protocols/{researcher}", "fundaccount": funder,
            "fund": "1.0000 JOB", "tokencontract": "eosio.token", "dispatcher_pay_rate": 0.0,
            "worker_pay_rate": 0.0}, {owner: "active", funder: "active", researcher: "active"}],
        ["jobs", "regworker", {"worker": worker, "researcher": researcher}, {"jobs": "active"}],
    ])
    seq = itertools.count(1)
    print(f"{'form':>9} {'per tx':>6} {'txs':>5} {'actions/s':>10} {'tx/s':>8} "
          f"{'cpu us/tx':>10} {'cpu us/action':>14}")
    for per_tx, txs in BATCHES.items():
        for form in FORMS:
            cpu: list[int] = []
            start = time.perf_counter()
            for _ in range(txs):
                # Through jobs@pusher, the scheduler's permission.
                actions = [["jobs", "newjob", _args(form, researcher, worker, next(seq)),
                            {"jobs": "pusher"}] for _ in range(per_tx)]
                result = api.push_actions(actions, expiration=60 + next(seq) % 3000)
                cpu.append(int(result["processed"]["receipt"]["cpu_usage_us"]))
            elapsed = time.perf_counter() - start
            actions_total = per_tx * txs
            print(f"{form:>9} {per_tx:>6} {txs:>5} {actions_total / elapsed:>10.1f} "
                  f"{txs / elapsed:>8.1f} {statistics.median(cpu):>10.0f} "
                  f"{statistics.median(cpu) / per_tx:>14.1f}")


def _args(form: str, researcher: str, worker: str, n: int) -> dict:
    args = {"researcher": researcher, "worker": worker, "time": n}
    if form == "credit_id":
        # A fresh identity per credit, as the scheduler's outbox gives each task.
        args["credit_id"] = int.from_bytes(hashlib.sha256(f"{worker}/{n}".encode()).digest()[:8],
                                           "little")
    return args


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", type=Path, default=os.environ.get("CLUSTERJOBS_STACK"))
    args = parser.parse_args()
    logfmt.configure("warning")  # pyeoskit turns on INFO logging for everyone at import
    print(f"machine: {os.cpu_count()} cores; one client signing with pyeoskit, waiting per tx")
    if args.stack:
        run(str(orchestrator.status(Path(args.stack))["nodeos"]))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        workdir = Path(tmp)
        orchestrator.up(workdir, services=[Service("nodeos", nodeos.start)])
        try:
            run(str(orchestrator.status(workdir)["nodeos"]))
        finally:
            orchestrator.down(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
