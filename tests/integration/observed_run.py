"""A batch of jobs on the local stack watched by the stack's Prometheus running
deploy/prometheus/prometheus.yml (targets rewritten to the local ports): the scheduler, the
accounting pusher, the Mesos exporter in front of the stack's masters and agents, Prometheus
itself. Used by test_observability.py (the dashboard's queries and `clusterjobs report`)."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from actors.observe.promconfig import localize
from actors.stack.devchain import DEV_PRIVATE_KEY

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
RATE_INTERVAL = "15s"  # the stack scrapes every second


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(predicate: Callable[[], object], timeout: float, what: str,
         procs: tuple[subprocess.Popen, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for proc in procs:
            if proc.poll() is not None:
                name = " ".join(map(str, proc.args[2:4]))
                raise AssertionError(f"{name} exited ({proc.returncode}) while waiting for "
                                     f"{what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.3)


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """A child process of this test, in its own session, stopped (then killed) at the end."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@dataclass
class Run:
    prometheus: str
    scheduler: str
    exporter: str
    pusher: str
    start: float
    end: float = 0.0
    job_ids: list[str] = field(default_factory=list)
    logs: Path = Path()

    def query_range(self, expr: str, step: float = 1.0) -> list[dict]:
        """Prometheus's range query over the run; raises AssertionError on an error answer."""
        params = urllib.parse.urlencode({"query": expr, "start": self.start, "end": self.end,
                                         "step": step})
        code, body = get(f"{self.prometheus}/api/v1/query_range?{params}", timeout=30)
        answer = json.loads(body or b"{}")
        assert code == 200 and answer.get("status") == "success", (expr, code, answer)
        return answer["data"]["result"]


def has_data(result: list[dict]) -> bool:
    """At least one finite sample in a range query's result."""
    return any(math.isfinite(float(v)) for series in result for _, v in series["values"])


def batch(marker: str) -> list[dict]:
    """Six small jobs of three instances (outputs in HDFS), and one that fails for good."""
    good = {"version": 1, "researcher": "alice", "name": "obs-ok",
            "command": f"sleep 0.3; echo {marker} $CLUSTERJOBS_INSTANCE > out.txt",
            "outputs": ["out.txt"], "instances": 3, "resources": {"cpus": 0.1, "mem": 32}}
    bad = {"version": 1, "researcher": "alice", "name": "obs-fail", "command": "exit 3",
           "instances": 1, "max_retries": 0, "resources": {"cpus": 0.1, "mem": 32}}
    return [good] * 6 + [bad]


def submit(stack_dir: Path, spec: dict, tmp: Path) -> str:
    path = tmp / f"spec-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, "-m", "actors.cli", "submit", str(path),
                           "--stack", str(stack_dir)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def job_state(scheduler: str, job_id: str) -> str | None:
    code, body = get(f"{scheduler}/jobs/{job_id}")
    return json.loads(body).get("state") if code == 200 else None


@contextmanager
def prometheus_running(stack: dict, stack_dir: Path, targets: dict[str, list[str]],
                       exporter: str) -> Iterator[None]:
    """The stack's Prometheus on the deployment's configuration (plus the stack's own
    file-discovered job, which other tests use); the stack's configuration back at the end."""
    config_path = stack_dir / "prometheus" / "prometheus.yml"
    original = config_path.read_text()
    stack_jobs = yaml.safe_load(original)["scrape_configs"]
    deploy = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    local = localize(deploy, targets, exporter=exporter,
                     rule_files=[str(PROM_DIR / "alerts.yml")], scrape_interval="1s")
    local["scrape_configs"] += stack_jobs
    url = str(stack["prometheus"])

    def reload() -> None:
        request = urllib.request.Request(f"{url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200

    config_path.write_text(yaml.safe_dump(local, sort_keys=False))
    try:
        reload()
        yield
    finally:
        config_path.write_text(original)
        reload()


def active_targets(prometheus: str) -> dict[str, str]:
    code, body = get(f"{prometheus}/api/v1/targets?state=active")
    if code != 200:
        return {}
    return {f"{t['labels']['job']} {t['labels']['instance']}": t["health"]
            for t in json.loads(body)["data"]["activeTargets"]}


@contextmanager
def observed_run(stack: dict, stack_dir: Path, tmp: Path) -> Iterator[Run]:
    """Everything started, the batch run to its end, the last scrapes in; yields the Run."""
    state = f"cj-obs-{uuid.uuid4().hex[:8]}"
    sched_port, pusher_port = free_port(), free_port()
    key_file = tmp / "jobs.key"
    key_file.write_text(DEV_PRIVATE_KEY + "\n")
    key_file.chmod(0o600)
    py = [sys.executable, "-m"]
    with ExitStack() as stack_of:
        scheduler = stack_of.enter_context(process(
            [*py, "actors.cli", "scheduler", "--stack", str(stack_dir),
             "--zk", f"zk://{stack['zookeeper']}/{state}", "--port", str(sched_port),
             "--framework-name", state, "--poll", "0.5", "--payout-every", "2"],
            tmp / "scheduler.log"))
        pusher = stack_of.enter_context(process(
            [*py, "scheduler.pusher", "--zk", str(stack["zookeeper"]), "--path", f"/{state}",
             "--nodeos", str(stack["nodeos"]), "--account", "jobs@active",
             "--key-file", str(key_file), "--port", str(pusher_port)], tmp / "pusher.log"))
        exporter_log = tmp / "exporter.log"
        exporter_proc = stack_of.enter_context(process(
            [*py, "actors.cli", "mesos-exporter", "--port", "0"], exporter_log))
        wait(lambda: re.search(r"url=http://(\S+)", exporter_log.read_text()), 30,
             "the exporter", (exporter_proc,))
        found = re.search(r"url=http://(\S+)", exporter_log.read_text())
        assert found
        exporter = found.group(1)
        prometheus = str(stack["prometheus"])
        targets = {
            "clusterjobs-scheduler": [f"127.0.0.1:{sched_port}"],
            "clusterjobs-pusher": [f"127.0.0.1:{pusher_port}"],
            "mesos-masters": [m.removeprefix("http://") for m in stack["mesos_masters"]],
            "mesos-agents": [a.removeprefix("http://") for a in stack["mesos_agents"]],
            "mesos-exporter": [exporter],
            "prometheus": [prometheus.removeprefix("http://")],
        }
        stack_of.enter_context(prometheus_running(stack, stack_dir, targets, exporter))
        run = Run(prometheus, f"http://127.0.0.1:{sched_port}", f"http://{exporter}",
                  f"http://127.0.0.1:{pusher_port}", start=time.time(), logs=tmp)
        procs = (scheduler, pusher, exporter_proc)
        wait(lambda: get(f"{run.scheduler}/health")[0] == 200, 90, "the scheduler healthy",
             procs)
        wait(lambda: active_targets(prometheus).get(
            f"clusterjobs-scheduler 127.0.0.1:{sched_port}") == "up", 30,
            "Prometheus scraping the scheduler", procs)
        run.job_ids = [submit(stack_dir, spec, tmp) for spec in batch(state)]
        wait(lambda: all(job_state(run.scheduler, j) in ("finished", "failed", "cancelled")
                         for j in run.job_ids), 300, "the batch done", procs)
        # The payout policy (every 2 s) pays the batch's credits once they are confirmed.
        wait(lambda: b"clusterjobs_payouts_total{" in get(f"{run.scheduler}/metrics")[1], 60,
             "a payout by the scheduler's policy", procs)
        time.sleep(4)  # a few more scrapes and rule evaluations after the last update
        run.end = time.time()
        yield run
