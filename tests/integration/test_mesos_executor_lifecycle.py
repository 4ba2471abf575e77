"""Issue 12, executor lifecycle. A re-SUBSCRIBE carries what the executor still holds and
the agent acts on it as Slave::subscribe() does: its unacknowledged updates are taken, and a
task sent to it that it does not list (still STAGING) is TASK_DROPPED for a partition-aware
framework. An executor that cannot start fails its tasks."""

from __future__ import annotations

import base64
import http.client
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))

from mesos_framework import poll
from mesos_raw import RawScheduler, get_json, leader_address

from actors.local.recordio import Decoder

CPUS = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]


def _subscribe(agent: str, fw_id: str, exec_id: str, body: dict, count: int) -> list[dict]:
    """SUBSCRIBE as the executor (retried until the agent knows it); ``count`` events."""
    deadline = time.monotonic() + 15
    while True:
        conn = http.client.HTTPConnection(agent, timeout=15)
        conn.request("POST", "/api/v1/executor", body=json.dumps({
            "type": "SUBSCRIBE", "framework_id": {"value": fw_id},
            "executor_id": {"value": exec_id}, "subscribe": body}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"})
        resp = conn.getresponse()
        if resp.status == 200:
            break
        conn.close()
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


def test_executor_resubscription_honours_what_it_holds(stack):
    raw = RawScheduler(leader_address(stack["mesos_masters"]), {
        "user": "nobody", "name": "resubscribe", "capabilities": [
            {"type": "PARTITION_AWARE"}]})
    fid = raw.framework_id
    try:
        offer = raw.wait_event(lambda e: e["type"] == "OFFERS", 15)["offers"]["offers"][0]
        executor = {"executor_id": {"value": "held"}, "command": {"value": "sleep 60"},
                    "resources": CPUS}
        tasks = [{"task_id": {"value": tid}, "agent_id": offer["agent_id"], "name": tid,
                  "resources": CPUS, "executor": executor} for tid in ("kept", "missed")]
        assert raw.call({"type": "ACCEPT", "framework_id": {"value": fid}, "accept": {
            "offer_ids": [offer["id"]], "operations": [
                {"type": "LAUNCH", "launch": {"task_infos": tasks}}]}})[0] == 202
        agent = next(a for a in get_json(f"http://{raw.address}/master/state")["slaves"]
                     if a["id"] == offer["agent_id"]["value"])
        address = f"127.0.0.1:{agent['port']}"
        # First subscription: both tasks are delivered (the test stands in for the executor).
        events = _subscribe(address, fid, "held", {}, 3)
        assert [e["type"] for e in events] == ["SUBSCRIBED", "LAUNCH", "LAUNCH"]
        # It "lost" the connection before reporting; it comes back holding one task and an
        # update for it that the agent never received.
        running = {"task_id": {"value": "kept"}, "state": "TASK_RUNNING",
                   "source": "SOURCE_EXECUTOR",
                   "uuid": base64.b64encode(uuid.uuid4().bytes).decode()}
        _subscribe(address, fid, "held", {
            "unacknowledged_tasks": [tasks[0]],
            "unacknowledged_updates": [{"status": running}]}, 1)

        def last(tid: str) -> dict | None:
            found = [e["update"]["status"] for e in list(raw.events) if e["type"] == "UPDATE"
                     and e["update"]["status"]["task_id"]["value"] == tid]
            return found[-1] if found else None

        poll(lambda: last("kept") is not None and last("missed") is not None, 15,
             "both tasks to be reported")
        assert last("kept")["state"] == "TASK_RUNNING"
        assert last("kept")["uuid"] == running["uuid"]
        missed = last("missed")
        assert (missed["state"], missed["reason"], missed["source"]) == (
            "TASK_DROPPED", "REASON_AGENT_RESTARTED", "SOURCE_AGENT")
    finally:
        raw.call({"type": "TEARDOWN", "framework_id": {"value": fid}})
        raw.close()


def test_an_executor_that_cannot_start_fails_its_tasks(stack):
    """slave.cpp executorLaunched() (~6990-7010): TASK_FAILED, REASON_CONTAINER_LAUNCH_FAILED,
    "Failed to launch container: ...", and the framework hears the executor is gone (before,
    the task stayed TASK_STAGING for ever)."""
    raw = RawScheduler(leader_address(stack["mesos_masters"]), {
        "user": "nobody", "name": "cannot-start"})
    fid = raw.framework_id
    try:
        offer = raw.wait_event(lambda e: e["type"] == "OFFERS", 15)["offers"]["offers"][0]
        executor = {"executor_id": {"value": "absent"}, "resources": CPUS, "command": {
            "shell": False, "value": "/nonexistent/executor", "arguments": ["executor"]}}
        task = {"task_id": {"value": "orphan"}, "agent_id": offer["agent_id"],
                "name": "orphan", "resources": CPUS, "executor": executor}
        assert raw.call({"type": "ACCEPT", "framework_id": {"value": fid}, "accept": {
            "offer_ids": [offer["id"]], "operations": [
                {"type": "LAUNCH", "launch": {"task_infos": [task]}}]}})[0] == 202
        status = raw.wait_event(lambda e: e["type"] == "UPDATE", 15)["update"]["status"]
        assert (status["state"], status["reason"], status["source"]) == (
            "TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED", "SOURCE_AGENT")
        assert status["message"].startswith("Failed to launch container: ")
        raw.wait_event(lambda e: e["type"] == "FAILURE"
                       and e["failure"].get("executor_id") == {"value": "absent"}, 15)
    finally:
        raw.call({"type": "TEARDOWN", "framework_id": {"value": fid}})
        raw.close()


def test_killing_a_task_of_an_undelivered_group_kills_the_whole_group(stack):
    """slave.cpp killTask() (~4197-4240): a task group not yet sent to its executor ends at
    once, every task TASK_KILLED / REASON_TASK_KILLED_DURING_LAUNCH."""
    raw = RawScheduler(leader_address(stack["mesos_masters"]), {
        "user": "nobody", "name": "undelivered"})
    fid = raw.framework_id
    try:
        offer = raw.wait_event(lambda e: e["type"] == "OFFERS", 15)["offers"]["offers"][0]
        executor = {"executor_id": {"value": "mute"}, "type": "CUSTOM",
                    "command": {"value": "sleep 60"},  # never subscribes
                    "resources": [{"name": n, "type": "SCALAR", "scalar": {"value": v}}
                                  for n, v in (("cpus", 0.1), ("mem", 32), ("disk", 1))]}
        group = [{"task_id": {"value": tid}, "agent_id": offer["agent_id"], "name": tid,
                  "resources": CPUS} for tid in ("g-a", "g-b")]
        assert raw.call({"type": "ACCEPT", "framework_id": {"value": fid}, "accept": {
            "offer_ids": [offer["id"]], "operations": [{"type": "LAUNCH_GROUP", "launch_group": {
                "executor": executor, "task_group": {"tasks": group}}}]}})[0] == 202
        time.sleep(0.5)  # the agent has the group queued for the executor
        assert raw.call({"type": "KILL", "framework_id": {"value": fid},
                         "kill": {"task_id": {"value": "g-a"}}})[0] == 202
        for tid in ("g-a", "g-b"):
            status = raw.wait_event(lambda e, t=tid: e["type"] == "UPDATE" and e["update"][
                "status"]["task_id"]["value"] == t, 15)["update"]["status"]
            assert (status["state"], status["reason"], status["source"]) == (
                "TASK_KILLED", "REASON_TASK_KILLED_DURING_LAUNCH", "SOURCE_AGENT")
    finally:
        raw.call({"type": "TEARDOWN", "framework_id": {"value": fid}})
        raw.close()
