"""Issue 12, items 1, 3, 4, 6, 8: agents coming back, reconciliation, the agent registry and
orphaned frameworks after a master failover, as the Mesos 1.11 master does them (pure core)."""

from actors.local.master_core import MasterCore
from actors.local.resources import Resources
from actors.local.tasks import make_status

AWARE = [{"type": "PARTITION_AWARE"}]


def _agent_msg(agent_id: str = "A", tasks: list | None = None,
               frameworks: list | None = None) -> dict:
    return {"url": "http://127.0.0.1:1", "agent_info": {
        "id": {"value": agent_id}, "hostname": "h", "port": 1,
        "resources": Resources.parse_flag("cpus:2;mem:1000;disk:1000").to_json()},
        "tasks": tasks or [], "frameworks": frameworks or []}


def _core(now: float = 0, registry: dict | None = None, **kw) -> MasterCore:
    core = MasterCore("M", {"id": "M"}, agent_timeout=10, **kw)
    core.elect(now, registry)
    return core


def _subscribe(core: MasterCore, stream: str, now: float = 0, **info) -> str:
    return core.subscribe({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "u", "name": stream, **info}}}, stream, now).id


def _updates(core: MasterCore, fw: str | None = None) -> list[dict]:
    return [e.payload["update"]["status"] for e in core.outbox if e.kind == "event"
            and e.payload["type"] == "UPDATE" and (fw is None or e.target == fw)]


def _task(tid: str, agent: str = "A") -> dict:
    return {"task_id": {"value": tid}, "agent_id": {"value": agent}, "name": tid,
            "command": {"value": "true"},
            "resources": Resources.parse_flag("cpus:0.5;mem:10").to_json()}


def _launch(core: MasterCore, fw: str, stream: str, tid: str) -> None:
    core.tick(0)
    offer = next(e.payload["offers"]["offers"][0] for e in core.outbox if e.kind == "event"
                 and e.target == fw and e.payload["type"] == "OFFERS")
    core.handle_call({"type": "ACCEPT", "framework_id": {"value": fw}, "accept": {
        "offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0}, "operations": [
            {"type": "LAUNCH", "launch": {"task_infos": [_task(tid)]}}]}}, stream, 0)


def _reconcile(core: MasterCore, fw: str, stream: str, now: float, *items: dict) -> list[dict]:
    core.outbox.clear()
    core.handle_call({"type": "RECONCILE", "framework_id": {"value": fw},
                      "reconcile": {"tasks": list(items)}}, stream, now)
    return _updates(core, fw)


def _registry(core: MasterCore) -> dict:
    """The last registry the core asked the edge to store."""
    return [e.payload for e in core.outbox if e.kind == "registry"][-1]


# -- item 1 ------------------------------------------------------------------------------------
def test_agent_back_after_being_marked_lost_readds_tasks_and_tells_every_framework():
    """master.cpp __reregisterSlave (~7021-7090): every task is re-added and its latest state
    sent with REASON_AGENT_REREGISTERED to partition-aware and plain frameworks alike."""
    core = _core()
    core.register_agent(_agent_msg(), 0)
    plain = _subscribe(core, "s1")
    aware = _subscribe(core, "s2", capabilities=AWARE)
    _launch(core, plain, "s1", "p1")
    _launch(core, aware, "s2", "a1")
    for fw, tid in ((plain, "p1"), (aware, "a1")):
        core.agent_update("A", fw, make_status(tid, "TASK_RUNNING", agent_id="A"),
                          "TASK_RUNNING")
    core.tick(20)  # silent past agent_timeout: p1 TASK_LOST, a1 TASK_UNREACHABLE
    assert "A" not in core.agents
    infos = [core.frameworks[plain].info, core.frameworks[aware].info]
    core.outbox.clear()
    answer = core.register_agent(_agent_msg("A", frameworks=infos, tasks=[
        {"framework_id": plain, "state": "TASK_RUNNING", "executor_id": None,
         "info": _task("p1")},
        {"framework_id": aware, "state": "TASK_RUNNING", "executor_id": None,
         "info": _task("a1")}]), 21)
    assert not answer.get("kill_tasks")  # nothing is killed
    for fw, tid in ((plain, "p1"), (aware, "a1")):
        [status] = _updates(core, fw)
        assert status["task_id"]["value"] == tid and status["state"] == "TASK_RUNNING"
        assert status["reason"] == "REASON_AGENT_REREGISTERED"
        assert status["source"] == "SOURCE_MASTER"
        assert status["message"] == "Unreachable agent re-reregistered"
        assert status["agent_id"]["value"] == "A"
        assert core.tasks[(fw, tid)].state == "TASK_RUNNING"
    assert core.agents["A"].used.get("cpus") == 1.0
    assert not core.unreachable_tasks
    # The task is no longer a completed (lost) one in /master/state.
    assert all(t["id"] != "p1" for t in core.state_json(None)["completed_tasks"])


