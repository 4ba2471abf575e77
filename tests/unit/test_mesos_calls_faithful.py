"""Issue 12, items 7 and 10 and the smaller ones: SUBSCRIBE ids, memory-only offers, offer
contents, HEARTBEAT timing, UPDATE_FRAMEWORK, suppressed roles, KILL routing, wait statuses
and the status-update retry backoff, as Mesos 1.11 does them (pure core and helpers)."""

import itertools

import pytest

from actors.local.agent_core import mesos_duration, wait_status
from actors.local.master_core import CallError, MasterCore
from actors.local.resources import Resources
from actors.local.tasks import UpdateLedger, make_status

AWARE = [{"type": "PARTITION_AWARE"}]
MULTI_ROLE = [{"type": "MULTI_ROLE"}]


def _core(resources: str = "cpus:2;mem:1000;disk:100") -> MasterCore:
    core = MasterCore("M", {"id": "M"}, agent_timeout=10)
    core.elect(0)
    _register(core, "A", resources)
    return core


def _register(core: MasterCore, agent_id: str, resources: str, tasks: list | None = None,
              frameworks: list | None = None, now: float = 0) -> dict:
    return core.register_agent({"url": "http://127.0.0.1:1", "agent_info": {
        "id": {"value": agent_id}, "hostname": "h", "port": 1,
        "resources": Resources.parse_flag(resources).to_json()},
        "tasks": tasks or [], "frameworks": frameworks or []}, now)


def _subscribe(core: MasterCore, stream: str = "s1", **info) -> str:
    return core.subscribe({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "u", "name": "n", **info}}}, stream, 0).id


def _events(core: MasterCore, kind: str, fw: str | None = None) -> list[dict]:
    return [e.payload for e in core.outbox if e.kind == "event"
            and e.payload["type"] == kind and (fw is None or e.target == fw)]


def _offers(core: MasterCore, fw: str | None = None) -> list[dict]:
    core.outbox.clear()
    core.tick(0)
    return [o for e in _events(core, "OFFERS", fw) for o in e["offers"]["offers"]]


def _call(core: MasterCore, fw: str, kind: str, stream: str = "s1", **section) -> None:
    core.handle_call({"type": kind, "framework_id": {"value": fw}, **section}, stream, 0)


# -- item 7 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("ids", [{"call": "F1"}, {"info": "F1"}, {"call": "F1", "info": "F2"}])
def test_subscribe_framework_ids_must_agree(ids):
    """validation.cpp scheduler::call::validate (~743-746)."""
    core = _core()
    call: dict = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u",
                                                                        "name": "n"}}}
    if "call" in ids:
        call["framework_id"] = {"value": ids["call"]}
    if "info" in ids:
        call["subscribe"]["framework_info"]["id"] = {"value": ids["info"]}
    with pytest.raises(CallError) as err:
        core.subscribe(call, "s1", 0)
    assert err.value.status == 400
    assert err.value.message == "'framework_id' differs from 'subscribe.framework_info.id'"


def test_negative_failover_timeout_is_accepted_and_acts_as_zero():
    core = _core()
    fw = _subscribe(core, failover_timeout=-5)
    core.disconnect(fw, "s1", 1)
    core.agent_ping("A", 1)
    core.tick(1)
    assert fw not in core.frameworks  # removed at once


# -- item 10 -----------------------------------------------------------------------------------
def test_memory_only_agents_are_offered_and_tiny_ones_are_not():
    """flags.cpp min_allocatable_resources default cpus:0.01|mem:32 (~519)."""
    core = _core("mem:64;disk:10")
    _register(core, "B", "cpus:0.005;mem:16")
    _subscribe(core)
    offers = _offers(core)
    assert [o["agent_id"]["value"] for o in offers] == ["A"]
    assert {r["name"] for r in offers[0]["resources"]} == {"mem", "disk"}


