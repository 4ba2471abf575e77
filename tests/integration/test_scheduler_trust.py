"""Trust through the scheduler (issue 9): an executor that claims 30 s more run time than its
tasks took is credited only the time the scheduler observed (TASK_RUNNING to terminal), and
each task is flagged: ``flags`` in ``/jobs/<id>`` and `clusterjobs status`, the counter
``clusterjobs_time_discrepancy_flagged_tasks_total`` and the histogram
``clusterjobs_time_discrepancy_seconds``. On the stack's Mesos, with the scheduler's
``--executor-command`` naming the dishonest executor (tests/fixtures/inflating_executor.py)."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))
from scheduler_proc import SchedulerProc, marker_command, submit, wait
from test_scheduler_accounting import credited
from test_scheduler_parked import metric

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "inflating_executor.py"
INSTANCES = 3


def test_an_executor_claiming_more_time_is_flagged_and_paid_what_was_observed(
        stack, stack_dir, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    state = f"cj-trust-{uuid.uuid4().hex[:6]}"
    proc = SchedulerProc(stack, state, tmp_path, "--executor-command",
                         f"{sys.executable} {FIXTURE}", "--time-tolerance", "5")
    try:
        proc.wait_healthy()
        job_id = submit(str(stack_dir), {
            "version": 1, "researcher": "alice", "name": "inflated", "instances": INSTANCES,
            "command": marker_command(markers, "sleep 1"),
            "resources": {"cpus": 0.1, "mem": 32}}, tmp_path)
        wait(lambda: (proc.job(job_id) or {}).get("state") in ("finished", "failed"), 120,
             "the job to finish", proc.proc)
        job = proc.job(job_id)
        assert job["state"] == "finished", job
        for task in job["tasks"]:
            assert task["flags"] == ["time_discrepancy"], task
            # 30 s claimed beyond an observed interval of a few seconds at most.
            assert 20_000_000 < task["discrepancy_us"] < 30_000_000, task
            assert task["run_us"] >= 30_000_000  # what the executor claimed, kept as is
        assert metric(proc, "clusterjobs_time_discrepancy_flagged_tasks_total") == INSTANCES
        # The job-row archiver runs in the scheduler process too (nothing past the window).
        with urllib.request.urlopen(f"{proc.url}/metrics", timeout=10) as resp:
            assert "clusterjobs_archived_job_rows_total 0.0" in resp.read().decode()
        assert metric(proc, "clusterjobs_time_discrepancy_seconds_count") == INSTANCES
        assert metric(proc, "clusterjobs_time_discrepancy_seconds_sum") > 20 * INSTANCES
        worker_us = sum(v for (kind, _), v in credited(proc).items() if kind == "worker")
        assert 0 < worker_us < 10_000_000 * INSTANCES  # the observed time, not the claim
        shown = subprocess.run([sys.executable, "-m", "actors.cli", "status", job_id,
                                "--scheduler", proc.url], capture_output=True, text=True,
                               timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert f"{INSTANCES} flagged: time discrepancy" in shown.stdout
    finally:
        proc.stop()