def test_unknown_agent_reregistering_is_announced_too():
    core = _core()
    fw = _subscribe(core, "s1")
    core.outbox.clear()
    core.register_agent(_agent_msg("B", frameworks=[core.frameworks[fw].info], tasks=[
        {"framework_id": fw, "state": "TASK_RUNNING", "executor_id": None,
         "info": _task("t1", "B")}]), 1)
    [status] = _updates(core, fw)
    assert status["reason"] == "REASON_AGENT_REREGISTERED"
    assert status["message"] == "Unknown agent reregistered"


# -- item 3 ------------------------------------------------------------------------------------
def test_unknown_task_on_a_registered_agent_is_gone():
    """master.cpp reconcile() case (3) (~9083-9100): TASK_GONE, or TASK_LOST if not aware."""
    core = _core()
    core.register_agent(_agent_msg(), 0)
    aware = _subscribe(core, "s1", capabilities=AWARE)
    plain = _subscribe(core, "s2")
    item = {"task_id": {"value": "nope"}, "agent_id": {"value": "A"}}
    [status] = _reconcile(core, aware, "s1", 1, item)
    assert status["state"] == "TASK_GONE"
    assert status["message"] == "Reconciliation: Task is unknown to the agent"
    assert status["agent_id"]["value"] == "A"
    assert _reconcile(core, plain, "s2", 1, item)[0]["state"] == "TASK_LOST"
    # Without an agent id the agent is unknown: case (6), TASK_UNKNOWN.
    [status] = _reconcile(core, aware, "s1", 1, {"task_id": {"value": "nope"}})
    assert status["state"] == "TASK_UNKNOWN"
    assert status["message"] == "Reconciliation: Task is unknown"


# -- item 4 ------------------------------------------------------------------------------------
def test_registry_survives_failover_and_recovered_agents_keep_reconciliation_silent():
    """master.cpp _recover (~1680-1745) and reconcile() cases (2) and (4) (~9063-9075)."""
    old = _core()
    old.register_agent(_agent_msg("A"), 0)
    old.register_agent(_agent_msg("B"), 0)
    old.agent_ping("A", 15)
    old.tick(15)  # B silent: unreachable
    registry = _registry(old)
    assert {a["id"]["value"] for a in registry["agents"]} == {"A"}
    assert set(registry["unreachable"]) == {"B"}

    new = _core(100, registry, agent_reregister_timeout=600)
    aware = _subscribe(new, "s1", 100, capabilities=AWARE)
    plain = _subscribe(new, "s2", 100)
    on_b = {"task_id": {"value": "t"}, "agent_id": {"value": "B"}}
    on_a = {"task_id": {"value": "t"}, "agent_id": {"value": "A"}}
    [status] = _reconcile(new, aware, "s1", 101, on_b)
    assert status["state"] == "TASK_UNREACHABLE"
    assert status["message"] == "Reconciliation: Task is unreachable"
    assert status["unreachable_time"]["nanoseconds"] == registry["unreachable"]["B"]
    assert _reconcile(new, plain, "s2", 101, on_b)[0]["state"] == "TASK_LOST"
    # A is recovered but not yet back: nothing is said about it, nor about agent-less tasks,
    # long after the old 10 s window.
    assert _reconcile(new, aware, "s1", 500, on_a) == []
    assert _reconcile(new, aware, "s1", 500, {"task_id": {"value": "t"}}) == []
    # A re-registers: no REASON_AGENT_REREGISTERED (it was admitted), and answers resume.
    new.outbox.clear()
    new.register_agent(_agent_msg("A"), 501)
    assert _updates(new) == []
    assert _reconcile(new, aware, "s1", 502, on_a)[0]["state"] == "TASK_GONE"
    assert _reconcile(new, aware, "s1", 502, {"task_id": {"value": "t"}})[0]["state"] == \
        "TASK_UNKNOWN"


