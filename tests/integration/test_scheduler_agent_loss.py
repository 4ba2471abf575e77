"""An agent dies mid-run: its tasks run again on another agent and the job finishes; an
agent whose eos_account is not a registered worker of the researcher gets none of them.

On a Mesos cluster of its own (a master with a short agent timeout and two agents, on the
stack's ZooKeeper under a path of its own), so killing an agent touches no other test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))
import contextlib

from scheduler_proc import SchedulerProc, free_port, marker_command, runs, submit, wait


def spawn(argv: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the agent starts executors in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started (executors, tasks): a machine that
    died."""
    if proc.poll() is None:
        below = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture
def cluster(stack: dict, tmp_path: Path):
    zk = f"zk://{stack['zookeeper']}/mesos-agentloss-{uuid.uuid4().hex[:6]}"
    port = free_port()
    master = spawn([sys.executable, "-m", "actors.local.master", "--zk", zk, "--port",
                    str(port), "--agent-timeout", "6"], tmp_path / "master.log")
    agents = {}
    # "stranger" is no registered worker of alice: it must get none of her tasks.
    for account in ("worker1", "worker2", "stranger"):
        agent_port = free_port()
        agents[agent_port] = spawn(
            [sys.executable, "-m", "actors.local.agent_main", "--zk", zk, "--port",
             str(agent_port), "--account", account, "--resources",
             "cpus:2;mem:2048;disk:1024;ports:[31000-31100]",
             "--work-dir", str(tmp_path / f"agent-{account}")], tmp_path / f"{account}.log")
    url = f"http://127.0.0.1:{port}"

    def agents_up() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/master/state", timeout=5) as resp:
                return len(json.loads(resp.read()).get("slaves", [])) == 3
        except OSError:
            return False

    wait(agents_up, 60, "three agents registered", master)
    yield {"zk": zk, "url": url, "agents": agents, "stranger_dir": tmp_path / "agent-stranger"}
    for proc in [*agents.values(), master]:
        kill_group(proc)


def test_agent_killed_mid_run_its_tasks_run_elsewhere(stack, stack_dir, cluster, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    state = f"cj-agentloss-{uuid.uuid4().hex[:6]}"
    proc = SchedulerProc(stack, state, tmp_path, "--master", cluster["zk"])
    try:
        proc.wait_healthy()
        job_id = submit(str(stack_dir), {
            "version": 1, "researcher": "alice", "name": "survivor", "instances": 4,
            "command": marker_command(markers, "sleep 8"),
            "resources": {"cpus": 0.1, "mem": 32}}, tmp_path)

        def running_agents() -> set[str]:
            job = proc.job(job_id) or {"tasks": []}
            return {t["agent_id"] for t in job["tasks"] if t["state"] == "running"}

        wait(lambda: len(proc.job(job_id) or {}) and len(
            [t for t in proc.job(job_id)["tasks"] if t["state"] == "running"]) == 4,
            60, "4 instances running", proc.proc)
        victim = sorted(running_agents())[0]
        with urllib.request.urlopen(f"{cluster['url']}/master/state", timeout=5) as resp:
            slaves = json.loads(resp.read())["slaves"]
        port = next(int(s["port"]) for s in slaves if s["id"] == victim)
        moved = [t["instance"] for t in proc.job(job_id)["tasks"] if t["agent_id"] == victim]
        kill_group(cluster["agents"][port])
        wait(lambda: (proc.job(job_id) or {}).get("state") in ("finished", "failed"), 120,
             "the job to finish", proc.proc)
        job = proc.job(job_id)
        assert job["state"] == "finished", job
        for task in job["tasks"]:
            if task["instance"] in moved:
                assert task["agent_id"] != victim and task["attempts"] >= 2, task
                assert runs(markers, job_id, task["instance"]) == task["attempts"]
            else:
                assert task["attempts"] == 1
        # Nothing ever ran on the unregistered agent (no executor sandbox, no task output).
        assert not [p for p in cluster["stranger_dir"].rglob("*") if p.name in (
            "stdout", "stderr")]
    finally:
        proc.stop()