# -- offers ------------------------------------------------------------------------------------
def test_offers_name_running_executors_and_only_multi_role_get_allocation_info():
    """master.cpp offer() (~9515-9580): executor_ids; allocation_info stripped unless the
    framework is MULTI_ROLE (MESOS-8237)."""
    core = _core()
    plain = _subscribe(core)
    [offer] = _offers(core, plain)
    assert "allocation_info" not in offer and "executor_ids" not in offer
    assert all("allocation_info" not in r for r in offer["resources"])
    executor = {"executor_id": {"value": "E"}, "command": {"value": "x"},
                "resources": Resources.parse_flag("cpus:0.1;mem:32").to_json()}
    task = {"task_id": {"value": "t"}, "agent_id": {"value": "A"}, "name": "t",
            "executor": executor, "resources": Resources.parse_flag("cpus:0.1").to_json()}
    _call(core, plain, "ACCEPT", accept={"offer_ids": [offer["id"]], "filters": {
        "refuse_seconds": 0}, "operations": [{"type": "LAUNCH", "launch": {
            "task_infos": [task]}}]})
    [offer] = _offers(core, plain)
    assert offer["executor_ids"] == [{"value": "E"}]
    core.handle_call({"type": "TEARDOWN", "framework_id": {"value": plain}}, "s1", 0)
    multi = _subscribe(core, "s2", capabilities=MULTI_ROLE, roles=["*"])
    [offer] = _offers(core, multi)
    assert offer["allocation_info"] == {"role": "*"}
    assert all(r["allocation_info"] == {"role": "*"} for r in offer["resources"])


# -- heartbeats --------------------------------------------------------------------------------
def test_first_heartbeat_follows_subscribed_at_once():
    """common/heartbeater.hpp initialize() without delay; framework.cpp heartbeat()."""
    core = _core()
    core.outbox.clear()
    _subscribe(core)
    kinds = [e.payload["type"] for e in core.outbox if e.kind == "event"]
    assert kinds[:2] == ["SUBSCRIBED", "HEARTBEAT"]


# -- UPDATE_FRAMEWORK and suppressed roles -----------------------------------------------------
def test_subscribe_with_suppressed_roles_gets_no_offers_until_revive():
    core = _core()
    fw = core.subscribe({"type": "SUBSCRIBE", "subscribe": {
        "framework_info": {"user": "u", "name": "n"}, "suppressed_roles": ["*"]}},
        "s1", 0).id
    assert _offers(core, fw) == []
    _call(core, fw, "REVIVE")
    assert _offers(core, fw)


def test_update_framework_changes_info_suppression_and_tells_agents():
    """master.cpp updateFramework (~3271-3330), validation.cpp validateUpdate (~613-656)."""
    core = _core()
    fw = _subscribe(core, failover_timeout=5)
    info = {"id": {"value": fw}, "user": "u", "name": "renamed", "failover_timeout": 60}
    core.outbox.clear()
    _call(core, fw, "UPDATE_FRAMEWORK", update_framework={
        "framework_info": info, "suppressed_roles": ["*"]})
    assert core.frameworks[fw].info["name"] == "renamed"
    assert core.frameworks[fw].failover_timeout == 60
    assert [e.path for e in core.outbox if e.kind == "agent"] == ["/internal/update_framework"]
    assert _offers(core, fw) == []
    _call(core, fw, "UPDATE_FRAMEWORK", update_framework={"framework_info": info})
    assert _offers(core, fw)
    with pytest.raises(CallError) as err:
        _call(core, fw, "UPDATE_FRAMEWORK", update_framework={
            "framework_info": {**info, "user": "other"}})
    assert err.value.status == 400 and "Updating 'FrameworkInfo.user' is unsupported" in \
        err.value.message
    with pytest.raises(CallError) as err:
        _call(core, fw, "UPDATE_FRAMEWORK", update_framework={
            "framework_info": {**info, "id": {"value": "other"}}})
    assert err.value.message.endswith(
        "'framework_id' differs from 'update_framework.framework_info.id'")
    with pytest.raises(CallError) as err:
        _call(core, fw, "UPDATE_FRAMEWORK", update_framework={
            "framework_info": info, "suppressed_roles": ["web"]})
    assert "are not contained in the set of roles" in err.value.message


def test_resubscription_tells_agents_to_resend_pending_updates():
    """master.cpp sendFrameworkUpdates (~2880-2905); slave.cpp updateFramework -> resume."""
    core = _core()
    fw = _subscribe(core, failover_timeout=60)
    core.disconnect(fw, "s1", 1)
    core.outbox.clear()
    core.subscribe({"type": "SUBSCRIBE", "framework_id": {"value": fw}, "subscribe": {
        "framework_info": {"user": "u", "name": "n", "id": {"value": fw}}}}, "s2", 2)
    [message] = [e for e in core.outbox if e.kind == "agent"]
    assert message.path == "/internal/update_framework" and message.target == "A"
    assert message.payload["framework_info"]["id"] == {"value": fw}