def test_recovered_agent_not_back_within_the_timeout_becomes_unreachable():
    old = _core()
    old.register_agent(_agent_msg("A"), 0)
    new = _core(100, _registry(old), agent_reregister_timeout=30)
    aware = _subscribe(new, "s1", 100, capabilities=AWARE)
    item = {"task_id": {"value": "t"}, "agent_id": {"value": "A"}}
    assert _reconcile(new, aware, "s1", 129, item) == []
    new.tick(130)
    assert set(_registry(new)["unreachable"]) == {"A"}
    assert _reconcile(new, aware, "s1", 131, item)[0]["state"] == "TASK_UNREACHABLE"


# -- item 6 ------------------------------------------------------------------------------------
def test_framework_learnt_from_an_agent_is_not_timed_out_until_it_disconnects():
    """master.cpp recoverFramework (~10081) starts no timer; _exited (~1413-1440) does."""
    old = _core()
    old.register_agent(_agent_msg("A"), 0)
    new = _core(100, _registry(old))
    info = {"id": {"value": "F"}, "user": "u", "name": "n", "failover_timeout": 5}
    new.register_agent(_agent_msg("A", frameworks=[info], tasks=[
        {"framework_id": "F", "state": "TASK_RUNNING", "executor_id": None,
         "info": _task("t1")}]), 101)
    new.agent_ping("A", 1000)
    new.tick(1000)  # far past its failover_timeout: an orphan, still kept
    assert "F" in new.frameworks and ("F", "t1") in new.tasks
    new.subscribe({"type": "SUBSCRIBE", "framework_id": {"value": "F"}, "subscribe": {
        "framework_info": info}}, "s1", 1001)
    new.disconnect("F", "s1", 1002)
    new.agent_ping("A", 1008)
    new.tick(1008)  # now the timer ran after a real disconnection
    assert "F" not in new.frameworks and ("F", "t1") not in new.tasks


# -- item 8 ------------------------------------------------------------------------------------
def test_reconciliation_answers_the_state_awaiting_acknowledgement_without_data():
    """master.cpp reconcile() (~8979-8996, 9043-9060): status_update_state, no data."""
    core = _core()
    core.register_agent(_agent_msg(), 0)
    fw = _subscribe(core, "s1")
    _launch(core, fw, "s1", "t1")
    running = make_status("t1", "TASK_RUNNING", agent_id="A")
    running["data"] = "c29tZQ=="
    # The agent forwards TASK_RUNNING (unacknowledged) while it already knows TASK_FINISHED.
    core.agent_update("A", fw, running, "TASK_FINISHED")
    for items in ((), ({"task_id": {"value": "t1"}},)):
        [status] = _reconcile(core, fw, "s1", 1, *items)
        assert status["state"] == "TASK_RUNNING"
        assert "data" not in status
        assert status["message"] == "Reconciliation: Latest task state"
        assert status["reason"] == "REASON_RECONCILIATION"


def test_registry_forgets_the_oldest_unreachable_agents_beyond_its_cap(monkeypatch):
    """Registry GC by count (Mesos --registry_max_agent_count), oldest first."""
    from actors.local import master_state

    monkeypatch.setattr(master_state, "REGISTRY_MAX_UNREACHABLE", 2)
    core = _core()
    for n, agent_id in enumerate(("A", "B", "C")):
        core.register_agent(_agent_msg(agent_id), n)
    for n, agent_id in enumerate(("A", "B", "C")):
        core.agent_lost(agent_id, 100 + n)
    assert set(_registry(core)["unreachable"]) == {"B", "C"}
