"""A worker deregistered mid-run (issue 9, must show 5): the credits of its tasks that were
running are refused by the jobs contract; the scheduler's pusher parks them with the chain's
message (neither retried forever nor dropped), and they show in `clusterjobs status`, in
``/accounting`` and in the metrics.

On a Mesos cluster of its own (a master and one agent whose ``eos_account`` is a fresh
account registered as a worker of alice for this test), on the stack's ZooKeeper and nodeos.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from actors.stack import devchain
from scheduler.chain import ChainClient, Signer

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))
from contracts_world import fresh_name
from scheduler_proc import SchedulerProc, free_port, marker_command, submit, wait
from test_scheduler_agent_loss import kill_group, spawn

INSTANCES = 3


@pytest.fixture
def worker_cluster(stack: dict, tmp_path: Path):
    """A master and one agent of a fresh worker account registered for alice."""
    account = fresh_name("wrk")
    devchain.connect(str(stack["nodeos"]))
    devchain.create_account(account)
    jobs = ChainClient(str(stack["nodeos"]), Signer("jobs", "active",
                                                    (devchain.DEV_PRIVATE_KEY,)))
    jobs.push([jobs.action("jobs", "regworker", {"worker": account, "researcher": "alice"})])
    zk = f"zk://{stack['zookeeper']}/mesos-parked-{uuid.uuid4().hex[:6]}"
    port = free_port()
    master = spawn([sys.executable, "-m", "actors.local.master", "--zk", zk, "--port",
                    str(port)], tmp_path / "master.log")
    agent = spawn([sys.executable, "-m", "actors.local.agent_main", "--zk", zk, "--port",
                   str(free_port()), "--account", account, "--resources",
                   "cpus:2;mem:2048;disk:1024;ports:[31000-31100]",
                   "--work-dir", str(tmp_path / "agent")], tmp_path / "agent.log")
    url = f"http://127.0.0.1:{port}"

    def agent_up() -> bool:
        import json
        try:
            with urllib.request.urlopen(f"{url}/master/state", timeout=5) as resp:
                return len(json.loads(resp.read()).get("slaves", [])) == 1
        except OSError:
            return False

    wait(agent_up, 60, "the agent registered", master)
    yield {"zk": zk, "account": account, "jobs": jobs}
    for proc in (agent, master):
        kill_group(proc)


def metric(proc: SchedulerProc, name: str) -> float:
    """The sum of a metric's samples on the scheduler's /metrics (0 when it has none)."""
    with urllib.request.urlopen(f"{proc.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    pattern = rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$"
    return sum(float(v) for v in re.findall(pattern, text, re.M))


def test_a_worker_deregistered_mid_run_gets_its_credits_parked(stack, stack_dir,
                                                               worker_cluster, tmp_path):
    account, jobs = worker_cluster["account"], worker_cluster["jobs"]
    markers = tmp_path / "markers"
    markers.mkdir()
    state = f"cj-parked-{uuid.uuid4().hex[:6]}"
    proc = SchedulerProc(stack, state, tmp_path, "--master", worker_cluster["zk"])
    try:
        proc.wait_healthy()
        job_id = submit(str(stack_dir), {
            "version": 1, "researcher": "alice", "name": "orphaned", "instances": INSTANCES,
            "command": marker_command(markers, "sleep 6"),
            "resources": {"cpus": 0.1, "mem": 32}}, tmp_path)
        wait(lambda: len([t for t in (proc.job(job_id) or {"tasks": []})["tasks"]
                          if t["state"] == "running"]) == INSTANCES,
             90, f"{INSTANCES} instances running", proc.proc)
        # Nothing of it is credited yet (no unpaid time), so the contract lets it go.
        jobs.push([jobs.action("jobs", "delworker", {"worker": account, "researcher": "alice"})])
        wait(lambda: (proc.job(job_id) or {}).get("state") in ("finished", "failed"), 120,
             "the job to finish", proc.proc)
        job = proc.job(job_id)
        assert job["state"] == "finished"
        # Trust: honest executors report no more than the scheduler observed: nothing flagged,
        # each task's discrepancy measured (0) and observed in the histogram.
        assert [(t["flags"], t["discrepancy_us"]) for t in job["tasks"]] == [([], 0)] * INSTANCES
        assert metric(proc, "clusterjobs_time_discrepancy_seconds_count") == INSTANCES
        assert metric(proc, "clusterjobs_time_discrepancy_flagged_tasks_total") == 0

        def parked() -> list[dict]:
            code, body = proc.get("/accounting")
            return body.get("parked", []) if code == 200 else []

        wait(lambda: len(parked()) == INSTANCES, 90, "the worker credits parked", proc.proc)
        items = parked()
        assert {i["entry"]["kind"] for i in items} == {"worker"}
        assert {i["entry"]["account"] for i in items} == {account}
        message = f"worker {account} is not registered for researcher alice"
        assert all(message in i["message"] for i in items), items
        assert metric(proc, "clusterjobs_outbox_parked") == INSTANCES
        shown = subprocess.run([sys.executable, "-m", "actors.cli", "status", "--scheduler",
                                proc.url], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        lines = [line for line in shown.stdout.splitlines() if "parked" in line]
        assert len(lines) == INSTANCES and all(message in line for line in lines), shown.stdout
        # Parked credits are not retried: nothing reached the chain for that worker.
        assert jobs.rows("jobs", account, "job") == []
    finally:
        proc.stop()
