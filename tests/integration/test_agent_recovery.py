"""Agent recovery (issue 10): an agent SIGKILLed and restarted with the same work folder while
a checkpointing framework's tasks run; the tasks keep running and finish, and each update
reaches the framework (pymesos's unmodified driver) exactly once."""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

from actors.stack import mesos
from actors.stack.context import StackContext, StackOptions
from actors.stack.process import is_running, stop
from tests.fixtures.mesos_framework import EXECUTOR, poll
from tests.fixtures.mesos_raw import get_json
from tests.fixtures.mesos_tasks import TaskFramework, run_framework, scalar


def _tasks(markers: Path, seconds: float) -> list[dict]:
    tasks = []
    for i in range(2):
        tid = f"cmd-{i}"
        tasks.append({"task_id": {"value": tid}, "name": tid,
                      "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
                      "command": {"value": f"echo run >> {markers / tid}; sleep {seconds}"}})
    for i in range(2):
        tid = f"exe-{i}"
        data = json.dumps({"sleep": seconds, "marker": str(markers / tid)}).encode()
        tasks.append({"task_id": {"value": tid}, "name": tid,
                      "resources": [scalar("cpus", 0.1), scalar("mem", 16)],
                      "data": base64.b64encode(data).decode(),
                      "executor": {"executor_id": {"value": "sleep-executor"},
                                   "name": "sleep executor",
                                   "command": {"value": f"{sys.executable} {EXECUTOR}"},
                                   "resources": [scalar("cpus", 0.1), scalar("mem", 64)]}})
    return tasks


def test_agent_killed_and_restarted_keeps_checkpointed_tasks(stack, tmp_path):
    ctx = StackContext(workdir=tmp_path / "mini",
                       options=StackOptions(masters=1, agents=1, start_timeout=60.0),
                       endpoints={"zookeeper": stack["zookeeper"]})
    markers = tmp_path / "markers"
    markers.mkdir()
    try:
        found = mesos.start(ctx, zk_path=f"/mesos-recover-{uuid.uuid4().hex[:8]}",
                            prefix="recover")
        agent_url = found["mesos_agents"][0]
        agent_id = get_json(f"{agent_url}/state")["id"]
        tasks = _tasks(markers, seconds=10)
        framework = TaskFramework(tasks)
        driver = run_framework(framework, str(found["mesos"]), "cj-recover", checkpoint=True)
        # A framework without checkpoint: its container does not survive the agent's restart.
        beat = tmp_path / "beat"
        plain = TaskFramework([{"task_id": {"value": "plain"}, "name": "plain",
                                "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
                                "command": {"value": f"while :; do date +%s%N >> {beat}; "
                                                     "sleep 0.2; done"}}])
        plain_driver = run_framework(plain, str(found["mesos"]), "cj-no-checkpoint")
        try:
            plain.wait_state("plain", "TASK_RUNNING", 60)
            for task in tasks:
                framework.wait_state(task["task_id"]["value"], "TASK_RUNNING", 60)
            # Acknowledgements settled first: one still in flight when the agent dies is lost
            # with it, and the update is then delivered again (Mesos's at-least-once).
            poll(lambda: get_json(f"{agent_url}/state")["unacknowledged_updates"] == 0, 30,
                 "the RUNNING updates to be acknowledged")
            record = next(r for r in ctx.records if r.name == "recover-agent-1")
            argv = Path(f"/proc/{record.pid}/cmdline").read_bytes().split(b"\0")[:-1]
            os.kill(record.pid, signal.SIGKILL)  # the agent only: its containers live on
            poll(lambda: not is_running(record), 10, "the agent to die")
            time.sleep(1.0)
            ctx.spawn("recover-agent-1-again", [a.decode() for a in argv])
            poll(lambda: _answers(agent_url), 30, "the restarted agent")
            assert get_json(f"{agent_url}/state")["id"] == agent_id  # same agent, recovered
            ends = {t["task_id"]["value"]: framework.terminal(t["task_id"]["value"], 90)
                    for t in tasks}
            beats = beat.read_text().count("\n")
            time.sleep(1.0)
            assert beat.read_text().count("\n") == beats  # destroyed at recovery
        finally:
            driver.stop()
            driver.join()
            plain_driver.stop()
            plain_driver.join()
        for tid, status in ends.items():
            assert status["state"] == "TASK_FINISHED", (tid, status)
            states = framework.states(tid)
            assert len(states) == len(set(states)), (tid, states)  # each update once
            assert states[-2:] == ["TASK_RUNNING", "TASK_FINISHED"], (tid, states)
            assert (markers / tid).read_text().count("\n") == 1, tid  # never run twice
    finally:
        for record in reversed(ctx.records):
            stop(record)


def _answers(url: str) -> bool:
    try:
        get_json(f"{url}/state")
        return True
    except OSError:
        return False
