"""End to end: N tiny tasks through the clusterjobs scheduler beside a minimal pymesos framework.

On one local stack with 20 agents (started here in a temporary folder), in the same run:

1. baseline: a minimal framework on pymesos's MesosSchedulerDriver packs N `true` command tasks
   (Mesos's command executor) into every offer; tasks/s from its first offer to the last
   TASK_FINISHED;
2. clusterjobs: `clusterjobs scheduler --stack` runs one job of N instances of `true` (submitted
   with `clusterjobs submit`) through the custom executor (work unit, stdout/stderr uploaded to
   HDFS, timing, credits to the outbox); tasks/s from the job's acceptance to its last finished
   instance, and the scheduler process's CPU (user + system) per task.

Also, to tell the scheduler's cost from the executor's, the minimal framework again with the
clusterjobs executor and the same work units (stdout/stderr uploaded to HDFS per task).
Prints the rates, the ratios (goal >= 0.9 against the command executor) and the CPU per task.

Run: ``.venv/bin/python benchmarks/end_to_end.py [--tasks 1000] [--agents 20]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymesos import MesosSchedulerDriver, Scheduler

from actors.stack import orchestrator
from actors.stack.context import StackOptions


def _scalar(name: str, value: float) -> dict:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


class Minimal(Scheduler):
    """Launches ``total`` command tasks as fast as offers allow; with ``custom`` (a function
    of the task's index giving its executor and data), tasks on that executor instead."""

    def __init__(self, total: int, custom=None) -> None:
        self.total, self.next_id, self.finished, self.failed = total, 0, 0, 0
        self.custom = custom
        self.executor_on: set[str] = set()
        self.ended: set[str] = set()
        self.first_offer: float | None = None
        self.done = threading.Event()

    def resourceOffers(self, driver, offers) -> None:
        self.first_offer = self.first_offer or time.monotonic()
        for offer in offers:
            cpus = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus")
            mem = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "mem")
            tasks = []
            agent = offer["agent_id"]["value"]
            if self.custom and agent not in self.executor_on:
                if any(e["value"] == "clusterjobs-executor"
                       for e in offer.get("executor_ids", [])):
                    self.executor_on.add(agent)
                elif cpus >= 0.2 and mem >= 96:
                    cpus, mem = cpus - 0.1, mem - 64
                    self.executor_on.add(agent)
                else:
                    cpus = 0.0
            while self.next_id < self.total and cpus >= 0.1 - 1e-9 and mem >= 32:
                tid = f"t{self.next_id}"
                cpus, mem = cpus - 0.1, mem - 32
                task = {"task_id": {"value": tid}, "agent_id": offer["agent_id"], "name": tid,
                        "resources": [_scalar("cpus", 0.1), _scalar("mem", 32)]}
                if self.custom:
                    task.update(self.custom(self.next_id))
                else:
                    task["command"] = {"value": "true"}
                self.next_id += 1
                tasks.append(task)
            if tasks:
                driver.launchTasks(offer["id"], tasks, filters={"refuse_seconds": 0})
            else:
                driver.declineOffer(offer["id"], filters={"refuse_seconds": 60})

    def statusUpdate(self, driver, status) -> None:
        # A terminal update can come twice (resent until acknowledged): count each task once,
        # or the run would end before its last task.
        task_id = status["task_id"]["value"]
        if task_id in self.ended:
            return
        if status["state"] == "TASK_FINISHED":
            self.finished += 1
        elif status["state"] in ("TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED"):
            self.failed += 1
        else:
            return
        self.ended.add(task_id)
        if self.finished + self.failed >= self.total:
            self.done.set()


def custom_tasks(webhdfs: str, executor: str):
    """Executor and data of task i: the clusterjobs executor running `true` as a work unit."""
    from executor.info import executor_info
    from executor.workunit import build_workunit
    from scheduler.spec import parse_spec

    spec = parse_spec({"version": 1, "researcher": "alice", "name": "e2e-minimal",
                       "command": ["true"], "instances": 10_000})
    info = executor_info("clusterjobs-executor", command=executor, webhdfs=webhdfs)

    def task(i: int) -> dict:
        unit = build_workunit(spec, "e2e-minimal", i, 0, "/protocols/alice", "alice")
        return {"executor": info, "data": base64.b64encode(json.dumps(unit).encode()).decode()}
    return task


