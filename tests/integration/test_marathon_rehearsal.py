"""Marathon's behaviour rehearsed on the local stack: the app's `cmd` runs with its `env` (the
cluster's endpoints and secrets replaced by the stack's, as an operator's Marathon would hold
them) and a free PORT0; its health check must pass; a SIGKILL mid-run (a lost Marathon task)
is followed by a start on a new PORT0; the scheduler comes back healthy with the same framework
id and the run completes, every instance run exactly once."""

from __future__ import annotations

import getpass
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from observed_run import ROOT, free_port, get, job_state, submit, wait

from actors.stack.devchain import DEV_PRIVATE_KEY

pytest.importorskip("scheduler.service", reason="the scheduler (issue 8) is not on this branch")

APP = json.loads((ROOT / "deploy" / "marathon" / "clusterjobs.json").read_text())
JOBS, INSTANCES = 4, 3


def marathon_env(stack: dict, state: str, port: int) -> dict[str, str]:
    """The task environment Marathon gives the app on this stack: the app's env with the
    cluster-specific values replaced, secrets resolved, and Marathon's own variables."""
    env = {k: v for k, v in APP["env"].items() if isinstance(v, str)}
    secret_values = {"chainKey": DEV_PRIVATE_KEY, "authToken": secrets.token_urlsafe(24)}
    env.update({k: secret_values[v["secret"]] for k, v in APP["env"].items()
                if isinstance(v, dict)})
    sample = stack["sample"]
    env.update({
        "MESOS_MASTER": str(stack["mesos"]),
        "CLUSTERJOBS_ZK": f"zk://{stack['zookeeper']}/{state}",
        "CLUSTERJOBS_WEBHDFS": str(stack["webhdfs"]),
        "CLUSTERJOBS_NODEOS": str(stack["nodeos"]),
        "CLUSTERJOBS_DISPATCHER_ACCOUNTS": ",".join(
            f"{master}={account}" for master, account in sample["dispatchers"].items()),
        # the local NameNode's superuser and this machine's user stand for the cluster's
        "HADOOP_USER_NAME": getpass.getuser(),
        "MESOS_USER": getpass.getuser(),
    })
    assert set(env) == set(APP["env"]), "every variable of the app is given a value"
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, **env, "PORT0": str(port), "PORT": str(port), "PORTS": str(port),
            "HOST": "127.0.0.1", "MARATHON_APP_ID": APP["id"],
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}


class MarathonTask:
    """The app's cmd as Marathon starts it: `sh -c CMD` in its own process group."""

    def __init__(self, stack: dict, state: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(["/bin/sh", "-c", APP["cmd"]],
                                         env=marathon_env(stack, state, self.port),
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def health(self) -> tuple[int, dict]:
        [check] = APP["healthChecks"]
        assert check["portIndex"] == 0
        code, body = get(f"{self.url}{check['path']}", timeout=check["timeoutSeconds"])
        return code, json.loads(body or b"{}") if code else {}

    def wait_healthy(self) -> dict:
        wait(lambda: self.health()[0] == 200, APP["healthChecks"][0]["gracePeriodSeconds"],
             f"the app healthy on PORT0={self.port}", (self.proc,))
        return self.health()[1]

    def sigkill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.sigkill()


@pytest.fixture
def tasks() -> Iterator[list[MarathonTask]]:
    started: list[MarathonTask] = []
    yield started
    for task in started:
        task.stop()


def runs(markers: Path, job_id: str, instance: int) -> int:
    path = markers / f"{job_id}.{instance}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_lost_task_restarts_with_the_same_framework(stack: dict, stack_dir: Path,
                                                   tmp_path: Path,
                                                   tasks: list[MarathonTask]) -> None:
    state = f"cj-marathon-{uuid.uuid4().hex[:8]}"
    markers = tmp_path / "markers"
    markers.mkdir()
    first = MarathonTask(stack, state, tmp_path / "scheduler.log")
    tasks.append(first)
    health = first.wait_healthy()
    framework_id = health["framework_id"]
    assert health["subscribed"] and framework_id

    spec = {"version": 1, "researcher": "alice", "name": "rehearsal",
            "command": (f'echo run >> {markers}/"$CLUSTERJOBS_JOB_ID.$CLUSTERJOBS_INSTANCE"; '
                        "sleep 2; echo done > out.txt"),
            "outputs": ["out.txt"], "instances": INSTANCES,
            "resources": {"cpus": 0.1, "mem": 32}}
    job_ids = [submit(stack_dir, spec, tmp_path) for _ in range(JOBS)]
    wait(lambda: any(p.name.startswith(tuple(job_ids)) for p in markers.iterdir()), 120,
         "the first task running", (first.proc,))
    assert not all(job_state(first.url, j) == "finished" for j in job_ids), "killed too late"

    first.sigkill()  # the agent running the Marathon task is lost: no clean shutdown
    time.sleep(1)
    second = MarathonTask(stack, state, tmp_path / "scheduler.log")
    tasks.append(second)
    health = second.wait_healthy()
    assert health["framework_id"] == framework_id

    wait(lambda: all(job_state(second.url, j) == "finished" for j in job_ids), 300,
         "the run complete after the restart", (second.proc,))
    for job_id in job_ids:
        for instance in range(INSTANCES):
            assert runs(markers, job_id, instance) == 1, f"{job_id}.{instance}"
    # The leading master knows one framework by that id, connected, with failover (checkpoint).
    [framework] = [f for f in leader_state(stack)["frameworks"] if f["id"] == framework_id]
    assert framework["active"] and framework["failover_timeout"] > 0


def leader_state(stack: dict) -> dict:
    for master in stack["mesos_masters"]:
        code, body = get(f"{master}/metrics/snapshot")
        if code == 200 and json.loads(body).get("master/elected") == 1.0:
            code, body = get(f"{master}/state")
            assert code == 200
            return json.loads(body)
    raise AssertionError("no leading Mesos master")
