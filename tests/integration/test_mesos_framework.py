"""Must-show 1 and the bad-input rules, on the session stack's Mesos emulator."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from actors.names import numbered_account

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))

from mesos_framework import SmallFramework, Spec, poll, start_driver
from mesos_raw import RawScheduler, get_json, leader_address, post

FW_INFO = {"user": "nobody", "name": "raw-test", "failover_timeout": 0}


def test_hundred_tasks_finish_and_every_update_is_acknowledged(stack, tmp_path):
    specs = [Spec(f"cmd-{i}", "command") for i in range(50)]
    specs += [Spec(f"exe-{i}", "custom") for i in range(50)]
    fw = SmallFramework(specs, tmp_path)
    driver = start_driver(fw, stack["mesos"], name="must-show-1")
    try:
        fw.wait(fw.all_terminal, 120, "100 tasks to end")
        fw_id = fw.framework_id
        for spec in specs:
            states = fw.states(spec.task_id)
            if spec.kind == "command":
                assert states == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"], spec
            else:
                assert states == ["TASK_RUNNING", "TASK_FINISHED"], spec
            # Ran exactly once, with the MESOS_* environment (command tasks log their
            # MESOS_EXECUTOR_ID, which for the command executor is the task id).
            assert fw.runs(spec.task_id) == 1
            assert (tmp_path / spec.task_id).read_text().strip() == spec.task_id
            assert all("uuid" in u for u in fw.updates[spec.task_id])
        # Every update acknowledged: the agents hold none and the master completed every task.
        agents = stack["mesos_agents"]
        poll(lambda: all(get_json(f"{a}/state")["unacknowledged_updates"] == 0
                          for a in agents), 30, "agents to hold no unacknowledged update")
        leader = leader_address(stack["mesos_masters"])

        def master_done() -> bool:
            state = get_json(f"http://{leader}/master/state")
            mine = [f for f in state["frameworks"] if f["id"] == fw_id]
            return bool(mine) and not mine[0]["tasks"]

        poll(master_done, 30, "the master to complete all tasks")
        # The custom executor ran as a real subprocess in a sandbox of its own.
        sandboxes = [e["directory"] for a in agents
                     for f in get_json(f"{a}/state")["frameworks"] if f["id"] == fw_id
                     for e in f["executors"]]
        assert sandboxes and all("/executors/sleep-executor/runs/" in s for s in sandboxes)
    finally:
        driver.stop()
        driver.join()


@pytest.fixture
def raw(stack):
    leader = leader_address(stack["mesos_masters"])
    sub = RawScheduler(leader, dict(FW_INFO))
    assert sub.status == 200
    yield sub
    sub.call({"type": "TEARDOWN", "framework_id": {"value": sub.framework_id}})
    sub.close()


def _offer(raw: RawScheduler) -> dict:
    event = raw.wait_event(lambda e: e["type"] == "OFFERS", 15)
    return event["offers"]["offers"][0]


def _task(offer: dict, tid: str, cpus: float) -> dict:
    return {"task_id": {"value": tid}, "agent_id": offer["agent_id"], "name": tid,
            "command": {"value": "true"},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}}]}


def _accept(raw: RawScheduler, offer_ids: list[dict], tasks: list[dict]) -> tuple[int, str]:
    return raw.call({"type": "ACCEPT", "framework_id": {"value": raw.framework_id},
                     "accept": {"offer_ids": offer_ids, "filters": {"refuse_seconds": 0},
                                "operations": [{"type": "LAUNCH",
                                                "launch": {"task_infos": tasks}}]}})


def _update_for(raw: RawScheduler, tid: str) -> dict:
    event = raw.wait_event(lambda e: e["type"] == "UPDATE"
                           and e["update"]["status"]["task_id"]["value"] == tid, 15)
    return event["update"]["status"]


def test_malformed_and_misaddressed_calls_get_4xx(stack, raw):
    leader = raw.address
    fid = {"value": raw.framework_id}
    assert post(leader, b"{not json")[0] == 400
    assert post(leader, b"{}", content_type="text/plain")[0] == 415
    assert post(leader, {"type": "SUBSCRIBE", "subscribe": {}})[0] == 400
    assert raw.call({"type": "EXPLODE", "framework_id": fid})[0] == 400
    assert raw.call({"type": "REVIVE"})[0] == 400  # no framework_id
    assert raw.call({"type": "REVIVE", "framework_id": fid}, stream_id="wrong")[0] == 400
    assert raw.call({"type": "REVIVE", "framework_id": fid}, stream_id=None)[0] == 400
    # Mesos: 400 "Framework cannot be found" for an id it never saw.
    assert raw.call({"type": "REVIVE", "framework_id": {"value": "nobody-F1"}})[0] == 400
    assert raw.call({"type": "ACCEPT", "framework_id": fid, "accept": {}})[0] == 400
    assert raw.call({"type": "REVIVE", "framework_id": fid})[0] == 202
    # A master that does not lead redirects to the one that does.
    others = [m for m in stack["mesos_masters"] if not m.endswith(leader)]
    assert others, "needs a non-leading master: a stack with 2+ masters (stack up --masters 3)"
    for other in others:
        status, _text, headers = post(other.removeprefix("http://"), {"type": "SUBSCRIBE"})
        assert status == 307 and headers["location"] == f"//{leader}/api/v1/scheduler"


def test_unknown_or_used_offer_gives_lost_or_dropped(stack, raw):
    offer = _offer(raw)
    assert _accept(raw, [{"value": "no-such-offer"}], [_task(offer, "ghost", 0.1)])[0] == 202
    status = _update_for(raw, "ghost")
    assert status["state"] == "TASK_LOST" and status["reason"] == "REASON_INVALID_OFFERS"
    assert "uuid" not in status  # master-generated: nothing to acknowledge
    assert _accept(raw, [offer["id"]], [])[0] == 202  # no operations: the offer is declined
    assert _accept(raw, [offer["id"]], [_task(offer, "twice", 0.1)])[0] == 202
    assert _update_for(raw, "twice")["state"] == "TASK_LOST"
    # A partition-aware framework is told TASK_DROPPED instead.
    aware = RawScheduler(raw.address, {**FW_INFO, "name": "raw-aware",
                                       "capabilities": [{"type": "PARTITION_AWARE"}]})
    try:
        assert _accept(aware, [{"value": "gone"}], [_task(offer, "drop", 0.1)])[0] == 202
        assert _update_for(aware, "drop")["state"] == "TASK_DROPPED"
    finally:
        aware.call({"type": "TEARDOWN", "framework_id": {"value": aware.framework_id}})
        aware.close()


def test_overcommit_is_task_error_and_leaks_nothing(stack, raw):
    offer = _offer(raw)
    cpus = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus")
    tasks = [_task(offer, "fits", 0.1), _task(offer, "too-big", cpus * 10),
             {"task_id": {"value": "no-command"}, "agent_id": offer["agent_id"],
              "name": "no-command",
              "resources": offer["resources"][:1]}]
    assert _accept(raw, [offer["id"]], tasks)[0] == 202
    assert _update_for(raw, "too-big")["state"] == "TASK_ERROR"
    assert _update_for(raw, "no-command")["state"] == "TASK_ERROR"
    running = _update_for(raw, "fits")
    assert running["state"] == "TASK_STARTING"
    # The refused and the unused resources come back: the agent is offered again in full
    # once "fits" ends (each update acknowledged so the task completes).
    agent = offer["agent_id"]["value"]
    for state in ("TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"):
        status = raw.wait_event(lambda e, s=state: e["type"] == "UPDATE"
                                and e["update"]["status"]["state"] == s
                                and e["update"]["status"]["task_id"]["value"] == "fits", 15)
        status = status["update"]["status"]
        assert raw.call({"type": "ACKNOWLEDGE", "framework_id": {"value": raw.framework_id},
                         "acknowledge": {"agent_id": status["agent_id"],
                                         "task_id": status["task_id"],
                                         "uuid": status["uuid"]}})[0] == 202
    raw.call({"type": "REVIVE", "framework_id": {"value": raw.framework_id}})

    def full_offer(event: dict) -> bool:
        return event["type"] == "OFFERS" and any(
            o["agent_id"]["value"] == agent and sum(
                r["scalar"]["value"] for r in o["resources"] if r["name"] == "cpus")
            >= cpus - 1e-6 for o in event["offers"]["offers"])

    raw.wait_event(full_offer, 20)
    state = get_json(f"http://{raw.address}/master/state")
    mine = next(f for f in state["frameworks"] if f["id"] == raw.framework_id)
    assert mine["tasks"] == []


def test_state_metrics_and_health_endpoints(stack):
    leader = leader_address(stack["mesos_masters"])
    state = get_json(f"http://{leader}/master/state")
    assert state["leader"] == f"master@{leader}"
    accounts = {s["attributes"]["eos_account"] for s in state["slaves"]}
    agents = len(stack["mesos_agents"])
    assert {numbered_account("worker", i + 1) for i in range(agents)} <= accounts
    assert all(s["resources"]["cpus"] > 0 and "ports" in s["resources"]
               for s in state["slaves"])
    metrics = get_json(f"http://{leader}/metrics/snapshot")
    assert metrics["master/elected"] == 1.0
    assert metrics["master/slaves_active"] >= len(stack["mesos_agents"])
    for name in ("master/tasks_running", "master/tasks_finished", "master/tasks_lost",
                 "master/frameworks_active", "master/outstanding_offers", "master/cpus_total"):
        assert name in metrics
    for master in stack["mesos_masters"]:
        assert post(master.removeprefix("http://"), b"", path="/nope")[0] == 404
    agent = get_json(f"{stack['mesos_agents'][0]}/state")
    assert agent["attributes"]["eos_account"] == "worker1"


def _ack(raw: RawScheduler, status: dict) -> None:
    assert raw.call({"type": "ACKNOWLEDGE", "framework_id": {"value": raw.framework_id},
                     "acknowledge": {"agent_id": status["agent_id"],
                                     "task_id": status["task_id"],
                                     "uuid": status["uuid"]}})[0] == 202


def _wait_state(raw: RawScheduler, tid: str, state: str, ack: bool = True) -> dict:
    """Wait for ``tid`` to reach ``state``, acknowledging every update seen on the way."""
    acked: set[str] = set()

    def match(event: dict) -> bool:
        if event["type"] != "UPDATE":
            return False
        status = event["update"]["status"]
        if status["task_id"]["value"] != tid:
            return False
        if ack and "uuid" in status and status["uuid"] not in acked:
            acked.add(status["uuid"])
            _ack(raw, status)
        return status["state"] == state

    return raw.wait_event(match, 30)["update"]["status"]


def _executor_info() -> dict:
    from mesos_framework import EXECUTOR  # the fixture executor script

    # A task group's executor needs a type, cpus >= 0.01, mem >= 32 MB and disk, as in Mesos.
    return {"executor_id": {"value": "raw-exec"}, "name": "raw", "type": "CUSTOM",
            "command": {"value": f"{sys.executable} {EXECUTOR}"},
            "resources": [{"name": name, "type": "SCALAR", "scalar": {"value": value}}
                          for name, value in (("cpus", 0.1), ("mem", 32), ("disk", 10))]}


def test_launch_group_kill_message_and_shutdown(stack, raw):
    import base64
    import json

    offer = _offer(raw)
    fid = {"value": raw.framework_id}
    data = base64.b64encode(json.dumps({"sleep": 60}).encode()).decode()
    group = [{**_task(offer, f"g{i}", 0.1), "data": data} for i in range(2)]
    for task in group:
        del task["command"]
    long_cmd = {**_task(offer, "long-cmd", 0.1), "command": {"value": "sleep 60"}}
    assert raw.call({"type": "ACCEPT", "framework_id": fid, "accept": {
        "offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0},
        "operations": [
            {"type": "LAUNCH_GROUP", "launch_group": {
                "executor": _executor_info(), "task_group": {"tasks": group}}},
            {"type": "LAUNCH", "launch": {"task_infos": [long_cmd]}}]}})[0] == 202
    for tid in ("g0", "g1", "long-cmd"):
        _wait_state(raw, tid, "TASK_RUNNING")
    # MESSAGE: scheduler -> executor, which echoes it back: executor -> scheduler.
    payload = base64.b64encode(b"ping").decode()
    assert raw.call({"type": "MESSAGE", "framework_id": fid, "message": {
        "agent_id": offer["agent_id"], "executor_id": {"value": "raw-exec"},
        "data": payload}})[0] == 202
    echoed = raw.wait_event(lambda e: e["type"] == "MESSAGE", 15)["message"]
    assert echoed["data"] == payload and echoed["executor_id"] == {"value": "raw-exec"}
    # Reconciliation, explicit and implicit: the master's view of the running tasks.
    assert raw.call({"type": "RECONCILE", "framework_id": fid, "reconcile": {
        "tasks": [{"task_id": {"value": "g1"}}]}})[0] == 202
    assert raw.call({"type": "RECONCILE", "framework_id": fid, "reconcile": {}})[0] == 202
    poll(lambda: len([e for e in list(raw.events) if e["type"] == "UPDATE" and e["update"][
        "status"].get("reason") == "REASON_RECONCILIATION"]) >= 4, 15, "reconciliation")
    answers = [e["update"]["status"] for e in list(raw.events) if e["type"] == "UPDATE"
               and e["update"]["status"].get("reason") == "REASON_RECONCILIATION"]
    assert sorted(a["task_id"]["value"] for a in answers) == ["g0", "g1", "g1", "long-cmd"]
    assert {a["state"] for a in answers} == {"TASK_RUNNING"}
    assert all("uuid" not in a for a in answers)
    # KILL a custom-executor task and a command task.
    for tid in ("g0", "long-cmd"):
        assert raw.call({"type": "KILL", "framework_id": fid,
                         "kill": {"task_id": {"value": tid}}})[0] == 202
        _wait_state(raw, tid, "TASK_KILLED")
    # SHUTDOWN the executor: its remaining task, left without a terminal update of its own,
    # fails as the Mesos agent reports it, and the framework hears of the exit.
    assert raw.call({"type": "SHUTDOWN", "framework_id": fid, "shutdown": {
        "agent_id": offer["agent_id"], "executor_id": {"value": "raw-exec"}}})[0] == 202
    last = _wait_state(raw, "g1", "TASK_FAILED")
    assert last["agent_id"] == offer["agent_id"]
    assert (last["source"], last["reason"], last["message"]) == (
        "SOURCE_AGENT", "REASON_EXECUTOR_TERMINATED", "Executor terminated")
    failure = raw.wait_event(lambda e: e["type"] == "FAILURE"
                             and "executor_id" in e["failure"], 30)["failure"]
    assert failure["executor_id"] == {"value": "raw-exec"}
