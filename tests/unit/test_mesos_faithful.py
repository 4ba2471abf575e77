"""Review findings: behaviours where the emulator must answer exactly as Mesos 1.x does."""

import base64
import uuid

import pytest

from actors.local.agent import update_call_error
from actors.local.agent_core import executor_env, exit_state, shutdown_grace_seconds
from actors.local.master_core import CallError, MasterCore
from actors.local.resources import Resources
from actors.local.tasks import is_uuid_bytes


def _core() -> MasterCore:
    core = MasterCore("M", {"id": "M"}, agent_timeout=10)
    core.elect(0)
    core.register_agent({"url": "http://127.0.0.1:1", "agent_info": {
        "id": {"value": "A"}, "hostname": "h", "port": 1,
        "resources": Resources.parse_flag("cpus:2;mem:1000").to_json()}}, 0)
    return core


def _subscribe(core: MasterCore, stream: str, **info) -> str:
    return core.subscribe({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "u", "name": stream, **info}}}, stream, 0).id


def _events(core: MasterCore, kind: str) -> list[dict]:
    return [e.payload for e in core.outbox if e.kind == "event" and e.payload["type"] == kind]


def _offers_to(core: MasterCore, fw: str) -> list[dict]:
    return [e.payload["offers"]["offers"][0] for e in core.outbox if e.kind == "event"
            and e.target == fw and e.payload["type"] == "OFFERS"]


def _call(core: MasterCore, fw: str, stream: str, kind: str, now: float = 0, **section):
    core.handle_call({"type": kind, "framework_id": {"value": fw}, **section}, stream, now)


def _task(tid: str) -> dict:
    return {"task_id": {"value": tid}, "agent_id": {"value": "A"}, "name": tid,
            "command": {"value": "true"},
            "resources": Resources.parse_flag("cpus:0.5;mem:10").to_json()}


@pytest.mark.parametrize(("caps", "state"), [([], "TASK_LOST"),
                                             ([{"type": "PARTITION_AWARE"}], "TASK_UNREACHABLE")])
def test_agent_removal_uses_the_v1_reason_and_stamps_unreachable_time(caps, state):
    # v1 mesos.proto has no REASON_SLAVE_*: a v1 client would reject that enum string.
    core = _core()
    fw = _subscribe(core, "s1", capabilities=caps)
    core.tick(0)
    offer = _offers_to(core, fw)[0]
    _call(core, fw, "s1", "ACCEPT", accept={"offer_ids": [offer["id"]], "operations": [
        {"type": "LAUNCH", "launch": {"task_infos": [_task("t1")]}}]})
    core.outbox.clear()
    core.tick(20)  # the agent stopped pinging
    status = _events(core, "UPDATE")[0]["update"]["status"]
    assert status["state"] == state and status["source"] == "SOURCE_MASTER"
    assert status["reason"] == "REASON_AGENT_REMOVED"
    assert status["unreachable_time"]["nanoseconds"] > 0
    assert "uuid" not in status


def test_decline_without_or_with_negative_refuse_seconds_filters_for_5_seconds():
    for filters in ({}, {"filters": {"refuse_seconds": -1}}):
        core = _core()
        fw = _subscribe(core, "s1")
        core.tick(0)
        offer = _offers_to(core, fw)[0]
        _call(core, fw, "s1", "DECLINE", decline={"offer_ids": [offer["id"]], **filters})
        core.outbox.clear()
        core.agent_ping("A", 4.9)
        core.tick(4.9)
        assert not _offers_to(core, fw), filters  # refused for the default 5 s
        core.agent_ping("A", 5.1)
        core.tick(5.1)
        assert _offers_to(core, fw), filters


def test_refuse_seconds_zero_reoffers_at_once_and_revive_clears_filters():
    core = _core()
    fw = _subscribe(core, "s1")
    core.tick(0)
    offer = _offers_to(core, fw)[0]
    _call(core, fw, "s1", "DECLINE", decline={"offer_ids": [offer["id"]],
                                              "filters": {"refuse_seconds": 0}})
    core.outbox.clear()
    core.tick(0.1)
    offer = _offers_to(core, fw)[0]
    _call(core, fw, "s1", "DECLINE", decline={"offer_ids": [offer["id"]],
                                              "filters": {"refuse_seconds": 3600}})
    core.outbox.clear()
    core.tick(1)
    assert not _offers_to(core, fw)
    _call(core, fw, "s1", "REVIVE", 1)
    core.tick(1)
    assert _offers_to(core, fw)


