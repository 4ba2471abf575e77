"""The clusterjobs executor on the stack's Mesos emulator and HDFS, driven by a small pymesos
framework (tests/fixtures/workunit_framework.py): staging, timing, failures, kills, many tasks
on one executor, shutdown."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.hdfs import Hdfs
from tests.fixtures.mesos_framework import poll
from tests.fixtures.workunit_framework import Task, WorkUnitFramework, start

MiB = 1 << 20


@pytest.fixture(scope="module")
def fs(stack: dict) -> Hdfs:
    return Hdfs(str(stack["webhdfs"]), "alice")


@pytest.fixture(scope="module")
def base(fs: Hdfs) -> Iterator[str]:
    path = f"/clusterjobs-tests/executor-{uuid.uuid4().hex[:10]}"
    fs.makedirs(path)
    yield path
    fs.delete(path, recursive=True)


@pytest.fixture(scope="module")
def framework(stack: dict) -> Iterator[WorkUnitFramework]:
    fw = WorkUnitFramework(str(stack["webhdfs"]))
    driver = start(fw, str(stack["mesos"]))
    fw.driver = driver  # type: ignore[attr-defined]
    yield fw
    driver.stop()
    driver.join()


def unit(base: str, job: str, command: list[str] | str, *, inputs: list[dict] | None = None,
         outputs: list[str] | None = None, instance: int = 0, instances: int = 1,
         image: str | None = None, timeout: float | None = None) -> dict:
    return {"version": 1, "job_id": job, "instance": instance, "instances": instances,
            "attempt": 0, "researcher": "alice", "datadir": base, "command": command,
            "image": image, "env": {"GREETING": "hi"}, "inputs": inputs or [],
            "outputs": outputs or [], "output_dir": f"{base}/jobs/{job}/{instance}",
            "hdfs_user": "alice", "timeout_seconds": timeout}


def run_one(fw: WorkUnitFramework, workunit: dict, timeout: float = 120,
            **kwargs: object) -> tuple[str, dict]:
    task_id = f"{workunit['job_id']}.{workunit['instance']}"
    fw.submit([Task(task_id, workunit, **kwargs)])  # type: ignore[arg-type]
    return task_id, fw.wait_terminal(task_id, timeout)


def marked(marker: str) -> list[int]:
    """Host pids of the live processes whose command line contains ``marker`` (works across
    pid namespaces, where the task's own idea of its pid is not the host's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":  # a zombie waiting to be reaped is gone
            found.append(int(entry.name))
    return found


def stubborn_script(marker: str, ready: Path) -> str:
    """A shell that ignores SIGTERM, with a child, both named by ``marker`` (a sleep time)."""
    return f'trap "" TERM; sleep {marker} & touch {ready}; wait; wait'


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def test_inputs_staged_and_outputs_uploaded_byte_identical(
        fw_and_base: tuple, fs: Hdfs, tmp_path: Path) -> None:
    fw, base = fw_and_base
    # 200 MiB of distinct random chunks, generated while uploading (no local copy needed).
    block = os.urandom(MiB)
    digest = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for i in range(200):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            yield chunk

    fs.client.write(f"{base}/data/big.bin", data=chunks(), overwrite=True)
    fs.write_bytes(f"{base}/data/small.txt", b"hello\n")
    job = "stage"
    script = ('mkdir -p out && sha256sum big.bin | cut -d" " -f1 > out/big.sha256 && '
              'cp big.bin out/big.copy && cp in/small.txt out/small.txt && '
              'echo "$GREETING $CLUSTERJOBS_JOB_ID $CLUSTERJOBS_INSTANCE/$CLUSTERJOBS_INSTANCES"')
    task_id, last = run_one(fw, unit(base, job, script, outputs=["out"], inputs=[
        {"hdfs": f"{base}/data/big.bin", "as": "big.bin"},
        {"hdfs": f"{base}/data/small.txt", "as": "in/small.txt"}]), timeout=300,
        cpus=0.5, mem=512)  # room for the page cache of 400 MiB of files in a memory cgroup
    assert last["state"] == "TASK_FINISHED", last.get("message")
    assert fw.states(task_id) == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    data = fw.data(task_id, "TASK_FINISHED")
    out = f"{base}/jobs/{job}/0"
    assert data["exit_code"] == 0
    assert data["bytes_in"] == 200 * MiB + 6
    assert data["bytes_out"] >= 200 * MiB + 6
    assert sorted(data["outputs"]) == sorted(f"{out}/{name}" for name in (
        "out/big.sha256", "out/big.copy", "out/small.txt", "stdout", "stderr"))
    assert data["stage_in_us"] > 0 and data["stage_out_us"] > 0 and data["run_us"] > 0
    assert fs.read_bytes(f"{out}/out/big.sha256").decode().strip() == digest.hexdigest()
    assert fs.read_bytes(f"{out}/out/small.txt") == b"hello\n"
    assert fs.read_bytes(f"{out}/stdout") == f"hi {job} 0/1\n".encode()
    fs.download(f"{out}/out/big.copy", tmp_path / "copy")
    assert sha256_file(tmp_path / "copy") == digest.hexdigest()
    assert "started_us" in fw.data(task_id, "TASK_RUNNING")
    stamps = [u["timestamp"] for u in fw.updates[task_id]]
    assert all(isinstance(t, float) for t in stamps) and stamps == sorted(stamps)


@pytest.fixture(scope="module")
def fw_and_base(framework: WorkUnitFramework, base: str) -> tuple[WorkUnitFramework, str]:
    return framework, base


def test_run_us_within_5_percent_of_a_known_sleep(fw_and_base: tuple) -> None:
    fw, base = fw_and_base
    task_id, last = run_one(fw, unit(base, "sleep", ["sleep", "3"]))
    assert last["state"] == "TASK_FINISHED", last.get("message")
    data = fw.data(task_id, "TASK_FINISHED")
    assert abs(data["run_us"] - 3_000_000) <= 0.05 * 3_000_000, data
    assert 0 <= data["cpu_us"] < data["run_us"]


def test_cpu_time_is_the_childs(fw_and_base: tuple) -> None:
    fw, base = fw_and_base
    # A fixed amount of work: its CPU time does not depend on how busy the machine is.
    burn = "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done"
    task_id, last = run_one(fw, unit(base, "burn", burn), cpus=1.0)
    assert last["state"] == "TASK_FINISHED", last.get("message")
    busy = fw.data(task_id, "TASK_FINISHED")
    task_id, last = run_one(fw, unit(base, "idle", ["sleep", "1"]))
    idle = fw.data(task_id, "TASK_FINISHED")
    assert busy["cpu_us"] > 100_000 > 50_000 > idle["cpu_us"]
    assert busy["cpu_us"] <= busy["run_us"] * 1.05  # one thread: no more CPU than wall time


def test_failing_command_reports_exit_code_and_stderr_tail(fw_and_base: tuple,
                                                           fs: Hdfs) -> None:
    fw, base = fw_and_base
    script = "echo starting; for i in 1 2 3 4 5 6 7; do echo line$i >&2; done; exit 3"
    task_id, last = run_one(fw, unit(base, "fails", script, outputs=["nothing"]))
    assert last["state"] == "TASK_FAILED"
    assert last["message"] == ("command failed with exit code 3; stderr: "
                               "line3 | line4 | line5 | line6 | line7")
    assert fw.data(task_id, "TASK_FAILED")["exit_code"] == 3
    assert not fs.exists(f"{base}/jobs/fails")


def test_missing_input_fails_naming_the_path_and_uploads_nothing(fw_and_base: tuple,
                                                                 fs: Hdfs) -> None:
    fw, base = fw_and_base
    fs.write_bytes(f"{base}/data/present.txt", b"x")
    task_id, last = run_one(fw, unit(base, "missing", ["cat", "a", "b"], outputs=["a"], inputs=[
        {"hdfs": f"{base}/data/present.txt", "as": "a"},
        {"hdfs": f"{base}/data/absent.bin", "as": "b"}]))
    assert last["state"] == "TASK_FAILED"
    assert "\n" not in last["message"]
    assert last["message"].startswith(f"stage-in failed: HDFS {base}/data/absent.bin: "
                                      "FileNotFoundException")
    assert "TASK_RUNNING" not in fw.states(task_id)
    assert not fs.exists(f"{base}/jobs/missing")


def test_kill_of_a_process_ignoring_sigterm(fw_and_base: tuple, tmp_path: Path) -> None:
    fw, base = fw_and_base
    marker = f"{600 + int(uuid.uuid4().int % 100000) / 1000:.3f}"
    ready = tmp_path / "ready"
    task_id = "stubborn.0"
    fw.submit([Task(task_id, unit(base, "stubborn", stubborn_script(marker, ready)),
                    kill_grace=1.5)])
    fw.wait_state(task_id, {"TASK_RUNNING"}, 60)
    poll(lambda: ready.exists() and len(marked(marker)) == 2, 30, "the shell and its child")
    asked = time.monotonic()
    fw.driver.killTask({"value": task_id})  # type: ignore[attr-defined]
    last = fw.wait_terminal(task_id, 30)
    waited = time.monotonic() - asked
    assert last["state"] == "TASK_KILLED"
    assert fw.states(task_id)[-2:] == ["TASK_KILLING", "TASK_KILLED"]
    assert waited >= 1.5  # SIGTERM was ignored: only the SIGKILL after the grace ended it
    poll(lambda: not marked(marker), 10, "no process left")


def test_kill_during_stage_in_never_runs_the_command(fw_and_base: tuple, fs: Hdfs,
                                                    tmp_path: Path) -> None:
    fw, base = fw_and_base
    block = os.urandom(MiB)
    fs.client.write(f"{base}/data/stage-kill.bin", data=(block for _ in range(256)),
                    overwrite=True)
    ran = tmp_path / "ran"
    task_id = "stagekill.0"
    fw.submit([Task(task_id, unit(base, "stagekill", f"touch {ran}", outputs=["x"], inputs=[
        {"hdfs": f"{base}/data/stage-kill.bin", "as": "x"}]))])
    fw.wait_state(task_id, {"TASK_STARTING"}, 60)
    fw.driver.killTask({"value": task_id})  # type: ignore[attr-defined]
    last = fw.wait_terminal(task_id, 60)
    assert last["state"] == "TASK_KILLED"
    assert "TASK_RUNNING" not in fw.states(task_id)
    assert not ran.exists()
    assert not fs.exists(f"{base}/jobs/stagekill")


def test_timeout_fails_the_task(fw_and_base: tuple) -> None:
    fw, base = fw_and_base
    _, last = run_one(fw, unit(base, "slow", ["sleep", "30"], timeout=1))
    assert last["state"] == "TASK_FAILED"
    assert last["message"] == "timed out after 1 s"


def test_twenty_tasks_at_once_on_one_executor(fw_and_base: tuple, fs: Hdfs) -> None:
    fw, base = fw_and_base
    job = "twenty"
    script = 'echo "$CLUSTERJOBS_INSTANCE" > n.txt; sleep 3'
    tasks = [Task(f"{job}.{i}", unit(base, job, script, outputs=["n.txt"], instance=i,
                                     instances=20)) for i in range(20)]
    fw.submit(tasks)
    ends = [fw.wait_terminal(t.task_id, 120) for t in tasks]
    assert [e["state"] for e in ends] == ["TASK_FINISHED"] * 20, [e.get("message") for e in ends]
    assert len({fw.agents[t.task_id] for t in tasks}) == 1  # one agent, one executor
    starts = [fw.data(t.task_id, "TASK_RUNNING")["started_us"] for t in tasks]
    finishes = [s + fw.data(t.task_id, "TASK_FINISHED")["run_us"]
                for s, t in zip(starts, tasks, strict=True)]
    assert max(starts) < min(finishes)  # all twenty were running at the same time
    for i in range(20):
        assert fs.read_bytes(f"{base}/jobs/{job}/{i}/n.txt") == f"{i}\n".encode()


def _agent_has_nested_containers(agent: str) -> bool:
    """False when the agent has no operator API (404), as the emulator before issue 10."""
    body = json.dumps({"type": "GET_CONTAINERS"}).encode()
    request = urllib.request.Request(f"{agent}/api/v1", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code != 404


def test_imaged_work_unit_on_an_agent_without_nested_containers(stack: dict,
                                                                fw_and_base: tuple) -> None:
    if any(_agent_has_nested_containers(a) for a in stack["mesos_agents"]):
        pytest.skip("the agents answer the operator API: the next test runs the image")
    fw, base = fw_and_base
    _, last = run_one(fw, unit(base, "imaged", ["true"], image="busybox:1.36"))
    assert last["state"] == "TASK_FAILED"
    assert "\n" not in last["message"]
    assert last["message"].startswith("the agent does not support nested containers, so image "
                                      "busybox:1.36 cannot run (LAUNCH_CONTAINER: HTTP 404")


def test_shutdown_leaves_no_process(stack: dict, base: str, tmp_path: Path) -> None:
    fw = WorkUnitFramework(str(stack["webhdfs"]), executor_id="cj-shutdown")
    driver = start(fw, str(stack["mesos"]))
    marker = f"{600 + int(uuid.uuid4().int % 100000) / 1000:.3f}"
    ready = tmp_path / "ready"
    try:
        fw.submit([Task("down.0", unit(base, "down", stubborn_script(marker, ready)),
                        kill_grace=1)])
        fw.wait_state("down.0", {"TASK_RUNNING"}, 60)
        poll(lambda: ready.exists() and len(marked(marker)) == 2, 30, "the shell and its child")
    finally:
        driver.stop()  # TEARDOWN: the agent sends SHUTDOWN to the executor
        driver.join()
    poll(lambda: not marked(marker), 20, "no process left after SHUTDOWN")


def test_imaged_work_unit_runs_as_a_nested_container(stack: dict, fw_and_base: tuple,
                                                     fs: Hdfs) -> None:
    if not all(_agent_has_nested_containers(a) for a in stack["mesos_agents"]):
        pytest.skip("the agents have no operator API: the test above covers that case")
    fw, base = fw_and_base
    fs.write_bytes(f"{base}/data/words.txt", b"b\na\nc\n")
    script = "sort words.txt > sorted.txt && echo \"$GREETING from $CLUSTERJOBS_INSTANCE\""
    task_id, last = run_one(fw, unit(base, "nested", script, image="busybox",
                                     inputs=[{"hdfs": f"{base}/data/words.txt",
                                              "as": "words.txt"}],
                                     outputs=["sorted.txt"]), mem=64)
    assert last["state"] == "TASK_FINISHED", last.get("message")
    data = fw.data(task_id, "TASK_FINISHED")
    assert data["exit_code"] == 0 and data["run_us"] > 0
    assert fs.read_bytes(f"{base}/jobs/nested/0/sorted.txt") == b"a\nb\nc\n"
    assert fs.read_bytes(f"{base}/jobs/nested/0/stdout") == b"hi from 0\n"
