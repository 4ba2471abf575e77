"""Benchmark of the agents' containerizer: launch-to-TASK_RUNNING latency of 100 command
tasks, without isolation, with every isolator (cgroups cpu/mem, pid and mount namespaces,
disk/du), and with the busybox image (the first launch on a fresh agent: cold, unpacking
the image; the next 100: cached).

Each mode gets its own mini-cluster (1 master, 1 agent) on ZooKeeper (the running stack's
with CLUSTERJOBS_STACK, else a new one in a temporary folder); a framework on pymesos's
unmodified driver launches the tasks in waves of ``--wave`` and records, for each task, the
time from its launchTasks call to its TASK_RUNNING update. Prints p50, p90 and max per mode,
the plain-process mode being the baseline measured in the same run.

Run: ``.venv/bin/python benchmarks/containers.py [--tasks 100] [--wave 20]``.
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

from actors.local.containerizer.isolation import STACK_DEFAULT
from actors.stack import mesos, orchestrator, zookeeper
from actors.stack.context import StackContext, StackOptions
from actors.stack.process import stop

IMAGE = {"type": "MESOS", "mesos": {"image": {"type": "DOCKER",
                                               "docker": {"name": "busybox"}}}}


def _scalar(name: str, value: float) -> dict:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


class Waves(Scheduler):
    """Launches ``count`` tasks ``wave`` at a time; records launch-to-RUNNING seconds."""

    def __init__(self, count: int, wave: int, image: bool) -> None:
        self.count, self.wave, self.image = count, wave, image
        self.next_id = 0
        self.live = 0
        self.sent: dict[str, float] = {}
        self.latency: dict[str, float] = {}
        self.ended = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def resourceOffers(self, driver, offers) -> None:
        for offer in offers:
            tasks = []
            with self.lock:
                while self.next_id < self.count and self.live < self.wave:
                    tid = f"t{self.next_id}-{uuid.uuid4().hex[:4]}"
                    self.next_id += 1
                    self.live += 1
                    task = {"task_id": {"value": tid}, "agent_id": offer["agent_id"],
                            "name": tid, "command": {"value": "sleep 0.2"},
                            "resources": [_scalar("cpus", 0.1), _scalar("mem", 32)]}
                    if self.image:
                        task["container"] = IMAGE
                    tasks.append(task)
                now = time.monotonic()
                for task in tasks:
                    self.sent[task["task_id"]["value"]] = now
            if tasks:
                driver.launchTasks(offer["id"], tasks, filters={"refuse_seconds": 0})
            else:
                driver.declineOffer(offer["id"], filters={"refuse_seconds": 0.2})

    def statusUpdate(self, driver, status) -> None:
        tid = status["task_id"]["value"]
        with self.lock:
            if status["state"] == "TASK_RUNNING":
                self.latency.setdefault(tid, time.monotonic() - self.sent[tid])
            elif status["state"] in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED",
                                     "TASK_ERROR", "TASK_LOST"):
                self.live -= 1
                self.ended += 1
                if status["state"] != "TASK_FINISHED":
                    print(f"  {tid}: {status['state']} {status.get('message', '')}",
                          file=sys.stderr)
                if self.ended >= self.count:
                    self.done.set()


def run_tasks(zk_url: str, count: int, wave: int, image: bool) -> list[float]:
    framework = Waves(count, wave, image)
    driver = MesosSchedulerDriver(framework, {"user": "root", "name": "bench-containers",
                                              "hostname": "localhost"}, zk_url)
    driver.start()
    try:
        if not framework.done.wait(600):
            raise SystemExit(f"only {framework.ended} of {count} tasks ended")
    finally:
        driver.stop()
        driver.join()
    return sorted(framework.latency.values())


def mode(zk: str, workdir: Path, name: str, isolation: str, count: int, wave: int,
         image: bool) -> list[tuple[str, list[float]]]:
    ctx = StackContext(workdir=workdir / name,
                       options=StackOptions(masters=1, agents=1, start_timeout=60.0,
                                            isolation=isolation),
                       endpoints={"zookeeper": zk})
    try:
        found = mesos.start(ctx, zk_path=f"/bench-containers-{uuid.uuid4().hex[:8]}",
                            prefix=name, agent_flags=[
                                "--resources", "cpus:32;mem:65536;disk:100000;ports:[31000-32000]"])
        zk_url = str(found["mesos"])
        rows = []
        if image:
            rows.append(("image, cold (first launch)", run_tasks(zk_url, 1, 1, True)))
            rows.append(("image, cached", run_tasks(zk_url, count, wave, True)))
        else:
            rows.append((name, run_tasks(zk_url, count, wave, False)))
        return rows
    finally:
        for record in reversed(ctx.records):
            stop(record)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--wave", type=int, default=20,
                        help="tasks running at once (default 20)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="cj-bench-containers-") as tmp:
        workdir = Path(tmp)
        reuse = os.environ.get("CLUSTERJOBS_STACK")
        zk_ctx = None
        if reuse:
            zk = orchestrator.status(Path(reuse))["zookeeper"]
        else:
            zk_ctx = StackContext(workdir=workdir / "zk")
            zk = zookeeper.start(zk_ctx)["zookeeper"]
        try:
            rows = []
            rows += mode(zk, workdir, "none", "none", args.tasks, args.wave, False)
            rows += mode(zk, workdir, "isolated", STACK_DEFAULT, args.tasks, args.wave, False)
            rows += mode(zk, workdir, "image", STACK_DEFAULT, args.tasks, args.wave, True)
        finally:
            if zk_ctx is not None:
                for record in reversed(zk_ctx.records):
                    stop(record)
    print(f"launch -> TASK_RUNNING, {args.tasks} command tasks, {args.wave} at a time, "
          f"1 agent, {os.cpu_count()} cores")
    print(f"{'mode':<28} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
    for label, values in rows:
        p50 = statistics.median(values) * 1000
        p90 = values[int(0.9 * (len(values) - 1))] * 1000
        print(f"{label:<28} {len(values):>4} {p50:>8.1f} {p90:>8.1f} {values[-1] * 1000:>8.1f}")
    base = statistics.median(rows[0][1])
    for label, values in rows[1:]:
        print(f"{label}: p50 is {statistics.median(values) / base:.1f}x the plain-process p50")
    return 0


if __name__ == "__main__":
    sys.exit(main())
