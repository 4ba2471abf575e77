"""The scheduler's exposition (every metric with a sample) passes promtool's linter, and
credited time is counted in seconds per kind, researcher and account."""

from __future__ import annotations

import shutil
import subprocess

from scheduler.accounting import CreditEntry
from scheduler.metrics import SchedulerMetrics


def credit(kind: str, account: str, time_us: int) -> CreditEntry:
    return CreditEntry(kind=kind, researcher="alice", account=account, time_us=time_us,
                       credit_id=1, task_id="t", job_id="j", instance=0, attempt=1,
                       finished_at_us=0)


def test_exposition_passes_promtool_and_credits_are_seconds() -> None:
    metrics = SchedulerMetrics()
    metrics.update("TASK_FINISHED")
    metrics.instance_done("alice", "finished", "finished", 1_500_000)
    metrics.instance_done("alice", "failed", "timeout", None)
    metrics.placement_seconds.observe(0.002)
    metrics.credited([credit("worker", "worker1", 2_500_000),
                      credit("dispatcher", "dispatcher1", 3_000_000),
                      credit("worker", "worker1", 500_000)])
    metrics.specs(3, 1)
    text = metrics.render([])
    assert (b'clusterjobs_credited_seconds_total{account="worker1",kind="worker",'
            b'researcher="alice"} 3.0') in text
    done = subprocess.run([shutil.which("promtool") or "/usr/bin/promtool", "check", "metrics"],
                          input=text, capture_output=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, b"")