# -- KILL --------------------------------------------------------------------------------------
def _running_task(core: MasterCore, fw: str) -> None:
    [offer] = _offers(core, fw)
    task = {"task_id": {"value": "t"}, "agent_id": {"value": "A"}, "name": "t",
            "command": {"value": "sleep 9"},
            "resources": Resources.parse_flag("cpus:0.1").to_json()}
    _call(core, fw, "ACCEPT", accept={"offer_ids": [offer["id"]], "operations": [
        {"type": "LAUNCH", "launch": {"task_infos": [task]}}]})
    core.agent_update("A", fw, make_status("t", "TASK_RUNNING", agent_id="A"),
                      "TASK_RUNNING")


def test_kill_naming_another_agent_is_ignored():
    """master.cpp kill() (~5721-5729)."""
    core = _core()
    fw = _subscribe(core)
    _running_task(core, fw)
    core.outbox.clear()
    _call(core, fw, "KILL", kill={"task_id": {"value": "t"}, "agent_id": {"value": "B"}})
    assert core.outbox == []
    _call(core, fw, "KILL", kill={"task_id": {"value": "t"}, "agent_id": {"value": "A"}})
    assert [e.path for e in core.outbox if e.kind == "agent"] == ["/internal/kill"]


def test_kills_are_retried_when_the_agent_reregisters():
    """master.cpp kill() keeps slave->killedTasks; reconcileKnownSlave resends them."""
    core = _core()
    fw = _subscribe(core)
    _running_task(core, fw)
    _call(core, fw, "KILL", kill={"task_id": {"value": "t"}})
    core.outbox.clear()
    info = core.tasks[(fw, "t")].info
    _register(core, "A", "cpus:2;mem:1000;disk:100", frameworks=[core.frameworks[fw].info],
              tasks=[{"framework_id": fw, "state": "TASK_RUNNING", "executor_id": None,
                      "info": info}], now=1)
    kills = [e for e in core.outbox if e.kind == "agent" and e.path == "/internal/kill"]
    assert [k.payload["task_id"] for k in kills] == ["t"]


# -- agent helpers -----------------------------------------------------------------------------
def test_failure_status_is_the_raw_wait_status():
    """v1 Event.Failure.status carries the executor's wait status (WEXITSTATUS << 8 or the
    signal), as the containerizer reports it."""
    assert wait_status(0) == 0
    assert wait_status(3) == 3 << 8
    assert wait_status(-9) == 9


def test_mesos_duration_spelling():
    assert [mesos_duration(s) for s in (60, 2, 90, 0.5, 600)] == [
        "1mins", "2secs", "1.5mins", "500ms", "10mins"]


def test_status_update_retries_back_off_to_ten_minutes():
    """status_update_manager_process.hpp forward() (~560-567): the interval doubles from
    STATUS_UPDATE_RETRY_INTERVAL_MIN (10 s) up to _MAX (10 min)."""
    ledger = UpdateLedger(10.0)
    ledger.add("F", make_status("t", "TASK_RUNNING"), 0)
    sent_at = []
    now = 0.0
    while now < 3000:
        if ledger.due(now):
            sent_at.append(now)
        now += 1
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert gaps[:6] == [10, 20, 40, 80, 160, 320]
    assert set(gaps[6:]) == {600}
    ledger.resend_all(now)  # a re-subscribed framework: at once, from the minimum again
    assert ledger.due(now)
    assert not ledger.due(now + 9) and ledger.due(now + 10)


def test_ledger_recognises_queued_and_acknowledged_updates_as_duplicates():
    """An executor re-subscribing resends what it has not seen acknowledged; the agent takes
    an update once (Slave::subscribe() relies on the status update manager for this)."""
    ledger = UpdateLedger(10.0)
    first = make_status("t", "TASK_RUNNING")
    ledger.add("F", first, 0)
    assert ledger.seen("t", first["uuid"])
    ledger.acknowledge("t", first["uuid"])
    assert ledger.seen("t", first["uuid"])
    assert not ledger.seen("t", make_status("t", "TASK_FINISHED")["uuid"])
