"""Accounting throughput and latency: credits through the ZooKeeper outbox and the pusher into
the jobs contract, confirmed irreversible.

1. Backlog: N credits in the outbox at once, drained by the batching pusher (400 actions per
   transaction, its default): confirmed newjob actions per second.
2. Baseline, same run, same chain: the same pusher limited to one action per transaction.
3. Latency: credits written at a steady rate (as tasks finish); the time from each credit's
   ``finished_at_us`` (its TASK_FINISHED) to the pusher seeing it in an irreversible block and
   finishing it: p50, p99.

Uses the stack named by --stack or CLUSTERJOBS_STACK; otherwise starts ZooKeeper and nodeos in a
temporary folder and stops them at the end. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from kazoo.client import KazooClient

from actors import logfmt
from actors.stack import devchain, nodeos, orchestrator, zookeeper
from actors.stack.services import Service
from contracts import build as contract_build
from contracts import deploy as contract_deploy
from scheduler import pusher
from scheduler.chain import ChainClient, Signer
from scheduler.pusher_core import Credit, Limits

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _fresh(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_LETTERS) for _ in range(12 - len(prefix)))


def setup(url: str, workers: int = 8) -> tuple[ChainClient, str, list[str]]:
    """Contracts, a researcher's protocol with an escrow, registered workers."""
    contract_build.build()
    target = contract_deploy.Deployment(url)
    contract_deploy.deploy(target)
    api = devchain.connect(url)
    researcher, owner, funder = _fresh("bres"), _fresh("bown"), _fresh("bfun")
    names = [_fresh("bwrk") for _ in range(workers)]
    for name in [researcher, owner, funder, *names]:
        devchain.create_account(name)
    api.push_actions([
        ["eosio.token", "transfer", {"from": "eosio", "to": funder, "quantity": "1.0000 JOB",
                                     "memo": "fund"}, {"eosio": "active"}],
        ["registry", "addprotocol", {
            "title": "accounting benchmark", "owner": owner, "researcher": researcher,
            "datadir": f"/protocols/{researcher}", "fundaccount": funder, "fund": "1.0000 JOB",
            "tokencontract": "eosio.token", "dispatcher_pay_rate": 0.0,
            "worker_pay_rate": 0.0}, {owner: "active", funder: "active",
                                      researcher: "active"}],
        ["eosio.token", "transfer", {"from": funder, "to": "registry",
                                     "quantity": "1.0000 JOB", "memo": researcher},
         {funder: "active"}],
    ])
    client = ChainClient(url, Signer("jobs", "active", (devchain.DEV_PRIVATE_KEY,)))
    client.push([client.action("jobs", "regworker", {"worker": w, "researcher": researcher})
                 for w in names])
    return client, researcher, names


def write(zk: KazooClient, path: str, researcher: str, workers: list[str], count: int,
          start: int) -> None:
    """``count`` credits in the outbox, 200 per ZooKeeper transaction."""
    for first in range(start, start + count, 200):
        tx = zk.transaction()
        now_us = int(time.time() * 1e6)
        for n in range(first, min(first + 200, start + count)):
            entry = {"kind": "worker", "researcher": researcher,
                     "account": workers[n % len(workers)], "time_us": 1000 + n,
                     "credit_id": int.from_bytes(secrets.token_bytes(8), "little"),
                     "task_id": f"t{n}", "job_id": "bench", "instance": n, "attempt": 1,
                     "finished_at_us": now_us}
            tx.create(f"{path}/outbox/{entry['credit_id']:016x}", json.dumps(entry).encode())
        assert not [r for r in tx.commit() if isinstance(r, Exception)]


