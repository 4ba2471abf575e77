"""The master's bookkeeping (pure): calls, offers, accounting, failover, agent loss."""

import pytest

from actors.local.master_core import CallError, MasterCore, SubscribeRefused
from actors.local.resources import Resources
from actors.local.tasks import make_status


def _core() -> MasterCore:
    core = MasterCore("M", {"id": "M", "pid": "master@127.0.0.1:5050"}, agent_timeout=10)
    core.elect(0)
    return core


def _register_agent(core: MasterCore, agent_id: str = "A", now: float = 0) -> None:
    core.register_agent({"url": "http://127.0.0.1:1", "agent_info": {
        "id": {"value": agent_id}, "hostname": "h", "port": 1,
        "resources": Resources.parse_flag("cpus:2;mem:1000").to_json(),
        "attributes": [{"name": "eos_account", "type": "TEXT", "text": {"value": "w1"}}]}},
        now)


def _subscribe(core: MasterCore, stream: str = "s1", **info) -> str:
    fw = core.subscribe({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "u", "name": "n", **info}}}, stream, 0)
    return fw.id


def _events(core: MasterCore, kind: str | None = None) -> list[dict]:
    out = [e.payload for e in core.outbox if e.kind == "event"
           and (kind is None or e.payload["type"] == kind)]
    return out


def _offer(core: MasterCore) -> dict:
    core.tick(0)
    return _events(core, "OFFERS")[-1]["offers"]["offers"][0]


def _task(tid: str, cpus: float, agent: str = "A") -> dict:
    return {"task_id": {"value": tid}, "agent_id": {"value": agent}, "name": tid,
            "command": {"value": "true"},
            "resources": Resources.parse_flag(f"cpus:{cpus};mem:10").to_json()}


def _accept(core, fw_id, offer_ids, tasks, stream="s1", refuse=None):
    accept = {"offer_ids": offer_ids, "operations": [
        {"type": "LAUNCH", "launch": {"task_infos": tasks}}]}
    if refuse is not None:
        accept["filters"] = {"refuse_seconds": refuse}
    core.handle_call({"type": "ACCEPT", "framework_id": {"value": fw_id}, "accept": accept},
                     stream, 0)


def test_subscribe_then_offer_then_launch_accounts_resources():
    core = _core()
    _register_agent(core)
    fw = _subscribe(core)
    assert _events(core, "SUBSCRIBED")[0]["subscribed"]["framework_id"]["value"] == fw
    offer = _offer(core)
    assert offer["attributes"][0]["text"]["value"] == "w1"
    core.outbox.clear()
    _accept(core, fw, [offer["id"]], [_task("t1", 0.5)], refuse=0)
    launches = [e for e in core.outbox if e.kind == "agent"]
    assert launches[0].path == "/internal/launch"
    agent = core.agents["A"]
    assert agent.used.get("cpus") == 0.5 and agent.offered.empty()
    # The unused 1.5 cpus are offered again at once (refuse_seconds 0).
    assert _offer(core)["resources"][0]["scalar"]["value"] == 1.5


def test_terminal_update_frees_and_ack_completes():
    core = _core()
    _register_agent(core)
    fw = _subscribe(core)
    _accept(core, fw, [_offer(core)["id"]], [_task("t1", 1)])
    done = make_status("t1", "TASK_FINISHED", agent_id="A")
    assert core.agent_update("A", fw, done, "TASK_FINISHED")
    assert core.agents["A"].used.get("cpus") == 0
    assert ("f", "t1") not in core.tasks and (fw, "t1") in core.tasks  # until acknowledged
    core.handle_call({"type": "ACKNOWLEDGE", "framework_id": {"value": fw}, "acknowledge": {
        "agent_id": {"value": "A"}, "task_id": {"value": "t1"}, "uuid": done["uuid"]}},
        "s1", 0)
    assert (fw, "t1") not in core.tasks
    assert core.metrics(1)["master/tasks_finished"] == 1


def test_overcommit_and_invalid_tasks_are_task_error_without_leak():
    core = _core()
    _register_agent(core)
    fw = _subscribe(core)
    offer = _offer(core)
    core.outbox.clear()
    bad = {"task_id": {"value": "both"}, "agent_id": {"value": "A"}, "name": "both",
           "command": {"value": "x"}, "executor": {"executor_id": {"value": "e"}},
           "resources": Resources.parse_flag("cpus:0.1").to_json()}
    _accept(core, fw, [offer["id"]], [_task("big", 5), bad, _task("ok", 1)], refuse=0)
    states = {e["update"]["status"]["task_id"]["value"]: e["update"]["status"]["state"]
              for e in _events(core, "UPDATE")}
    assert states == {"big": "TASK_ERROR", "both": "TASK_ERROR"}
    assert core.agents["A"].used.get("cpus") == 1
    assert core.agents["A"].available().get("cpus") == 1


