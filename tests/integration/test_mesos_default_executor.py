"""Issue 12, item 2: a LAUNCH_GROUP with a DEFAULT executor runs each task of the group, as
Mesos's default executor does (before, its tasks stayed TASK_STAGING for ever)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))

from mesos_framework import poll
from mesos_raw import RawScheduler, get_json, leader_address


@pytest.fixture
def raw(stack):
    sub = RawScheduler(leader_address(stack["mesos_masters"]), {
        "user": "nobody", "name": "default-executor",
        "capabilities": [{"type": "TASK_KILLING_STATE"}]})
    assert sub.status == 200
    yield sub
    sub.call({"type": "TEARDOWN", "framework_id": {"value": sub.framework_id}})
    sub.close()


def _scalars(**values: float) -> list[dict]:
    return [{"name": k, "type": "SCALAR", "scalar": {"value": v}} for k, v in values.items()]


def _launch_group(raw: RawScheduler, exec_id: str, commands: dict[str, str]) -> dict:
    offer = raw.wait_event(lambda e: e["type"] == "OFFERS", 15)["offers"]["offers"][0]
    tasks = [{"task_id": {"value": tid}, "agent_id": offer["agent_id"], "name": tid,
              "command": {"value": command}, "resources": _scalars(cpus=0.1, mem=16)}
             for tid, command in commands.items()]
    executor = {"executor_id": {"value": exec_id}, "type": "DEFAULT",
                "resources": _scalars(cpus=0.1, mem=32, disk=10)}
    assert raw.call({"type": "ACCEPT", "framework_id": {"value": raw.framework_id},
                     "accept": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0},
                                "operations": [{"type": "LAUNCH_GROUP", "launch_group": {
                                    "executor": executor,
                                    "task_group": {"tasks": tasks}}}]}})[0] == 202
    return offer


def _states(raw: RawScheduler, tid: str) -> list[dict]:
    """Every update of ``tid`` so far, each acknowledged once."""
    out = []
    for event in list(raw.events):
        if event["type"] != "UPDATE" or event["update"]["status"]["task_id"]["value"] != tid:
            continue
        status = event["update"]["status"]
        if "uuid" in status and not status.get("_acked"):
            status["_acked"] = True
            raw.call({"type": "ACKNOWLEDGE", "framework_id": {"value": raw.framework_id},
                      "acknowledge": {"agent_id": status["agent_id"],
                                      "task_id": status["task_id"], "uuid": status["uuid"]}})
        out.append(status)
    return out


def _wait(raw: RawScheduler, tid: str, state: str) -> dict:
    poll(lambda: any(s["state"] == state for s in _states(raw, tid)), 30, f"{tid} {state}")
    return next(s for s in _states(raw, tid) if s["state"] == state)


def test_default_executor_runs_the_group_and_honours_kill(raw):
    offer = _launch_group(raw, "dflt", {"writes": "echo hello > out.txt",
                                        "sleeps": "sleep 60"})
    for tid in ("writes", "sleeps"):
        _wait(raw, tid, "TASK_RUNNING")
    assert _states(raw, "writes")[0]["state"] == "TASK_STARTING"
    done = _wait(raw, "writes", "TASK_FINISHED")
    assert done["message"] == "Command exited with status 0"
    assert done["executor_id"] == {"value": "dflt"}
    # Its sandbox is the executor's tasks/<task id>.
    agent = next(a for a in get_json(f"http://{raw.address}/master/state")[
        "slaves"] if a["id"] == offer["agent_id"]["value"])
    state = get_json(f"http://127.0.0.1:{agent['port']}/state")
    directory = next(e["directory"] for f in state["frameworks"] for e in f["executors"]
                     if e["id"] == "dflt")
    assert (Path(directory) / "tasks" / "writes" / "out.txt").read_text() == "hello\n"
    assert raw.call({"type": "KILL", "framework_id": {"value": raw.framework_id},
                     "kill": {"task_id": {"value": "sleeps"}}})[0] == 202
    _wait(raw, "sleeps", "TASK_KILLED")
    assert "TASK_KILLING" in [s["state"] for s in _states(raw, "sleeps")]
    # No task left: the executor ends and the framework hears of it.
    raw.wait_event(lambda e: e["type"] == "FAILURE"
                   and e["failure"].get("executor_id") == {"value": "dflt"}, 30)


def test_a_failed_task_kills_the_rest_of_its_group(raw):
    _launch_group(raw, "dflt-fail", {"fails": "sleep 1; exit 3", "peer": "sleep 60"})
    failed = _wait(raw, "fails", "TASK_FAILED")
    assert failed["message"] == "Command exited with status 3"
    _wait(raw, "peer", "TASK_KILLED")


def test_shutdown_kills_the_group_and_leaves_no_process(raw, tmp_path):
    import os

    pid_file = tmp_path / "pid"
    offer = _launch_group(raw, "dflt-stop", {
        "stubborn": f"trap '' TERM; echo $$ > {pid_file}; while :; do sleep 0.1; done"})
    _wait(raw, "stubborn", "TASK_RUNNING")
    poll(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "the task's pid")
    assert raw.call({"type": "SHUTDOWN", "framework_id": {"value": raw.framework_id},
                     "shutdown": {"agent_id": offer["agent_id"],
                                  "executor_id": {"value": "dflt-stop"}}})[0] == 202
    _wait(raw, "stubborn", "TASK_KILLED")  # SIGTERM ignored: SIGKILL after the grace

    def gone() -> bool:
        # By its command line (which names pid_file): with the agents' pid namespaces
        # (issue 10) the pid the task wrote is its namespace's, not the host's.
        for entry in Path("/proc").iterdir():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if entry.name.isdigit() and int(entry.name) != os.getpid() \
                    and str(pid_file).encode() in cmdline and state != "Z":
                return False
        return True

    poll(gone, 15, "the task's process to be gone")
