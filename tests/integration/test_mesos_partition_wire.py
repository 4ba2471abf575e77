"""Issue 12 through the wire: an agent back from a partition, and reconciliation after a
master failover answered from the registry the masters keep in ZooKeeper.

Each test runs a private mini-cluster (the ``mini`` fixture of test_mesos_failover.py).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from test_mesos_failover import mini  # noqa: F401  (the fixture)

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))

from mesos_framework import poll
from mesos_raw import RawScheduler, get_json, leader_address

AWARE = [{"type": "PARTITION_AWARE"}]


def _status(event: dict) -> dict:
    return event["update"]["status"] if event["type"] == "UPDATE" else {}


def _acking(raw: RawScheduler, match):
    """``match`` that also acknowledges (once) every update it is shown, as a framework must
    for the agent to send the next one."""
    acked: set[str] = set()

    def check(event: dict) -> bool:
        status = _status(event)
        if "uuid" in status and status["uuid"] not in acked:
            acked.add(status["uuid"])
            threading.Thread(target=raw.call, args=({
                "type": "ACKNOWLEDGE", "framework_id": {"value": raw.framework_id},
                "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"],
                                "uuid": status["uuid"]}},), daemon=True).start()
        return match(event)

    return check


def _launch_sleep(raw: RawScheduler, tid: str) -> dict:
    """Launch ``sleep 60`` on the first offer; returns the TASK_RUNNING status."""
    fid = {"value": raw.framework_id}
    offer = raw.wait_event(lambda e: e["type"] == "OFFERS", 15)["offers"]["offers"][0]
    task = {"task_id": {"value": tid}, "agent_id": offer["agent_id"], "name": tid,
            "command": {"value": "sleep 60"},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]}
    assert raw.call({"type": "ACCEPT", "framework_id": fid, "accept": {
        "offer_ids": [offer["id"]], "operations": [
            {"type": "LAUNCH", "launch": {"task_infos": [task]}}]}})[0] == 202
    return _status(raw.wait_event(
        _acking(raw, lambda e: _status(e).get("state") == "TASK_RUNNING"), 20))


def _record(mini, name: str):  # noqa: F811
    return next(r for r in mini.ctx.records if r.name == name)


@pytest.mark.parametrize("mini", [(1, 1)], indirect=True)
def test_agent_back_from_partition_reannounces_its_tasks(mini):  # noqa: F811
    plain = RawScheduler(mini.leader(), {"user": "nobody", "name": "plain"})
    aware = RawScheduler(mini.leader(), {"user": "nobody", "name": "aware",
                                         "capabilities": AWARE})
    agent = _record(mini, "mini-agent-1")
    try:
        for raw in (plain, aware):
            _launch_sleep(raw, f"{raw.framework_id}-t")
        os.kill(agent.pid, signal.SIGSTOP)  # a partition: the agent stops answering
        try:
            for raw, state in ((plain, "TASK_LOST"), (aware, "TASK_UNREACHABLE")):
                raw.wait_event(lambda e, s=state: _status(e).get("state") == s, 20)
        finally:
            os.kill(agent.pid, signal.SIGCONT)
        for raw in (plain, aware):
            back = _status(raw.wait_event(
                lambda e: _status(e).get("reason") == "REASON_AGENT_REREGISTERED", 20))
            assert back["state"] == "TASK_RUNNING"
            assert back["message"] == "Unreachable agent re-reregistered"
        state = get_json(f"http://{mini.leader()}/master/state")
        running = {t["id"]: t["state"] for f in state["frameworks"] for t in f["tasks"]}
        assert running == {f"{plain.framework_id}-t": "TASK_RUNNING",
                           f"{aware.framework_id}-t": "TASK_RUNNING"}
    finally:
        for raw in (plain, aware):
            raw.call({"type": "TEARDOWN", "framework_id": {"value": raw.framework_id}})
            raw.close()


@pytest.mark.parametrize("mini", [(2, 2)], indirect=True)
def test_reconcile_after_failover_knows_unreachable_agents(mini):  # noqa: F811
    leader = mini.leader()
    slaves = get_json(f"http://{leader}/master/state")["slaves"]
    by_url = {f"http://127.0.0.1:{s['port']}": s["id"] for s in slaves}
    gone = by_url[mini.agents[1]]
    mini.kill("mini-agent-2")
    poll(lambda: get_json(f"http://{leader}/master/state")["unreachable_slaves"] == 1, 20,
         "the agent to be marked unreachable")
    mini.crash_master(leader)
    poll(lambda: _new_leader(mini, leader), 45, "a new leader")
    new = mini.leader()
    raw = RawScheduler(new, {"user": "nobody", "name": "after", "capabilities": AWARE})
    fid = {"value": raw.framework_id}
    try:
        assert raw.call({"type": "RECONCILE", "framework_id": fid, "reconcile": {"tasks": [
            {"task_id": {"value": "t"}, "agent_id": {"value": gone}}]}})[0] == 202
        status = _status(raw.wait_event(lambda e: e["type"] == "UPDATE", 10))
        assert status["state"] == "TASK_UNREACHABLE"
        assert status["reason"] == "REASON_RECONCILIATION"
        assert status["unreachable_time"]["nanoseconds"] > 0
        # The registry also carries the live agent: once back, a task unknown on it is gone.
        live = by_url[mini.agents[0]]
        poll(lambda: live in {s["id"] for s in get_json(f"http://{new}/master/state")[
            "slaves"]}, 20, "the live agent to re-register")
        raw.events.clear()
        raw.call({"type": "RECONCILE", "framework_id": fid, "reconcile": {"tasks": [
            {"task_id": {"value": "t"}, "agent_id": {"value": live}}]}})
        assert _status(raw.wait_event(lambda e: e["type"] == "UPDATE", 10))["state"] == \
            "TASK_GONE"
    finally:
        raw.call({"type": "TEARDOWN", "framework_id": fid})
        raw.close()


def _new_leader(mini, old: str) -> bool:  # noqa: F811
    try:
        return mini.leader() != old
    except (AssertionError, OSError):
        return False


def test_resubscription_makes_the_agent_resend_pending_updates_at_once(stack):
    """master.cpp sendFrameworkUpdates() -> slave.cpp updateFramework() -> the status update
    manager's resume(): pending updates go again at once instead of at the next backoff step
    (10 s, then 20 s, ... as the stack's agents retry)."""
    info = {"user": "nobody", "name": "resend-at-once", "failover_timeout": 60}
    first = RawScheduler(leader_address(stack["mesos_masters"]), info)
    fid = first.framework_id
    second = None
    try:
        offer = first.wait_event(lambda e: e["type"] == "OFFERS", 15)["offers"]["offers"][0]
        task = {"task_id": {"value": "unacked"}, "agent_id": offer["agent_id"],
                "name": "unacked", "command": {"value": "sleep 60"},
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]}
        assert first.call({"type": "ACCEPT", "framework_id": {"value": fid}, "accept": {
            "offer_ids": [offer["id"]], "operations": [
                {"type": "LAUNCH", "launch": {"task_infos": [task]}}]}})[0] == 202

        def starting(raw: RawScheduler) -> list[dict]:
            return [_status(e) for e in list(raw.events)
                    if _status(e).get("state") == "TASK_STARTING"]

        # Never acknowledged: the agent resends it after 10 s (the first backoff step) ...
        poll(lambda: len(starting(first)) >= 2, 20, "the first resend")
        first.close()
        began = time.monotonic()
        second = RawScheduler(first.address, {**info, "id": {"value": fid}})
        # ... and at once when the framework re-subscribes, not 20 s later.
        poll(lambda: starting(second), 5, "the resend on re-subscription")
        assert time.monotonic() - began < 5
        assert starting(second)[0]["uuid"] == starting(first)[0]["uuid"]
    finally:
        closer = second or first
        closer.call({"type": "TEARDOWN", "framework_id": {"value": fid}})
        closer.close()