def test_reconcile_needs_its_section_and_acknowledge_a_real_uuid():
    core = _core()
    fw = _subscribe(core, "s1")
    with pytest.raises(CallError) as err:
        _call(core, fw, "s1", "RECONCILE")
    assert err.value.status == 400
    _call(core, fw, "s1", "RECONCILE", reconcile={})  # implicit: accepted
    for bad in ("not-base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(CallError) as err:
            _call(core, fw, "s1", "ACKNOWLEDGE", acknowledge={
                "agent_id": {"value": "A"}, "task_id": {"value": "t"}, "uuid": bad})
        assert err.value.status == 400
    good = base64.b64encode(uuid.uuid4().bytes).decode()
    _call(core, fw, "s1", "ACKNOWLEDGE", acknowledge={
        "agent_id": {"value": "A"}, "task_id": {"value": "t"}, "uuid": good})
    assert is_uuid_bytes(good) and not is_uuid_bytes(None)


def test_recovery_variables_only_for_checkpointing_frameworks():
    common = {"agent_id": "A", "agent_address": "127.0.0.1:5051", "framework_id": "F",
              "executor_id": "E", "sandbox": "/s", "shutdown_grace": 5}
    plain = executor_env(checkpoint=False, **common)
    assert "MESOS_RECOVERY_TIMEOUT" not in plain
    assert "MESOS_SUBSCRIPTION_BACKOFF_MAX" not in plain
    assert plain["MESOS_SLAVE_PID"] == "slave(1)@127.0.0.1:5051"
    ckpt = executor_env(checkpoint=True, **common)
    assert ckpt["MESOS_CHECKPOINT"] == "1"
    assert ckpt["MESOS_RECOVERY_TIMEOUT"] == "15mins"
    assert ckpt["MESOS_SUBSCRIPTION_BACKOFF_MAX"] == "2secs"


def test_executor_info_shutdown_grace_period_overrides_the_flag():
    assert shutdown_grace_seconds(None, 5.0) == 5.0
    assert shutdown_grace_seconds({"shutdown_grace_period": {"nanoseconds": 2_000_000_000}},
                                  5.0) == 2.0
    assert shutdown_grace_seconds({"shutdown_grace_period": {"nanoseconds": "500000000"}},
                                  5.0) == 0.5


def test_executor_update_validated_as_the_agent_does():
    def call(**status):
        base = {"task_id": {"value": "t"}, "state": "TASK_RUNNING",
                "uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
                "source": "SOURCE_EXECUTOR"}
        base.update(status)
        return {"type": "UPDATE", "update": {"status": {k: v for k, v in base.items()
                                                        if v is not None}}}

    assert update_call_error(call(), "E", "F") == ""
    assert "source" in update_call_error(call(source=None), "E", "F")
    assert "source" in update_call_error(call(source="SOURCE_AGENT"), "E", "F")
    assert "TASK_STAGING" in update_call_error(call(state="TASK_STAGING"), "E", "F")
    assert "uuid" in update_call_error(call(uuid=None), "E", "F")
    assert "UUID" in update_call_error(call(uuid="abc"), "E", "F")
    assert "does not match" in update_call_error(call(executor_id={"value": "X"}), "E", "F")
    assert update_call_error({"type": "UPDATE"}, "E", "F")


def test_launch_missing_a_required_protobuf_field_is_400_and_keeps_the_offer():
    # TaskInfo.name, task_id, agent_id and Resource.name/type are `required` in v1
    # mesos.proto: Mesos cannot convert such a body and answers 400 (no TASK_ERROR).
    core = _core()
    fw = _subscribe(core, "s1")
    core.tick(0)
    offer = _offers_to(core, fw)[0]
    nameless = {k: v for k, v in _task("t1").items() if k != "name"}
    untyped = {**_task("t2"), "resources": [{"name": "cpus", "scalar": {"value": 0.1}}]}
    for task in (nameless, untyped):
        with pytest.raises(CallError) as err:
            _call(core, fw, "s1", "ACCEPT", accept={"offer_ids": [offer["id"]], "operations": [
                {"type": "LAUNCH", "launch": {"task_infos": [task]}}]})
        assert err.value.status == 400
    assert offer["id"]["value"] in core.offers  # nothing was consumed


def test_call_counters_carry_the_mesos_metric_names():
    core = _core()
    fw = _subscribe(core, "s1")
    core.tick(0)
    offer = _offers_to(core, fw)[0]
    _call(core, fw, "s1", "ACCEPT", accept={"offer_ids": [offer["id"]], "operations": [
        {"type": "LAUNCH", "launch": {"task_infos": [_task("t1")]}}]})
    _call(core, fw, "s1", "REVIVE")
    _call(core, fw, "s1", "SUPPRESS")
    _call(core, fw, "s1", "KILL", kill={"task_id": {"value": "t1"}})
    _call(core, fw, "s1", "RECONCILE", reconcile={"tasks": []})
    metrics = core.metrics(1)
    for name in ("master/messages_launch_tasks", "master/messages_revive_offers",
                 "master/messages_suppress_offers", "master/messages_kill_task",
                 "master/messages_reconcile_tasks", "master/messages_register_framework",
                 "master/slave_registrations"):
        assert metrics[name] == 1, name
    assert metrics["master/messages_decline_offers"] == 0  # exported before it moves
    assert not [k for k in metrics if k.startswith("master/messages_event_")]
    assert metrics["master/frameworks_active"] == 1  # suppressed is still active


def test_state_times_are_unix_seconds():
    core = MasterCore("M", {"id": "M"})
    assert core.state_json(None)["elected_time"] is None  # not leading
    core.elect(12.5)  # a monotonic reading
    core.register_agent({"url": "http://127.0.0.1:1", "agent_info": {
        "id": {"value": "A"}, "resources": Resources.parse_flag("cpus:1").to_json()}}, 12.5)
    state = core.state_json(None)
    assert state["elected_time"] > 1.6e9 and state["start_time"] > 1.6e9
    assert state["slaves"][0]["registered_time"] > 1.6e9


def test_kill_of_an_unknown_task_is_answered_by_reconciliation():
    core = _core()
    aware = _subscribe(core, "s1", capabilities=[{"type": "PARTITION_AWARE"}])
    core.tick(0)
    offer = _offers_to(core, aware)[0]
    _call(core, aware, "s1", "ACCEPT", accept={"offer_ids": [offer["id"]], "operations": [
        {"type": "LAUNCH", "launch": {"task_infos": [_task("t1")]}}]})
    core.tick(20)  # agent removed: t1 unreachable
    core.outbox.clear()
    _call(core, aware, "s1", "KILL", 21, kill={"task_id": {"value": "t1"},
                                               "agent_id": {"value": "A"}})
    _call(core, aware, "s1", "KILL", 21, kill={"task_id": {"value": "t1"}})
    _call(core, aware, "s1", "KILL", 21, kill={"task_id": {"value": "never"}})
    states = [e["update"]["status"] for e in _events(core, "UPDATE")]
    # Master::reconcile(): an unreachable task is no longer known; only its agent's id says
    # it is unreachable.
    assert [(s["task_id"]["value"], s["state"], s["reason"]) for s in states] == [
        ("t1", "TASK_UNREACHABLE", "REASON_RECONCILIATION"),
        ("t1", "TASK_UNKNOWN", "REASON_RECONCILIATION"),
        ("never", "TASK_UNKNOWN", "REASON_RECONCILIATION")]


def test_command_exit_states_as_the_mesos_command_executor_reports_them():
    assert exit_state(0, True) == ("TASK_FINISHED", "Command exited with status 0")
    assert exit_state(3, False) == ("TASK_FAILED", "Command exited with status 3")
    assert exit_state(-15, True) == ("TASK_KILLED", "Command terminated with signal Terminated")
    assert exit_state(-9, False) == ("TASK_FAILED", "Command terminated with signal Killed")
