"""TASK_KILLING for frameworks that can handle it, and HEARTBEAT events on executor streams.

Real Mesos: the built-in executors (src/launcher/executor.cpp and the docker/default
executors) send TASK_KILLING on the first KILL when the framework has the TASK_KILLING_STATE
capability; the agent only forwards KILL, so a custom executor sends its own (the fixture
executor does, like the built-in ones). Agents send HTTP executors a HEARTBEAT event every
DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL (slave/constants.hpp: 30 min; emulator knob
--executor-heartbeat-seconds shortens it here).
"""

from __future__ import annotations

import base64
import http.client
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.local.recordio import Decoder
from actors.stack import mesos
from actors.stack.context import StackContext, StackOptions
from actors.stack.process import stop

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))

from mesos_framework import EXECUTOR, SmallFramework, Spec, start_driver
from mesos_raw import RawScheduler, leader_address

CPUS = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]
KILLING = [{"type": "TASK_KILLING_STATE"}]


def _ack(raw: RawScheduler, status: dict) -> None:
    raw.call({"type": "ACKNOWLEDGE", "framework_id": {"value": raw.framework_id},
              "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"],
                              "uuid": status["uuid"]}})


def _statuses(raw: RawScheduler, tid: str, until: str,
              after: list[dict] | None = None) -> list[dict]:
    """The updates of ``tid`` not in ``after``, up to the first in state ``until``, each
    acknowledged (the agent sends a task's next update only once the last is acknowledged)."""
    after = after or []
    seen: list[dict] = list(after)

    def match(event: dict) -> bool:
        if event["type"] != "UPDATE":
            return False
        status = event["update"]["status"]
        if status["task_id"]["value"] != tid or any(
                s.get("uuid") == status.get("uuid") for s in seen):
            return False
        seen.append(status)
        if "uuid" in status:
            _ack(raw, status)
        return status["state"] == until

    raw.wait_event(match, 30)
    return seen[len(after):]


def _kill(raw: RawScheduler, tid: str) -> None:
    assert raw.call({"type": "KILL", "framework_id": {"value": raw.framework_id},
                     "kill": {"task_id": {"value": tid}}})[0] == 202


@pytest.mark.parametrize("capabilities", [KILLING, []], ids=["capable", "not-capable"])
def test_kill_sends_task_killing_only_to_capable_frameworks(stack, capabilities):
    raw = RawScheduler(leader_address(stack["mesos_masters"]), {
        "user": "nobody", "name": "killing", "failover_timeout": 0,
        "capabilities": capabilities})
    assert raw.status == 200
    try:
        offer = raw.wait_event(lambda e: e["type"] == "OFFERS", 15)["offers"]["offers"][0]
        data = base64.b64encode(json.dumps({"sleep": 60}).encode()).decode()
        command = {"task_id": {"value": "cmd"}, "agent_id": offer["agent_id"], "name": "cmd",
                   "resources": CPUS, "command": {"value": "sleep 60"}}
        custom = {"task_id": {"value": "custom"}, "agent_id": offer["agent_id"],
                  "name": "custom", "resources": CPUS, "data": data, "executor": {
                      "executor_id": {"value": "killing-exec"},
                      "command": {"value": f"{sys.executable} {EXECUTOR}"},
                      "resources": CPUS}}
        assert raw.call({"type": "ACCEPT", "framework_id": {"value": raw.framework_id},
                         "accept": {"offer_ids": [offer["id"]],
                                    "filters": {"refuse_seconds": 0},
                                    "operations": [{"type": "LAUNCH", "launch": {
                                        "task_infos": [command, custom]}}]}})[0] == 202
        before = {tid: _statuses(raw, tid, "TASK_RUNNING") for tid in ("cmd", "custom")}
        for tid in ("cmd", "custom"):
            _kill(raw, tid)
            _kill(raw, tid)  # a repeated KILL adds no second TASK_KILLING
        after = {tid: _statuses(raw, tid, "TASK_KILLED", before[tid])
                 for tid in ("cmd", "custom")}
        assert [s["state"] for s in before["cmd"]] == ["TASK_STARTING", "TASK_RUNNING"]
        assert [s["state"] for s in before["custom"]] == ["TASK_RUNNING"]
        for tid in ("cmd", "custom"):
            states = [s["state"] for s in after[tid]]
            if capabilities:
                assert states == ["TASK_KILLING", "TASK_KILLED"], tid
                killing = after[tid][0]
                # Sent by the executor, with no reason (task-state-reasons.md lists none).
                assert killing["source"] == "SOURCE_EXECUTOR" and "reason" not in killing
                assert "uuid" in killing  # a reliable update, acknowledged like the others
            else:
                assert states == ["TASK_KILLED"], tid
            assert after[tid][-1]["source"] == "SOURCE_EXECUTOR"
    finally:
        raw.call({"type": "TEARDOWN", "framework_id": {"value": raw.framework_id}})
        raw.close()


