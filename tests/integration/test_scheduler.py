"""The scheduler on the local stack, through `clusterjobs submit` and the real executor:
jobs run to completion with their outputs in HDFS and each instance run once; bad specs get
their `.error` and stay; timeouts are killed and retried; SIGKILL and restart at several
points; a standby takes over. Each test runs its own framework (own ZooKeeper state path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from executor.hdfs import Hdfs

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))
from scheduler_proc import (
    DATADIR,
    SchedulerProc,
    marker_command,
    runs,
    submit,
    submit_many,
    wait,
)

JOBS = int(os.environ.get("CLUSTERJOBS_TEST_JOBS", "30"))  # fewer for a quick local run
INSTANCES = 5


@pytest.fixture(scope="module")
def fs(stack: dict) -> Hdfs:
    return Hdfs(str(stack["webhdfs"]), "alice")


@pytest.fixture
def state() -> str:
    return f"cj-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


@pytest.fixture
def procs(tmp_path: Path):
    started: list[SchedulerProc] = []
    yield started
    for proc in started:
        proc.stop()


def start(procs: list, stack: dict, state: str, tmp_path: Path, *extra: str) -> SchedulerProc:
    proc = SchedulerProc(stack, state, tmp_path, *extra)
    procs.append(proc)
    return proc


def all_done(proc: SchedulerProc, job_ids: list[str]) -> bool:
    for job_id in job_ids:
        job = proc.job(job_id)
        if job is None or job["state"] not in ("finished", "failed", "cancelled"):
            return False
    return True


def square_job(markers: Path, words: str, instances: int = INSTANCES, **more) -> dict:
    """Each instance writes (words in the input) * instance to out/result.txt."""
    then = ('mkdir -p out && echo $(( $(wc -w < words.txt) * CLUSTERJOBS_INSTANCE )) '
            '> out/result.txt')
    return {"version": 1, "researcher": "alice", "name": "square",
            "command": marker_command(markers, then), "instances": instances,
            "inputs": [{"hdfs": words, "as": "words.txt"}], "outputs": ["out"],
            "resources": {"cpus": 0.1, "mem": 32}, **more}


def test_jobs_run_to_completion_once_each_with_outputs(stack, stack_dir, fs, state, markers,
                                                      procs, tmp_path):
    words = f"{DATADIR}/data/words-{state}.txt"
    fs.write_bytes(words, b"one two three four five six seven\n")
    proc = start(procs, stack, state, tmp_path)
    proc.wait_healthy()
    job_ids = submit_many(str(stack_dir), [square_job(markers, words)] * JOBS, tmp_path)
    assert len(set(job_ids)) == JOBS
    wait(lambda: all_done(proc, job_ids), 400, f"{JOBS} jobs done", proc.proc)
    for job_id in job_ids:
        job = proc.job(job_id)
        assert job["state"] == "finished", job
        assert job["counts"] == {"finished": INSTANCES}
        for i in range(INSTANCES):
            assert runs(markers, job_id, i) == 1, f"{job_id}.{i} ran {runs(markers, job_id, i)}x"
            result = fs.read_bytes(f"{DATADIR}/jobs/{job_id}/{i}/out/result.txt")
            assert result.decode().strip() == str(7 * i)
        assert fs.exists(f"{DATADIR}/jobs/accepted/{job_id}.json")
        assert not fs.exists(f"{DATADIR}/jobs/incoming/{job_id}.json")
    # Finished jobs are archived to HDFS with their record.
    wait(lambda: fs.exists(f"{DATADIR}/jobs/{job_ids[0]}/job.json"), 30, "job.json archived")
    record = json.loads(fs.read_bytes(f"{DATADIR}/jobs/{job_ids[0]}/job.json"))
    assert record["state"] == "finished" and len(record["tasks"]) == INSTANCES
    assert all(t["run_us"] and t["worker"] for t in record["tasks"])


BAD_SPECS = {
    "malformed": ('{"version": 1,', "spec"),
    "unknown-field": ({"colour": "red"}, "colour"),
    "no-researcher": ({"researcher": None}, "researcher"),
    "negative-cpus": ({"resources": {"cpus": -1}}, "resources.cpus"),
    "zero-mem": ({"resources": {"mem": 0}}, "resources.mem"),
    "input-outside": ({"inputs": ["/protocols/bob/x.txt"]}, "inputs[0]"),
    "input-dotdot": ({"inputs": ["data/../../bob/x.txt"]}, "inputs[0]"),
    "output-escapes": ({"outputs": ["../x"]}, "outputs[0]"),
    "bad-operator": ({"constraints": [["hostname", "NEAR", "x"]]}, "constraints[0][1]"),
    "no-instances": ({"instances": 0}, "instances"),
    "other-researcher": ({"researcher": "bob"}, "researcher"),
}


def test_bad_specs_get_error_files_and_stay_good_ones_run(stack, stack_dir, fs, state,
                                                           markers, procs, tmp_path):
    incoming = f"{DATADIR}/jobs/incoming"
    names = {}
    for kind, (change, _field) in BAD_SPECS.items():
        name = f"bad-{kind}-{state}"
        names[kind] = name
        if isinstance(change, str):
            body = change.encode()
        else:
            doc = {"version": 1, "researcher": "alice", "name": "bad", "command": "true",
                   **change}
            body = json.dumps({k: v for k, v in doc.items() if v is not None}).encode()
        fs.write_bytes(f"{incoming}/{name}.json", body)
    proc = start(procs, stack, state, tmp_path)
    proc.wait_healthy()
    good = submit(str(stack_dir), {"version": 1, "researcher": "alice", "name": "good",
                                   "command": marker_command(markers, "true")}, tmp_path)
    wait(lambda: all_done(proc, [good]), 120, "the good job", proc.proc)
    assert proc.job(good)["state"] == "finished"
    for kind, (_change, field) in BAD_SPECS.items():
        name = names[kind]
        error = f"{incoming}/{name}.error"
        wait(lambda e=error: fs.exists(e), 30, f"{name}.error")
        message = fs.read_bytes(error).decode().strip()
        assert message.startswith(f"{field}: ") or f" {field}: " in message, (kind, message)
        assert len(message.splitlines()) == 1
        assert fs.exists(f"{incoming}/{name}.json"), f"{name}.json was removed"


def test_timeout_kills_retries_then_fails_with_reason(stack, stack_dir, state, markers, procs,
                                                      tmp_path):
    proc = start(procs, stack, state, tmp_path)
    proc.wait_healthy()
    job_id = submit(str(stack_dir), {
        "version": 1, "researcher": "alice", "name": "slow",
        "command": marker_command(markers, "sleep 60"), "timeout_seconds": 2,
        "max_retries": 1}, tmp_path)
    wait(lambda: all_done(proc, [job_id]), 120, "the slow job to fail", proc.proc)
    job = proc.job(job_id)
    assert job["state"] == "failed"
    (task,) = job["tasks"]
    assert task["attempts"] == 2 and task["state"] == "failed"
    assert "timed out after 2 s" in task["reason"]
    assert runs(markers, job_id, 0) == 2


def sleepy(markers: Path, seconds: float | str, instances: int = 4) -> dict:
    return {"version": 1, "researcher": "alice", "name": "sleepy", "instances": instances,
            "command": marker_command(markers, f"sleep {seconds}"),
            "resources": {"cpus": 0.1, "mem": 32}}


def counts(proc: SchedulerProc, job_ids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for job_id in job_ids:
        for key, n in (proc.job(job_id) or {}).get("counts", {}).items():
            out[key] = out.get(key, 0) + n
    return out


def test_sigkill_at_three_points_loses_nothing_runs_nothing_twice(stack, stack_dir, state,
                                                                  markers, procs, tmp_path):
    proc = start(procs, stack, state, tmp_path)
    proc.wait_healthy()
    framework_id = proc.get("/health")[1]["framework_id"]
    # Instance n sleeps 3 + 6n s, so the kills find tasks at different stages.
    spec = sleepy(markers, "$((3 + 6 * CLUSTERJOBS_INSTANCE))")
    job_ids = submit_many(str(stack_dir), [spec] * 4, tmp_path)
    # 1: as soon as the specs are accepted (launches in flight).
    wait(lambda: all(proc.job(j) for j in job_ids), 60, "specs accepted", proc.proc)
    proc.kill()
    proc = start(procs, stack, state, tmp_path)
    proc.wait_healthy()
    assert proc.get("/health")[1]["framework_id"] == framework_id
    # 2: while tasks run.
    wait(lambda: counts(proc, job_ids).get("running", 0) >= 2, 60, "tasks running",
         proc.proc)
    proc.kill()
    proc = start(procs, stack, state, tmp_path)
    proc.wait_healthy()
    # 3: once some instances finished, others not.
    wait(lambda: counts(proc, job_ids).get("finished", 0) >= 4, 90, "some finished",
         proc.proc)
    assert counts(proc, job_ids).get("finished", 0) < 16
    proc.kill()
    proc = start(procs, stack, state, tmp_path)
    proc.wait_healthy()
    assert proc.get("/health")[1]["framework_id"] == framework_id
    wait(lambda: all_done(proc, job_ids), 180, "all jobs done", proc.proc)
    for job_id in job_ids:
        assert proc.job(job_id)["state"] == "finished"
        for i in range(4):
            assert runs(markers, job_id, i) == 1, f"{job_id}.{i} ran {runs(markers, job_id, i)}x"


def test_standby_waits_then_takes_over(stack, stack_dir, state, markers, procs, tmp_path):
    first = start(procs, stack, state, tmp_path)
    first.wait_healthy()
    second = start(procs, stack, state, tmp_path)
    wait(lambda: second.get("/health")[0] == 503, 30, "the standby's HTTP")
    job_ids = submit_many(str(stack_dir), [sleepy(markers, 2, instances=3)] * 2, tmp_path)
    wait(lambda: counts(first, job_ids).get("running", 0) + counts(first, job_ids).get(
        "finished", 0) >= 2, 60, "work started", first.proc)
    assert second.get("/health")[1]["active"] is False
    first.kill()
    second.wait_healthy()
    wait(lambda: all_done(second, job_ids), 120, "the standby finishes the run", second.proc)
    for job_id in job_ids:
        assert second.job(job_id)["state"] == "finished"
        for i in range(3):
            assert runs(markers, job_id, i) == 1


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "actors.cli", *args], capture_output=True,
                          text=True, timeout=60)


def test_cancel_needs_the_token_kills_and_starts_nothing_status_cli(stack, stack_dir, state,
                                                                    markers, procs, tmp_path):
    proc = start(procs, stack, state, tmp_path)
    proc.wait_healthy()
    job_id = submit(str(stack_dir), sleepy(markers, 60, instances=3), tmp_path)
    wait(lambda: counts(proc, [job_id]).get("running", 0) == 3, 60, "3 running", proc.proc)
    request = urllib.request.Request(f"{proc.url}/jobs/{job_id}/cancel", data=b"",
                                     method="POST", headers={"Authorization": "Bearer nope"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    assert proc.job(job_id)["state"] == "running"
    token = str(Path(stack_dir) / "scheduler" / "token")
    done = cli("cancel", job_id, "--scheduler", proc.url, "--auth-token-file", token)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{job_id} cancelled"
    wait(lambda: proc.job(job_id)["counts"] == {"cancelled": 3}, 60, "all cancelled",
         proc.proc)
    time.sleep(2)  # nothing starts again
    assert [runs(markers, job_id, i) for i in range(3)] == [1, 1, 1]
    done = cli("status", job_id, "--json", "--scheduler", proc.url)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert {"id", "state", "instances", "counts", "tasks"} <= set(shown)
    assert shown["state"] == "cancelled" and shown["instances"] == 3
    assert {"instance", "state", "attempts", "agent_id", "worker", "run_us", "reason"} <= set(
        shown["tasks"][0])
    listing = cli("status", "--scheduler", proc.url)
    assert job_id in listing.stdout and "cancelled" in listing.stdout
    missing = cli("status", "no-such-job", "--scheduler", proc.url)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "clusterjobs: error: unknown job no-such-job"
    metrics = urllib.request.urlopen(f"{proc.url}/metrics", timeout=10).read().decode()
    assert "clusterjobs_task_launches_total 3.0" in metrics
    assert 'clusterjobs_instances{researcher="alice",state="cancelled"} 3.0' in metrics


def test_finished_job_archived_to_hdfs_dropped_from_zookeeper_status_still_answers(
        stack, stack_dir, fs, state, markers, procs, tmp_path):
    proc = start(procs, stack, state, tmp_path, "--retention", "1")
    proc.wait_healthy()
    job_id = submit(str(stack_dir), sleepy(markers, 0, instances=2), tmp_path)
    wait(lambda: (proc.job(job_id) or {}).get("archived"), 60, "the job archived and dropped",
         proc.proc)
    assert job_id not in [j["id"] for j in proc.get("/jobs")[1]["jobs"]]
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=str(stack["zookeeper"]))
    zk.start()
    try:
        # (Its credits are the pusher's to drain from outbox/, on its own schedule.)
        assert zk.get_children(f"/{state}/jobs") == []
    finally:
        zk.stop()
    shown = cli("status", job_id, "--json", "--scheduler", proc.url)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["state"] == "finished" and record["counts"] == {"finished": 2}
    assert json.loads(fs.read_bytes(f"{DATADIR}/jobs/{job_id}/job.json"))["id"] == job_id


def test_the_active_scheduler_is_scraped_by_the_stacks_prometheus(stack, state, procs, tmp_path):
    proc = start(procs, stack, state, tmp_path)
    proc.wait_healthy()
    address = proc.url.removeprefix("http://")
    query = urllib.parse.quote(f'up{{job="clusterjobs-scheduler",instance="{address}"}}')

    def scraped() -> bool:
        with urllib.request.urlopen(f"{stack['prometheus']}/api/v1/query?query={query}",
                                    timeout=10) as answer:
            result = json.load(answer)["data"]["result"]
        return bool(result) and result[0]["value"][1] == "1"

    wait(scraped, 60, "Prometheus scraping the scheduler", proc.proc)