def test_invalid_offer_gives_lost_or_dropped():
    core = _core()
    _register_agent(core)
    fw = _subscribe(core)
    offer = _offer(core)
    core.outbox.clear()
    _accept(core, fw, [{"value": "nope"}, offer["id"]], [_task("t", 0.1)])
    status = _events(core, "UPDATE")[0]["update"]["status"]
    assert status["state"] == "TASK_LOST" and status["reason"] == "REASON_INVALID_OFFERS"
    assert core.agents["A"].offered.empty() and not core.offers  # valid one recovered
    aware = _subscribe(core, "s2", capabilities=[{"type": "PARTITION_AWARE"}])
    core.outbox.clear()
    _accept(core, aware, [{"value": "nope"}], [_task("t", 0.1)], stream="s2")
    assert _events(core, "UPDATE")[0]["update"]["status"]["state"] == "TASK_DROPPED"


def test_call_validation():
    core = _core()
    fw = _subscribe(core)
    with pytest.raises(CallError) as err:
        core.handle_call({"type": "NOPE", "framework_id": {"value": fw}}, "s1", 0)
    assert err.value.status == 400
    with pytest.raises(CallError) as err:
        core.handle_call({"type": "REVIVE", "framework_id": {"value": fw}}, "other", 0)
    assert err.value.status == 400
    with pytest.raises(CallError) as err:
        core.handle_call({"type": "REVIVE", "framework_id": {"value": "x"}}, "s1", 0)
    assert err.value.status == 400  # unknown framework: "Framework cannot be found"
    core.disconnect(fw, "s1", 1)
    with pytest.raises(CallError) as err:
        core.handle_call({"type": "REVIVE", "framework_id": {"value": fw}}, "s1", 1)
    assert err.value.status == 403  # known but not subscribed
    with pytest.raises(CallError):
        core.handle_call([1, 2], "s1", 0)
    with pytest.raises(CallError):
        core.subscribe({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": 1}}},
                       "s9", 0)


def test_decline_filter_then_revive():
    core = _core()
    _register_agent(core)
    fw = _subscribe(core)
    offer = _offer(core)
    core.handle_call({"type": "DECLINE", "framework_id": {"value": fw}, "decline": {
        "offer_ids": [offer["id"]], "filters": {"refuse_seconds": 100}}}, "s1", 0)
    core.outbox.clear()
    core.agent_ping("A", 50)
    core.tick(50)
    assert not _events(core, "OFFERS")
    core.handle_call({"type": "REVIVE", "framework_id": {"value": fw}}, "s1", 50)
    core.tick(50)
    assert _events(core, "OFFERS")


def test_failover_within_timeout_keeps_tasks_and_past_it_kills():
    core = _core()
    _register_agent(core)
    fw = _subscribe(core, failover_timeout=10)
    _accept(core, fw, [_offer(core)["id"]], [_task("t1", 1)])
    core.disconnect(fw, "s1", now=100)
    core.agent_ping("A", 105)
    core.tick(105)
    assert (fw, "t1") in core.tasks
    core.subscribe({"type": "SUBSCRIBE", "framework_id": {"value": fw}, "subscribe": {
        "framework_info": {"user": "u", "name": "n", "failover_timeout": 1,
                           "id": {"value": fw}}}}, "s2", 106)
    assert core.frameworks[fw].stream_id == "s2"
    core.disconnect(fw, "s2", now=107)
    core.outbox.clear()
    core.agent_ping("A", 108.5)
    core.tick(108.5)
    assert fw not in core.frameworks and (fw, "t1") not in core.tasks
    assert [e.path for e in core.outbox if e.kind == "agent"] == [
        "/internal/shutdown_framework"]
    assert core.agents["A"].used.get("cpus") == 0
    with pytest.raises(CallError) as err:
        core.subscribe({"type": "SUBSCRIBE", "framework_id": {"value": fw},
                        "subscribe": {"framework_info": {"user": "u", "name": "n",
                                                         "id": {"value": fw}}}}, "s3", 109)
    assert isinstance(err.value, SubscribeRefused)  # 200 + ERROR event, as Mesos
    assert err.value.message == "Framework has been removed"


def test_agent_timeout_reports_lost_and_rescinds():
    core = _core()
    _register_agent(core)
    fw = _subscribe(core)
    aware = _subscribe(core, "s2", capabilities=[{"type": "PARTITION_AWARE"}])
    core.tick(0)
    offers = {e.target: e.payload for e in core.outbox if e.kind == "event"
              and e.payload["type"] == "OFFERS"}
    owner = next(iter(offers))
    offer = offers[owner]["offers"]["offers"][0]
    stream = "s1" if owner == fw else "s2"
    _accept(core, owner, [offer["id"]], [_task("t1", 0.5)], stream=stream, refuse=0)
    core.tick(1)
    core.outbox.clear()
    core.tick(20)  # no ping for 20 s > agent_timeout
    updates = _events(core, "UPDATE")
    assert updates[0]["update"]["status"]["state"] == (
        "TASK_UNREACHABLE" if owner == aware else "TASK_LOST")
    assert _events(core, "RESCIND") and _events(core, "FAILURE")
    assert "A" not in core.agents and not core.offers
    core.outbox.clear()
    core.handle_call({"type": "RECONCILE", "framework_id": {"value": owner}, "reconcile": {
        "tasks": [{"task_id": {"value": "t1"}}]}}, stream, 21)
    assert _events(core, "UPDATE")[0]["update"]["status"]["state"] in (
        "TASK_LOST", "TASK_UNREACHABLE")


def test_reconcile_waits_for_recovered_agents_after_election_then_answers():
    core = MasterCore("M2", {}, agent_reregister_timeout=5)
    core.elect(100, {"agents": [{"id": {"value": "A"}}], "unreachable": {}})
    fw = _subscribe(core)
    core.outbox.clear()
    call = {"type": "RECONCILE", "framework_id": {"value": fw},
            "reconcile": {"tasks": [{"task_id": {"value": "t9"}}]}}
    core.handle_call(call, "s1", 101)
    assert not _events(core, "UPDATE")  # agent A may still bring t9 back
    core.tick(106)  # A did not re-register in time: it is unreachable now
    core.handle_call(call, "s1", 106)
    assert _events(core, "UPDATE")[0]["update"]["status"]["state"] == "TASK_LOST"


def test_reregistration_restores_tasks_and_framework():
    core = _core()
    core.register_agent({"url": "http://x:1", "agent_info": {
        "id": {"value": "A"}, "resources": Resources.parse_flag("cpus:2").to_json()},
        "frameworks": [{"id": {"value": "F"}, "user": "u", "name": "n",
                        "failover_timeout": 5}],
        "tasks": [{"framework_id": "F", "state": "TASK_RUNNING", "executor_id": None,
                   "info": _task("t1", 1)}]}, 0)
    assert core.tasks[("F", "t1")].state == "TASK_RUNNING"
    assert core.agents["A"].used.get("cpus") == 1
    assert not core.frameworks["F"].connected
    core.agent_ping("A", 6)
    core.tick(6)  # an orphan: no failover timer until it subscribes and disconnects
    assert "F" in core.frameworks and core.agents["A"].used.get("cpus") == 1


def test_suppress_stops_offers_until_revive():
    core = _core()
    _register_agent(core)
    fw = _subscribe(core)
    core.handle_call({"type": "SUPPRESS", "framework_id": {"value": fw}}, "s1", 0)
    core.outbox.clear()
    core.tick(0)
    assert not _events(core, "OFFERS")
    # Suppressed is not inactive: Mesos keeps counting the framework active.
    assert core.metrics(0)["master/frameworks_active"] == 1
    core.handle_call({"type": "REVIVE", "framework_id": {"value": fw}}, "s1", 0)
    core.tick(0)
    assert _events(core, "OFFERS")


def test_second_subscription_replaces_the_first_stream():
    core = _core()
    _register_agent(core)
    fw = _subscribe(core, failover_timeout=60)
    _offer(core)
    assert core.offers
    core.outbox.clear()
    core.subscribe({"type": "SUBSCRIBE", "framework_id": {"value": fw}, "subscribe": {
        "framework_info": {"user": "u", "name": "n", "id": {"value": fw}}}}, "s2", 1)
    old = [e for e in core.outbox if e.stream == "s1"]
    assert [e.kind for e in old] == ["event", "close"]
    assert old[0].payload == {"type": "ERROR", "error": {"message": "Framework failed over"}}
    assert not core.offers  # outstanding offers of the old connection are recovered
    core.disconnect(fw, "s1", 2)  # the old stream ending later changes nothing
    assert core.frameworks[fw].connected


def test_agent_back_from_partition_gets_its_lost_tasks_back():
    core = _core()
    _register_agent(core)
    fw = _subscribe(core)
    _accept(core, fw, [_offer(core)["id"]], [_task("t1", 1)])
    core.tick(20)  # agent silent past its timeout: t1 reported TASK_LOST
    assert "A" not in core.agents
    answer = core.register_agent({"url": "http://x:1", "agent_info": {
        "id": {"value": "A"}, "resources": Resources.parse_flag("cpus:2").to_json()},
        "frameworks": [core.frameworks[fw].info],
        "tasks": [{"framework_id": fw, "state": "TASK_RUNNING", "executor_id": None,
                   "info": _task("t1", 1)}]}, 21)
    assert "kill_tasks" not in answer
    assert core.tasks[(fw, "t1")].state == "TASK_RUNNING"
    assert core.agents["A"].used.get("cpus") == 1