class Run:
    """One pusher in a thread over its own outbox path; records confirmation latencies."""

    def __init__(self, zk: KazooClient, client: ChainClient, limits: Limits) -> None:
        self.zk = zk
        self.path = f"/bench/{_fresh('p')}"
        zk.ensure_path(f"{self.path}/outbox")
        self.latencies: list[float] = []
        self.confirmed = 0
        self.pusher = pusher.build(zk, self.path, client, "jobs", limits,
                                   on_confirmed=self._confirmed)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.pusher.run, args=(self.stop,), daemon=True)

    def _confirmed(self, credits: list[Credit]) -> None:
        now_us = time.time() * 1e6
        self.latencies += [(now_us - c.finished_at_us) / 1e6 for c in credits]
        self.confirmed += len(credits)

    def wait_for(self, count: int, timeout: float = 600) -> float:
        """Seconds until ``count`` credits are confirmed."""
        start = time.perf_counter()
        while self.confirmed < count:
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"only {self.confirmed} of {count} confirmed")
            time.sleep(0.01)
        return time.perf_counter() - start

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def throughput(zk: KazooClient, client: ChainClient, researcher: str, workers: list[str],
               count: int, max_actions: int) -> float:
    # The baseline may have as many transactions in flight as it likes: only the actions per
    # transaction differ.
    run = Run(zk, client, Limits(max_actions=max_actions, max_in_flight=100_000))
    write(zk, run.path, researcher, workers, count, 0)
    cpu = time.process_time()
    run.thread.start()
    try:
        elapsed = run.wait_for(count)
    finally:
        run.close()
    cpu = time.process_time() - cpu
    print(f"  {max_actions:>4} per tx: {count:>6} credits confirmed in {elapsed:6.2f} s = "
          f"{count / elapsed:8.1f} newjob/s (pusher process CPU {1000 * cpu / count:.3f} ms "
          "per credit)")
    return count / elapsed


def latency(zk: KazooClient, client: ChainClient, researcher: str, workers: list[str],
            rate: int, seconds: int) -> list[float]:
    run = Run(zk, client, Limits())
    run.thread.start()
    try:
        step = 0.1
        for i in range(int(seconds / step)):
            t0 = time.perf_counter()
            write(zk, run.path, researcher, workers, int(rate * step), i * int(rate * step))
            time.sleep(max(0.0, step - (time.perf_counter() - t0)))
        run.wait_for(int(rate * step) * int(seconds / step))
    finally:
        run.close()
    return sorted(run.latencies)


def bench(url: str, zk_hosts: str, backlog: int, baseline: int, rate: int,
          seconds: int) -> None:
    client, researcher, workers = setup(url)
    zk = KazooClient(hosts=zk_hosts)
    zk.start(timeout=30)
    try:
        print("throughput (backlog drained, confirmed irreversible):")
        batched = throughput(zk, client, researcher, workers, backlog, Limits.max_actions)
        single = throughput(zk, client, researcher, workers, baseline, 1)
        print(f"  ratio batched / one per transaction: {batched / single:.1f}x")
        lat = latency(zk, client, researcher, workers, rate, seconds)
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        print(f"latency TASK_FINISHED -> irreversible and finished, {rate} credits/s for "
              f"{seconds} s ({len(lat)} credits): p50 {p50:.2f} s, p99 {p99:.2f} s, "
              f"max {lat[-1]:.2f} s")
    finally:
        zk.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", type=Path, default=os.environ.get("CLUSTERJOBS_STACK"))
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=600)
    parser.add_argument("--rate", type=int, default=1000, help="credits/s in the latency run")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    logfmt.configure("warning")
    print(f"machine: {os.cpu_count()} cores; one pusher thread; ZooKeeper and nodeos on "
          "loopback")
    if args.stack:
        info = orchestrator.status(Path(args.stack))
        bench(str(info["nodeos"]), str(info["zookeeper"]), args.backlog, args.baseline,
              args.rate, args.seconds)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-accounting-") as tmp:
        workdir = Path(tmp)
        orchestrator.up(workdir, services=[Service("zookeeper", zookeeper.start),
                                           Service("nodeos", nodeos.start)])
        try:
            info = orchestrator.status(workdir)
            bench(str(info["nodeos"]), str(info["zookeeper"]), args.backlog, args.baseline,
                  args.rate, args.seconds)
        finally:
            orchestrator.down(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
