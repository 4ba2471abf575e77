"""The agents' containerizer (issue 10), through pymesos's unmodified drivers against the
session stack, whose agents run with every isolator on (`stack up`'s default): cgroups
memory and CPU limits, pid namespaces, the busybox image, nested containers."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.fixtures.mesos_raw import get_json
from tests.fixtures.mesos_tasks import TaskFramework, run_framework, scalar

NESTED_EXECUTOR = Path(__file__).parent.parent / "fixtures" / "nested_executor.py"
BUSYBOX = {"type": "MESOS", "mesos": {"image": {"type": "DOCKER",
                                                 "docker": {"name": "busybox"}}}}


@pytest.fixture(autouse=True)
def _contained_stack() -> None:
    if os.environ.get("CLUSTERJOBS_TEST_ISOLATION", "") == "none":
        pytest.skip("the session stack runs without isolation (CLUSTERJOBS_TEST_ISOLATION)")


def command_task(tid: str, command: str, cpus: float = 0.1, mem: float = 32,
                 container: dict | None = None) -> dict:
    task = {"task_id": {"value": tid}, "name": tid, "command": {"value": command},
            "resources": [scalar("cpus", cpus), scalar("mem", mem)]}
    if container:
        task["container"] = container
    return task


def sandboxes(stack: dict, framework_id: str, tid: str) -> list[Path]:
    """The task's sandbox folders on every agent of the stack (Mesos's layout)."""
    root = Path(stack["workdir"]) / "mesos" / "agents"
    return list(root.glob(f"agent-*/slaves/*/frameworks/{framework_id}/executors/{tid}/runs/*"))


def run(stack: dict, tasks: list[dict], name: str) -> tuple[TaskFramework, object]:
    framework = TaskFramework(tasks)
    driver = run_framework(framework, stack["mesos"], name)
    return framework, driver


def stop(driver) -> None:
    driver.stop()
    driver.join()


def test_memory_limit_fails_the_task_and_spares_the_rest(stack):
    hog = f"hog-{uuid.uuid4().hex[:6]}"
    calm = f"calm-{uuid.uuid4().hex[:6]}"
    # mem 64 -> a 96 MB container (Mesos adds 32 MB for its command executor); 256 MB is 4x.
    framework, driver = run(stack, [
        command_task(calm, "sleep 4"),
        command_task(hog, f"{sys.executable} -c \"b = b'x' * (256 << 20); "
                          "import time; time.sleep(30)\"", mem=64)], "cj-memlimit")
    try:
        status = framework.terminal(hog, 60)
        assert status["state"] == "TASK_FAILED", status
        assert status["reason"] == "REASON_CONTAINER_LIMITATION_MEMORY", status
        assert status["source"] == "SOURCE_AGENT", status
        assert status["message"].startswith("Memory limit exceeded: Requested: 96MB"), status
        assert framework.terminal(calm, 60)["state"] == "TASK_FINISHED"
        assert framework.states(calm)[-2:] == ["TASK_RUNNING", "TASK_FINISHED"]
    finally:
        stop(driver)


def test_cpu_quota_and_statistics(stack, tmp_path):
    tid = f"spin-{uuid.uuid4().hex[:6]}"
    out = tmp_path / "usage"
    spin = ("timeout 4 sh -c 'while :; do :; done'; "
            "g=$(grep cpuacct /proc/self/cgroup | cut -d: -f3); "
            f"cat /sys/fs/cgroup/cpuacct$g/cpuacct.usage > {out}; echo $g >> {out}")
    framework, driver = run(stack, [command_task(tid, spin, cpus=0.25)], "cj-cpu")
    try:
        framework.wait_state(tid, "TASK_RUNNING", 60)
        agent = next(a for a in stack["mesos_agents"]
                     if get_json(f"{a}/state")["id"] == framework.agent_id)
        seen = {}
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not seen:
            seen = next((e for e in get_json(f"{agent}/monitor/statistics")
                         if e["executor_id"] == tid), {})
            time.sleep(0.2)
        assert seen, "no statistics for the running task"
        stats = seen["statistics"]
        # 0.25 cpus + Mesos's 0.1 for the command executor; 32 MB + 32 MB.
        assert stats["cpus_limit"] == 0.35
        assert stats["mem_limit_bytes"] == 64 << 20
        assert "cpus_user_time_secs" in stats and "mem_rss_bytes" in stats
        assert framework.terminal(tid, 60)["state"] == "TASK_FINISHED"
        usage_ns, group = out.read_text().split()
        cpu_seconds = int(usage_ns) / 1e9
        # 4 s of spinning under a 0.35-CPU quota: about 1.4 CPU-seconds, never 4.
        assert 0.2 < cpu_seconds < 2.0, cpu_seconds
        container_id = sandboxes(stack, framework.framework_id, tid)[0].name
        assert group.endswith(f"/{container_id}"), group
    finally:
        stop(driver)


def test_pid_namespace_shows_only_the_container(stack, tmp_path):
    tid = f"ps-{uuid.uuid4().hex[:6]}"
    out = tmp_path / "ps"
    framework, driver = run(stack, [command_task(
        tid, f"sleep 30 & ps -e -o pid=,comm= > {out}; cat /proc/self/cgroup >> {out}")],
        "cj-pidns")
    try:
        assert framework.terminal(tid, 60)["state"] == "TASK_FINISHED"
        lines = out.read_text().splitlines()
        processes = [line.split(None, 1) for line in lines if line.strip()[0].isdigit()
                     and ":" not in line]
        pids = sorted(int(p) for p, _c in processes)
        # The container's init (pid 1), the shell, sleep and ps: nothing of the host.
        assert pids[0] == 1 and max(pids) < 20, processes
        assert {c.strip() for _p, c in processes} >= {"sh", "sleep", "ps"}, processes
        assert not any("agent_main" in c or "java" in c for _p, c in processes)
        container_id = sandboxes(stack, framework.framework_id, tid)[0].name
        groups = [line for line in lines if ":memory:" in line or ":cpu:" in line]
        assert len(groups) == 2 and all(g.endswith(f"/{container_id}") for g in groups), lines
    finally:
        stop(driver)


def test_busybox_image_rootfs_and_sandbox(stack):
    tid = f"img-{uuid.uuid4().hex[:6]}"
    missing = f"noimg-{uuid.uuid4().hex[:6]}"
    script = ("test ! -e /etc/os-release && test -x /bin/busybox && "
              "test \"$MESOS_SANDBOX\" = /mnt/mesos/sandbox && test \"$(pwd)\" = $MESOS_SANDBOX"
              " && ls / > /mnt/mesos/sandbox/root.txt && echo written > written.txt")
    framework, driver = run(stack, [
        command_task(tid, script, container=BUSYBOX),
        command_task(missing, "true", container={"type": "MESOS", "mesos": {"image": {
            "type": "DOCKER", "docker": {"name": "no-such-image:1.0"}}}})], "cj-image")
    try:
        status = framework.terminal(tid, 60)
        assert status["state"] == "TASK_FINISHED", (status, framework.states(tid))
        sandbox = sandboxes(stack, framework.framework_id, tid)[0]
        assert (sandbox / "written.txt").read_text() == "written\n"
        listing = (sandbox / "root.txt").read_text().split()
        assert "bin" in listing and "usr" not in listing and "home" not in listing, listing
        failed = framework.terminal(missing, 60)
        assert failed["state"] == "TASK_FAILED", failed
        assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED", failed
        assert "no-such-image:1.0" in failed["message"], failed
    finally:
        stop(driver)


def test_executor_runs_a_nested_container_in_busybox(stack):
    tid = f"nested-{uuid.uuid4().hex[:6]}"
    task = {"task_id": {"value": tid}, "name": tid,
            "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
            "data": base64.b64encode(
                b"test ! -e /etc/os-release && echo from-nested > work/out.txt; exit 3").decode(),
            "executor": {"executor_id": {"value": f"nested-exec-{tid}"}, "name": "nested",
                         "command": {"value": f"{sys.executable} {NESTED_EXECUTOR}"},
                         "resources": [scalar("cpus", 0.1), scalar("mem", 64)]}}
    framework, driver = run(stack, [task], "cj-nested")
    try:
        status = framework.terminal(tid, 90)
        assert status["state"] == "TASK_FINISHED", status
        data = json.loads(base64.b64decode(status["data"]))
        assert data["wait"] == {"type": "WAIT_CONTAINER",
                                "wait_container": {"exit_status": 3 << 8}}, data
        assert data["output"] == "from-nested\n", data
    finally:
        stop(driver)


def test_disk_quota_ends_the_container(stack):
    tid = f"disk-{uuid.uuid4().hex[:6]}"
    task = command_task(tid, "dd if=/dev/zero of=big bs=1M count=6 2>/dev/null; sleep 30")
    task["resources"].append(scalar("disk", 2))
    framework, driver = run(stack, [task], "cj-disk")
    try:
        # The stack's agents check sandboxes every 2 s (--container_disk_watch_interval).
        status = framework.terminal(tid, 30)
        assert status["state"] == "TASK_FAILED", status
        assert status["reason"] == "REASON_CONTAINER_LIMITATION_DISK", status
        assert status["source"] == "SOURCE_AGENT", status
        assert status["message"].startswith("Disk usage ("), status
        assert status["message"].endswith(") exceeds quota (2MB)"), status
    finally:
        stop(driver)
