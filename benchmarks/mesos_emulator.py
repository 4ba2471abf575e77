"""Benchmark of the local Mesos emulator: 100 agents, 2,000 tiny command tasks via pymesos.

Starts (in a temporary folder) ZooKeeper, one master and 100 agents (25 per OS process by
default; each agent keeps its own id, port, resources and sandboxes), then a minimal
framework on pymesos's unmodified MesosSchedulerDriver launches 2,000 ``true`` command tasks.
Prints tasks per second (first offer to last TASK_FINISHED) and the offer-to-launch round trip:
from the framework receiving an offer to it receiving the first update (TASK_STARTING) of a task
it launched on that offer, p50 and p99 (at most ``--per-offer`` tasks per offer, so offers cycle
rather than one wave holding all 2,000 tasks), plus offer-to-ACCEPT-answered latency. With
CLUSTERJOBS_STACK set, the running stack's ZooKeeper is used instead of a new one (under a
private znode path).

Run: ``.venv/bin/python benchmarks/mesos_emulator.py [--agents 100] [--tasks 2000]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymesos import MesosSchedulerDriver, Scheduler

from actors.stack import mesos, orchestrator, zookeeper
from actors.stack.context import StackContext, StackOptions
from actors.stack.process import stop


def _scalar(name: str, value: float) -> dict:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


class Bench(Scheduler):
    """Packs tasks into every offer; records offer-to-first-update latencies."""

    def __init__(self, total: int, per_offer: int) -> None:
        self.per_offer = per_offer
        self.next_id = 0
        self.total = total
        self.finished = 0
        self.failed = 0
        self.first_offer: float | None = None
        self.offer_at: dict[str, float] = {}
        self.rtt: list[float] = []
        self.accept_seconds: list[float] = []  # offer received -> ACCEPT answered (202)
        self.done = threading.Event()

    def resourceOffers(self, driver, offers) -> None:
        now = time.monotonic()
        self.first_offer = self.first_offer or now
        for offer in offers:
            cpus = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus")
            mem = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "mem")
            tasks = []
            while (self.next_id < self.total and cpus >= 0.1 - 1e-9 and mem >= 16
                   and len(tasks) < self.per_offer):
                tid = f"t{self.next_id}"
                self.next_id += 1
                cpus, mem = cpus - 0.1, mem - 16
                self.offer_at[tid] = now
                tasks.append({"task_id": {"value": tid}, "agent_id": offer["agent_id"],
                              "name": tid, "command": {"value": "true"},
                              "resources": [_scalar("cpus", 0.1), _scalar("mem", 16)]})
            if tasks:
                driver.launchTasks(offer["id"], tasks, filters={"refuse_seconds": 0})
                self.accept_seconds.append(time.monotonic() - now)
            else:
                driver.declineOffer(offer["id"], filters={"refuse_seconds": 60})

    def statusUpdate(self, driver, status) -> None:
        tid = status["task_id"]["value"]
        started = self.offer_at.pop(tid, None)
        if started is not None:
            self.rtt.append(time.monotonic() - started)
        if status["state"] == "TASK_FINISHED":
            self.finished += 1
        elif status["state"] in ("TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED"):
            self.failed += 1
        if self.finished + self.failed >= self.total:
            self.done.set()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _run(found: dict, label: str, tasks: int, per_offer: int) -> bool:
    """One framework launching ``tasks`` tasks, at most ``per_offer`` per offer; prints figures."""
    bench = Bench(tasks, per_offer)
    driver = MesosSchedulerDriver(bench, {"user": "nobody", "name": f"bench-{label}"},
                                  str(found["mesos"]))
    driver.start()
    try:
        if not bench.done.wait(600):
            print(f"[{label}] timed out: {bench.finished} finished, {bench.failed} failed")
            return False
        assert bench.first_offer is not None
        elapsed = time.monotonic() - bench.first_offer
    finally:
        driver.stop()
        driver.join()
    print(f"[{label}] tasks: {bench.finished} finished, {bench.failed} failed in {elapsed:.2f} s "
          f"-> {bench.finished / elapsed:.0f} tasks/s")
    print(f"[{label}] offer-to-launch round trip (offer received -> first update): "
          f"p50 {1000 * statistics.median(bench.rtt):.1f} ms, "
          f"p99 {1000 * _pct(bench.rtt, 0.99):.1f} ms (n={len(bench.rtt)})")
    print(f"[{label}] offer received -> ACCEPT answered: "
          f"p50 {1000 * statistics.median(bench.accept_seconds):.1f} ms, "
          f"p99 {1000 * _pct(bench.accept_seconds, 0.99):.1f} ms "
          f"(n={len(bench.accept_seconds)}, {per_offer} tasks per offer at most)")
    return bench.failed == 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--agents-per-process", type=int, default=25)
    parser.add_argument("--per-offer", type=int, default=5,
                        help="tasks launched per offer at most (bounds tasks in flight)")
    parser.add_argument("--baseline-tasks", type=int, default=100,
                        help="tasks of the light-load baseline run (1 per offer) done first")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="cj-mesos-bench-"))
    reuse = os.environ.get("CLUSTERJOBS_STACK")
    ctx = StackContext(workdir=workdir, options=StackOptions(masters=1, agents=args.agents))
    try:
        if reuse:
            ctx.endpoints["zookeeper"] = orchestrator.status(Path(reuse))["zookeeper"]
        else:
            ctx.endpoints.update(zookeeper.start(ctx))
        began = time.monotonic()
        found = mesos.start(ctx, zk_path=f"/mesos-bench-{uuid.uuid4().hex[:8]}",
                            prefix="bench", agents_per_process=args.agents_per_process)
        print(f"cluster: 1 master, {args.agents} agents in "
              f"{-(-args.agents // args.agents_per_process)} processes, "
              f"up in {time.monotonic() - began:.1f} s")
        # Baseline in the same run, on the same cluster: a light load (few tasks in flight), so
        # the figures of the full load show what queueing adds.
        ok = _run(found, "baseline", min(args.baseline_tasks, args.tasks), 1)
        ok = _run(found, "load", args.tasks, args.per_offer) and ok
        return 0 if ok else 1
    finally:
        for record in reversed(ctx.records):
            stop(record)


if __name__ == "__main__":
    sys.exit(main())
