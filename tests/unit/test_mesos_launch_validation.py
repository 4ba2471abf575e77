"""Issue 12, items 2 and 9: launch validation as the Mesos 1.11 master does it (pure core)."""

import pytest

from actors.local.master_core import MasterCore
from actors.local.resources import Resources


def _core() -> tuple[MasterCore, str]:
    core = MasterCore("M", {"id": "M"}, agent_timeout=10)
    core.elect(0)
    core.register_agent({"url": "http://127.0.0.1:1", "agent_info": {
        "id": {"value": "A"}, "hostname": "h", "port": 1,
        "resources": Resources.parse_flag("cpus:4;mem:4000;disk:4000").to_json()}}, 0)
    fw = core.subscribe({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "u", "name": "n"}}}, "s1", 0).id
    return core, fw


def _res(text: str) -> list[dict]:
    return Resources.parse_flag(text).to_json()


def _task(tid: str, **extra) -> dict:
    return {"task_id": {"value": tid}, "agent_id": {"value": "A"}, "name": tid,
            "resources": _res("cpus:0.1;mem:10"), **extra}


def _group_executor(**changes) -> dict:
    info = {"executor_id": {"value": "E"}, "type": "DEFAULT",
            "resources": _res("cpus:0.1;mem:32;disk:10")}
    info.update(changes)
    return {k: v for k, v in info.items() if v is not None}


def _accept(core: MasterCore, fw: str, operations: list, offer_ids: list | None = None):
    core.outbox.clear()
    core.tick(0)
    offers = [e.payload["offers"]["offers"][0]["id"] for e in core.outbox
              if e.kind == "event" and e.payload["type"] == "OFFERS"]
    offer_ids = offers if offer_ids is None else offer_ids(offers)
    core.outbox.clear()
    core.handle_call({"type": "ACCEPT", "framework_id": {"value": fw}, "accept": {
        "offer_ids": offer_ids, "filters": {"refuse_seconds": 0},
        "operations": operations}}, "s1", 0)
    return [e.payload["update"]["status"] for e in core.outbox
            if e.kind == "event" and e.payload["type"] == "UPDATE"]


def _group(executor: dict, *tasks: dict) -> dict:
    return {"type": "LAUNCH_GROUP", "launch_group": {
        "executor": executor, "task_group": {"tasks": list(tasks)}}}


def _launch(*tasks: dict) -> dict:
    return {"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}


@pytest.mark.parametrize(("executor", "message"), [
    (_group_executor(type=None), "'ExecutorInfo.type' must be set"),
    (_group_executor(resources=_res("mem:32;disk:10")),
     "Executor 'E' uses less CPUs (None) than the minimum required (0.01)"),
    (_group_executor(resources=_res("cpus:0.1;mem:16;disk:10")),
     "Executor 'E' uses less memory (16MB) than the minimum required (32MB)"),
    (_group_executor(resources=_res("cpus:0.1;mem:32")), "Executor 'E' uses no disk"),
    (_group_executor(command={"value": "x"}),
     "'ExecutorInfo.command' must not be set for 'DEFAULT' executor"),
    (_group_executor(type="CUSTOM"),
     "'ExecutorInfo.command' must be set for 'CUSTOM' executor"),
])
def test_group_executor_validated_as_mesos_does(executor, message):
    """validation.cpp task::group::validate (~1966-2016), executor validateType (~1175)."""
    core, fw = _core()
    statuses = _accept(core, fw, [_group(executor, _task("g1"), _task("g2"))])
    assert [(s["task_id"]["value"], s["state"], s["reason"]) for s in statuses] == [
        ("g1", "TASK_ERROR", "REASON_TASK_GROUP_INVALID"),
        ("g2", "TASK_ERROR", "REASON_TASK_GROUP_INVALID")]
    assert statuses[0]["message"] == message
    assert statuses[0]["agent_id"] == {"value": "A"}  # master updates name the agent
    assert core.agents["A"].used.empty() and not core.tasks


def test_valid_default_group_executor_is_launched():
    core, fw = _core()
    assert _accept(core, fw, [_group(_group_executor(), _task("g1"))]) == []
    launch = next(e.payload for e in core.outbox if e.kind == "agent")
    assert launch["executor"]["type"] == "DEFAULT" and launch["group"]
    assert core.agents["A"].used.get("mem") == 42


@pytest.mark.parametrize(("executor", "message"), [
    ({"executor_id": {"value": "E"}, "type": "DEFAULT"}, "'ExecutorInfo.type' must be 'CUSTOM'"),
    ({"executor_id": {"value": "E"}}, "'ExecutorInfo.command' must be set"),
])
def test_launch_executor_must_be_custom_with_a_command(executor, message):
    """validation.cpp task::internal::validateExecutor (~1746-1756)."""
    core, fw = _core()
    [status] = _accept(core, fw, [_launch(_task("t1", executor=executor))])
    assert (status["state"], status["reason"], status["message"]) == (
        "TASK_ERROR", "REASON_TASK_INVALID", message)


@pytest.mark.parametrize(("tid", "message"), [
    ("a/b", "Task has an invalid TaskID: 'a/b' contains invalid characters"),
    ("a\\b", "Task has an invalid TaskID: 'a\\b' contains invalid characters"),
    ("a\x01b", "Task has an invalid TaskID: 'a\x01b' contains invalid characters"),
    ("..", "Task has an invalid TaskID: '..' is disallowed"),
    ("x" * 256, "Task has an invalid TaskID: ID must not be greater than 255 characters"),
])
def test_task_ids_pass_validate_id(tid, message):
    """common/validation.cpp validateID (~46-77)."""
    core, fw = _core()
    [status] = _accept(core, fw, [_launch(_task(tid, command={"value": "true"}))])
    assert (status["state"], status["message"]) == ("TASK_ERROR", message)


def test_executor_ids_pass_validate_id_and_a_reused_id_needs_the_same_info():
    """validation.cpp validateCompatibleExecutorInfo (~1215-1240)."""
    core, fw = _core()
    custom = {"executor_id": {"value": "E"}, "command": {"value": "x"},
              "resources": _res("cpus:0.1;mem:32")}
    bad = {**custom, "executor_id": {"value": "e/1"}}
    [status] = _accept(core, fw, [_launch(_task("t0", executor=bad))])
    assert status["message"] == "'e/1' contains invalid characters"
    assert _accept(core, fw, [_launch(_task("t1", executor=custom))]) == []
    other = {**custom, "command": {"value": "y"}}
    [status] = _accept(core, fw, [_launch(_task("t2", executor=other))])
    assert status["state"] == "TASK_ERROR"
    assert status["message"].startswith("ExecutorInfo is not compatible with existing "
                                        "ExecutorInfo with same ExecutorID")
    assert _accept(core, fw, [_launch(_task("t3", executor=dict(custom)))]) == []


def test_duplicate_offer_ids_are_invalid_offers():
    """validation.cpp offer::validateUniqueOfferID (~2304-2316), master.cpp ~3985-4010."""
    core, fw = _core()
    [status] = _accept(core, fw, [_launch(_task("t1", command={"value": "true"}))],
                       offer_ids=lambda ids: [ids[0]] * 2)
    assert (status["state"], status["reason"]) == ("TASK_LOST", "REASON_INVALID_OFFERS")
    assert status["message"].startswith("Task launched with invalid offers: Duplicate offer")
    assert status["agent_id"] == {"value": "A"}
    assert not core.tasks and not core.offers