def baseline(master: str, tasks: int, custom=None) -> float:
    bench = Minimal(tasks, custom)
    label = ("minimal pymesos framework, clusterjobs executor" if custom else
             "minimal pymesos framework, command executor")
    driver = MesosSchedulerDriver(bench, {"user": "nobody", "name": "e2e-minimal"}, master)
    driver.start()
    try:
        if not bench.done.wait(900):
            raise SystemExit(f"baseline timed out: {bench.finished} finished")
        elapsed = time.monotonic() - (bench.first_offer or 0)
    finally:
        driver.stop()  # TEARDOWN: frees the agents for the next run
        driver.join()
    print(f"[{label}] {bench.finished} finished, "
          f"{bench.failed} failed in {elapsed:.2f} s -> {tasks / elapsed:.1f} tasks/s")
    return tasks / elapsed


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def clusterjobs(workdir: Path, tasks: int) -> tuple[float, float]:
    log = workdir / "logs" / "scheduler.log"
    proc = subprocess.Popen([sys.executable, "-m", "actors.cli", "--log-level", "warning",
                             "scheduler", "--stack", str(workdir), "--poll", "0.5"],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        endpoint = workdir / "scheduler" / "endpoint.json"
        deadline = time.monotonic() + 60
        while not (endpoint.exists() and _get(json.loads(endpoint.read_text())["url"]
                                              + "/health")):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the scheduler did not come up; see {log}")
            time.sleep(0.3)
        url = json.loads(endpoint.read_text())["url"]
        spec = workdir / "e2e.json"
        spec.write_text(json.dumps({"version": 1, "researcher": "alice", "name": "e2e",
                                    "command": ["true"], "instances": tasks,
                                    "resources": {"cpus": 0.1, "mem": 32}}))
        cpu_before = _cpu_seconds(proc.pid)
        done = subprocess.run([sys.executable, "-m", "actors.cli", "submit", str(spec),
                               "--stack", str(workdir)], capture_output=True, text=True,
                              check=True)
        job_id = done.stdout.strip().splitlines()[-1]
        while (job := _get(f"{url}/jobs/{job_id}")) is None:
            time.sleep(0.05)
        accepted = time.monotonic()
        while job["state"] not in ("finished", "failed", "cancelled"):
            time.sleep(0.2)
            job = _get(f"{url}/jobs/{job_id}") or job
        elapsed = time.monotonic() - accepted
        cpu = _cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.terminate()
        proc.wait(30)
    finished = job["counts"].get("finished", 0)
    print(f"[clusterjobs scheduler, custom executor] {finished} finished "
          f"({job['state']}) in {elapsed:.2f} s -> {tasks / elapsed:.1f} tasks/s; "
          f"scheduler CPU {cpu:.2f} s = {1000 * cpu / tasks:.2f} ms per task")
    return tasks / elapsed, cpu / tasks


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="cj-e2e-bench-"))
    print(f"machine: {os.cpu_count()} cores; {args.tasks} tasks on {args.agents} agents")
    # Antelope names take only a-z, 1-5 and '.': the default worker1..workerN stops at 5.
    accounts = tuple(f"worker{chr(ord('a') + i // 26)}{chr(ord('a') + i % 26)}"
                     for i in range(args.agents))
    state, _ = orchestrator.up(workdir, StackOptions(agents=args.agents,
                                                      agent_accounts=accounts))
    try:
        master = str(state["endpoints"]["mesos"])
        base = baseline(master, args.tasks)
        from scheduler.service_cli import _default_executor

        same_executor = baseline(master, args.tasks, custom_tasks(
            str(state["endpoints"]["webhdfs"]), _default_executor()))
        ours, _cpu = clusterjobs(workdir, args.tasks)
        print(f"ratio clusterjobs / minimal (command executor): {ours / base:.2f} "
              f"(goal >= 0.9)")
        print(f"ratio clusterjobs / minimal (same executor, same work units): "
              f"{ours / same_executor:.2f}")
    finally:
        orchestrator.down(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