# -- executor heartbeats (a cluster of its own: the interval is an agent flag) ------------------
MASTER_FLAGS = ["--agent-timeout", "5", "--heartbeat-seconds", "2",
                "--allocation-interval", "0.5", "--zk-session-timeout", "2"]
AGENT_FLAGS = ["--update-retry", "1", "--executor-shutdown-grace", "1",
               "--executor-registration-timeout", "30", "--executor-heartbeat-seconds", "1"]


@pytest.fixture
def beating(stack, tmp_path) -> Iterator[dict]:
    ctx = StackContext(workdir=tmp_path / "beat",
                       options=StackOptions(masters=1, agents=1, start_timeout=60.0),
                       endpoints={"zookeeper": stack["zookeeper"]})
    try:
        yield mesos.start(ctx, zk_path=f"/mesos-beat-{uuid.uuid4().hex[:8]}", prefix="beat",
                          master_flags=MASTER_FLAGS, agent_flags=AGENT_FLAGS)
    finally:
        for record in reversed(ctx.records):
            stop(record)


def _executor_events(agent: str, framework_id: str, executor_id: str, count: int,
                     timeout: float) -> list[dict]:
    """SUBSCRIBE as the executor and read ``count`` events from its stream.

    ACCEPT's 202 only says the master took the call: the agent learns of the executor a moment
    later and answers 400 "Executor cannot be found" until then, so SUBSCRIBE is retried."""
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection(agent.removeprefix("http://"), timeout=timeout)
        conn.request("POST", "/api/v1/executor", body=json.dumps({
            "type": "SUBSCRIBE", "framework_id": {"value": framework_id},
            "executor_id": {"value": executor_id}, "subscribe": {}}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"})
        resp = conn.getresponse()
        if resp.status == 200:
            break
        body = resp.read().decode(errors="replace")
        conn.close()
        assert resp.status == 400 and "Executor cannot be found" in body, (resp.status, body)
        assert time.monotonic() < deadline, "the agent never learnt of the executor"
        time.sleep(0.1)
    try:
        decoder, events = Decoder(), []
        while len(events) < count:
            chunk = resp.read1(65536)
            assert chunk, f"stream ended after {[e['type'] for e in events]}"
            events.extend(json.loads(r) for r in decoder.feed(chunk))
        return events
    finally:
        conn.close()


def test_agent_sends_heartbeat_events_on_the_executor_stream(beating):
    raw = RawScheduler(leader_address(beating["mesos_masters"]), {
        "user": "nobody", "name": "beat", "failover_timeout": 0})
    try:
        offer = raw.wait_event(lambda e: e["type"] == "OFFERS", 15)["offers"]["offers"][0]
        # An executor that never subscribes by itself: the test subscribes in its place.
        task = {"task_id": {"value": "quiet"}, "agent_id": offer["agent_id"], "name": "quiet",
                "resources": CPUS, "executor": {"executor_id": {"value": "quiet-exec"},
                                                "command": {"value": "sleep 60"},
                                                "resources": CPUS}}
        assert raw.call({"type": "ACCEPT", "framework_id": {"value": raw.framework_id},
                         "accept": {"offer_ids": [offer["id"]], "operations": [
                             {"type": "LAUNCH", "launch": {"task_infos": [task]}}]}})[0] == 202
        events = _executor_events(beating["mesos_agents"][0], raw.framework_id, "quiet-exec",
                                  4, 15)
        assert [e["type"] for e in events] == ["SUBSCRIBED", "LAUNCH", "HEARTBEAT",
                                               "HEARTBEAT"]
        assert events[2] == {"type": "HEARTBEAT"}
    finally:
        raw.call({"type": "TEARDOWN", "framework_id": {"value": raw.framework_id}})
        raw.close()


def test_pymesos_executor_driver_ignores_heartbeats(beating, tmp_path):
    specs = [Spec("beat-custom", "custom", sleep=3.5)]  # several 1 s heartbeats meanwhile
    fw = SmallFramework(specs, tmp_path)
    driver = start_driver(fw, beating["mesos"], name="beat-pymesos")
    try:
        fw.wait(fw.all_terminal, 60, "the custom-executor task to end")
        assert fw.states("beat-custom") == ["TASK_RUNNING", "TASK_FINISHED"]
        assert fw.runs("beat-custom") == 1
        # The driver logged no unknown or malformed event (pymesos logs those to stderr).
        logs = list((tmp_path / "beat").rglob("executors/sleep-executor/runs/*/stderr"))
        assert logs
        text = "".join(p.read_text(errors="replace") for p in logs)
        assert text.count("executor event HEARTBEAT") >= 2, text  # they did reach it
        assert "Unknown" not in text and "Missing" not in text, text
    finally:
        driver.stop()
        driver.join()
