"""Refused-offer filters as the Mesos allocator keeps them (src/master/allocator/mesos/
hierarchical.cpp): a set per (framework, agent), each with the refused resources and an
expiry; an offer is withheld while any unexpired filter's resources contain it; REVIVE and
framework deactivation drop them all."""

from actors.local.master_core import MasterCore
from actors.local.resources import Resources
from actors.local.tasks import make_status

WHOLE = "cpus:2;mem:1000"


def _core(allocation_interval: float = 1.0) -> MasterCore:
    core = MasterCore("M", {"id": "M"}, agent_timeout=10 ** 9,
                      allocation_interval=allocation_interval)
    core.elect(0)
    core.register_agent({"url": "http://127.0.0.1:1", "agent_info": {
        "id": {"value": "A"}, "hostname": "h", "port": 1,
        "resources": Resources.parse_flag(WHOLE).to_json()}}, 0)
    return core


def _subscribe(core: MasterCore, fw_id: str | None = None, stream: str = "s1") -> str:
    info: dict = {"user": "u", "name": "filters"}
    call: dict = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
    if fw_id:  # Mesos wants both ids, equal (validation.cpp)
        info["id"] = call["framework_id"] = {"value": fw_id}
    return core.subscribe(call, stream, 0).id


def _offers_at(core: MasterCore, now: float) -> list[dict]:
    """Run an allocation at ``now``; the offers it made (then forget the outbox)."""
    core.outbox.clear()
    core.tick(now)
    offers = [o for e in core.outbox if e.kind == "event" and e.payload["type"] == "OFFERS"
              for o in e.payload["offers"]["offers"]]
    core.outbox.clear()
    return offers


def _call(core: MasterCore, fw: str, kind: str, now: float, stream: str = "s1",
          **section) -> None:
    core.handle_call({"type": kind, "framework_id": {"value": fw}, **section}, stream, now)


def _decline(core: MasterCore, fw: str, offer: dict, seconds: float, now: float) -> None:
    _call(core, fw, "DECLINE", now, decline={"offer_ids": [offer["id"]],
                                             "filters": {"refuse_seconds": seconds}})


def _launch(core: MasterCore, fw: str, offer: dict, tid: str, seconds: float,
            now: float) -> None:
    task = {"task_id": {"value": tid}, "agent_id": {"value": "A"}, "name": tid,
            "command": {"value": "true"},
            "resources": Resources.parse_flag("cpus:0.5;mem:10").to_json()}
    _call(core, fw, "ACCEPT", now, accept={
        "offer_ids": [offer["id"]], "filters": {"refuse_seconds": seconds},
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]})


def _finish(core: MasterCore, fw: str, tid: str) -> None:
    assert core.agent_update("A", fw, make_status(tid, "TASK_FINISHED", agent_id="A"),
                             "TASK_FINISHED")


def _summary(offer: dict) -> dict[str, float]:
    return Resources.from_json(offer["resources"]).summary()


def test_a_filter_outlives_an_offer_it_did_not_cover():
    core = _core()
    fw = _subscribe(core)
    first = _offers_at(core, 0)[0]
    _launch(core, fw, first, "t1", 100, 0)  # refuses the rest (1.5 cpus) for 100 s
    assert _offers_at(core, 0.5) == []
    _finish(core, fw, "t1")
    whole = _offers_at(core, 1)  # the whole agent is not inside the filter: offered
    assert len(whole) == 1 and _summary(whole[0])["cpus"] == 2
    _launch(core, fw, whole[0], "t2", 0, 1)  # no new filter
    # 1.5 cpus are left: still inside the first filter, which has not expired.
    assert _offers_at(core, 2) == []
    assert _offers_at(core, 99) == []
    again = _offers_at(core, 100.5)
    assert len(again) == 1 and _summary(again[0])["cpus"] == 1.5


def test_filters_of_one_agent_coexist_and_each_expires_on_its_own():
    core = _core()
    fw = _subscribe(core)
    _launch(core, fw, _offers_at(core, 0)[0], "t1", 100, 0)  # A: 1.5 cpus until 100
    _finish(core, fw, "t1")
    _decline(core, fw, _offers_at(core, 1)[0], 50, 1)  # B: the whole agent until 51
    assert len(core.frameworks[fw].filters["A"]) == 2
    assert _offers_at(core, 30) == []  # B covers the whole agent
    whole = _offers_at(core, 52)  # B expired; A does not cover 2 cpus
    assert len(whole) == 1 and _summary(whole[0])["cpus"] == 2
    _launch(core, fw, whole[0], "t2", 0, 52)
    assert _offers_at(core, 53) == []  # A (still alive) covers the 1.5 cpus left
    assert len(_offers_at(core, 101)) == 1


def test_revive_drops_every_filter_of_the_framework():
    core = _core()
    fw = _subscribe(core)
    _launch(core, fw, _offers_at(core, 0)[0], "t1", 100, 0)
    _finish(core, fw, "t1")
    _decline(core, fw, _offers_at(core, 1)[0], 100, 1)
    assert _offers_at(core, 2) == []
    _call(core, fw, "REVIVE", 2)
    assert core.frameworks[fw].filters == {}
    assert len(_offers_at(core, 2)) == 1


def test_a_filter_lasts_at_least_one_allocation_interval():
    core = _core(allocation_interval=1.0)
    fw = _subscribe(core)
    _decline(core, fw, _offers_at(core, 0)[0], 0.2, 0)
    assert _offers_at(core, 0.5) == []  # max(allocation interval, refuse_seconds)
    assert len(_offers_at(core, 1.1)) == 1


def test_refuse_seconds_is_capped_at_365_days():
    core = _core()
    fw = _subscribe(core)
    year = 365 * 86400.0
    _decline(core, fw, _offers_at(core, 0)[0], 10 * year, 0)
    assert _offers_at(core, year - 1) == []
    assert len(_offers_at(core, year + 1)) == 1


def test_deactivation_drops_the_filters():
    core = _core()
    fw = _subscribe(core)
    _decline(core, fw, _offers_at(core, 0)[0], 1000, 0)
    assert _offers_at(core, 1) == []
    core.disconnect(fw, "s1", 1)  # deactivateFramework(): its filters are cleared
    assert _subscribe(core, fw, stream="s2") == fw
    assert len(_offers_at(core, 2)) == 1
