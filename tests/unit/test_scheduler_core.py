"""The scheduler core's lifecycle: launches, retries with backoff, timeouts, lost agents,
cancel, credits, reconciliation answers, records. Pure: no services."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from scheduler import effects as fx
from scheduler.accounting import CreditEntry, Leadership, credit_id, split_by_leadership
from scheduler.core import Core, OfferView, Resources, Update
from scheduler.records import Instance, Job, parse_task_id


@dataclass(frozen=True)
class FakeSpec:
    """The JobSpec fields the core reads."""

    researcher: str = "alice"
    name: str = "job"
    cpus: float = 0.5
    mem: float = 64.0
    disk: float = 0.0
    instances: int = 2
    max_retries: int = 1
    timeout_seconds: float | None = None
    constraints: tuple = ()
    priority: int = 0
    env: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"researcher": self.researcher, "name": self.name, "instances": self.instances}


ELIGIBLE = {"alice": frozenset({"worker1", "worker2"})}
EXEC = Resources(0.1, 32.0, 0.0)
TOTAL = Resources(8, 8192, 0)


def offer(n: int, account: str = "worker1", cpus: float = 4.0) -> OfferView:
    return OfferView(offer_id=f"o{n}", agent_id=f"a-{account}", hostname="h",
                     attributes={"eos_account": account},
                     available=Resources(cpus, 4096.0, 1000.0), executor_running=False)


def core_with(spec: FakeSpec, now: float = 100.0) -> Core:
    core = Core(framework_id="fw")
    core.set_leader("master1", now - 10)
    assert core.add_job("j-1", spec, "/protocols/alice", now)
    core.take_effects()
    return core


def launch_all(core: Core, now: float, account: str = "worker1") -> list[fx.LaunchTask]:
    core.place_offers([offer(int(now * 10), account)], now, eligible=ELIGIBLE,
                      executor_resources=EXEC, cluster_total=TOTAL)
    return [e for e in core.take_effects() if isinstance(e, fx.LaunchTask)]


def finish(core: Core, task_id: str, now: float, run_us: int = 1_000_000) -> list:
    core.on_update(Update(task_id, "TASK_RUNNING", "a-worker1", timestamp=now - 2), now - 2)
    core.on_update(Update(task_id, "TASK_FINISHED", "a-worker1", data={"run_us": run_us},
                          timestamp=now), now)
    return core.take_effects()


def test_launch_persists_before_launching_and_finishes_with_credits():
    core = core_with(FakeSpec())
    core.place_offers([offer(1)], 101.0, eligible=ELIGIBLE, executor_resources=EXEC,
                      cluster_total=TOTAL)
    effects = core.take_effects()
    kinds = [type(e).__name__ for e in effects]
    assert kinds.index("SaveInstance") < kinds.index("LaunchTask")
    launches = [e for e in effects if isinstance(e, fx.LaunchTask)]
    assert [launch.task_id for launch in launches] == ["j-1.0.0", "j-1.1.0"]
    effects = finish(core, "j-1.0.0", 110.0, run_us=1_500_000)
    saves = [e for e in effects if isinstance(e, fx.SaveInstance) and e.credits]
    (save,) = saves
    worker = next(c for c in save.credits if c.kind == "worker")
    # min(executor 1.5 s, observed RUNNING->terminal 2 s)
    assert worker.time_us == 1_500_000 and worker.account == "worker1"
    assert worker.credit_id == credit_id("fw", "j-1.0.0", "worker", "worker1")
    dispatcher = next(c for c in save.credits if c.kind == "dispatcher")
    assert dispatcher.account == "master1" and dispatcher.time_us == 9_000_000
    assert core.jobs["j-1"].state == "running"
    effects = finish(core, "j-1.1.0", 111.0, run_us=5_000_000)
    worker = next(c for e in effects if isinstance(e, fx.SaveInstance) for c in e.credits
              if c.kind == "worker")
    assert worker.time_us == 2_000_000  # observed interval is the smaller one
    assert core.jobs["j-1"].state == "finished"
    assert any(isinstance(e, fx.ArchiveJob) for e in effects)


def test_finished_instance_never_relaunched_and_stale_running_is_killed():
    core = core_with(FakeSpec(instances=1))
    (launch,) = launch_all(core, 101.0)
    finish(core, launch.task_id, 105.0)
    assert launch_all(core, 106.0) == []
    core.on_update(Update(launch.task_id, "TASK_RUNNING", "a-worker1"), 107.0)
    assert core.take_effects() == [fx.KillTask(launch.task_id, "a-worker1")]


def test_failure_retries_with_backoff_then_fails_with_reason():
    core = core_with(FakeSpec(instances=1, max_retries=2))
    core.config.backoff_base_s = 4.0
    (launch,) = launch_all(core, 101.0)
    core.on_update(Update(launch.task_id, "TASK_FAILED", "a-worker1",
                          "REASON_COMMAND_EXECUTOR_FAILED", "exit 3: boom"), 102.0)
    assert launch_all(core, 103.0) == []          # backoff 4 s
    (second,) = launch_all(core, 106.5)
    assert parse_task_id(second.task_id) == ("j-1", 0, 1)
    core.on_update(Update(second.task_id, "TASK_FAILED", "a-worker1", message="exit 3"), 107.0)
    assert launch_all(core, 110.0) == []          # backoff 8 s
    (third,) = launch_all(core, 115.5)
    core.on_update(Update(third.task_id, "TASK_FAILED", "a-worker1", message="exit 3"), 116.0)
    job = core.jobs["j-1"]
    assert job.state == "failed"
    assert job.instances[0].reason.startswith("failed 3 times (max_retries 2)")
    assert "exit 3" in job.instances[0].reason
    assert launch_all(core, 200.0) == []


def test_timeout_kills_then_retries_and_reason_says_timeout():
    core = core_with(FakeSpec(instances=1, max_retries=0, timeout_seconds=5))
    (launch,) = launch_all(core, 101.0)
    core.on_update(Update(launch.task_id, "TASK_RUNNING", "a-worker1"), 102.0)
    core.tick(105.0)
    assert not any(isinstance(e, fx.KillTask) for e in core.take_effects())
    core.tick(106.5)
    assert fx.KillTask(launch.task_id, "a-worker1") in core.take_effects()
    core.on_update(Update(launch.task_id, "TASK_KILLED", "a-worker1"), 107.0)
    job = core.jobs["j-1"]
    assert job.state == "failed" and "timed out after 5 s" in job.instances[0].reason


def test_lost_agent_reruns_elsewhere_without_spending_retries():
    core = core_with(FakeSpec(instances=1, max_retries=0))
    (launch,) = launch_all(core, 101.0)
    core.on_update(Update(launch.task_id, "TASK_LOST", "a-worker1", "REASON_AGENT_REMOVED",
                          reliable=False), 102.0)
    (again,) = launch_all(core, 102.5, account="worker2")
    assert again.agent_id == "a-worker2"
    core.on_update(Update(again.task_id, "TASK_RUNNING", "a-worker2"), 103.0)
    core.on_update(Update(again.task_id, "TASK_FINISHED", "a-worker2"), 104.0)
    assert core.jobs["j-1"].state == "finished"


def test_reconciliation_terminal_answer_waits_for_the_reliable_update():
    core = core_with(FakeSpec(instances=1))
    (launch,) = launch_all(core, 101.0)
    core.on_update(Update(launch.task_id, "TASK_FINISHED", "a-worker1", reliable=False), 102.0)
    assert core.jobs["j-1"].instances[0].state == "staging"
    assert core.reconcile_targets() == [(launch.task_id, "a-worker1")]


def test_cancel_kills_running_and_cancels_pending():
    core = core_with(FakeSpec(instances=3))
    core.place_offers([offer(1, cpus=0.7)], 101.0, eligible=ELIGIBLE, executor_resources=EXEC,
                      cluster_total=TOTAL)
    launches = [e for e in core.take_effects() if isinstance(e, fx.LaunchTask)]
    assert len(launches) == 1
    core.cancel("j-1", 102.0)
    assert fx.KillTask(launches[0].task_id, "a-worker1") in core.take_effects()
    assert core.jobs["j-1"].state == "cancelled"
    core.on_update(Update(launches[0].task_id, "TASK_KILLED", "a-worker1"), 103.0)
    assert core.jobs["j-1"].counts() == {"cancelled": 3}
    assert launch_all(core, 104.0) == []


def test_unregistered_account_gets_no_work():
    core = core_with(FakeSpec(instances=1))
    assert launch_all(core, 101.0, account="stranger") == []


def test_dispatcher_time_split_by_leadership():
    leaders = [Leadership(0, "m1"), Leadership(5_000, "m2")]
    assert split_by_leadership(1_000, 9_000, leaders) == [(0, "m1", 4_000), (1, "m2", 4_000)]
    assert split_by_leadership(6_000, 9_000, leaders) == [(0, "m2", 3_000)]


def test_credit_entry_json_round_trip_and_checks():
    entry = CreditEntry("worker", "alice", "w1", 5, 7, "t", "j", 0, 0, 9)
    assert CreditEntry.from_json(entry.to_bytes()) == entry
    assert entry.znode_name == "0000000000000007"
    with pytest.raises(ValueError, match="missing researcher"):
        CreditEntry.from_json({"kind": "worker"})
    with pytest.raises(ValueError, match="kind"):
        CreditEntry.from_json({**entry.to_json(), "kind": "boss"})


def test_records_round_trip_and_stay_small():
    inst = Instance(3, state="running", attempts=4, failures=3, task_id="j-1.3.3",
                    agent_id="a" * 60, worker="worker1", launched_at=1e9, running_at=1e9 + 1,
                    history=[[i, "failed", "x" * 120] for i in range(4)])
    text = json.dumps(inst.to_record())
    assert len(text) < 2048
    assert Instance.from_record(json.loads(text)) == inst
    job = Job("j-1", FakeSpec(), "/d", 1.0, [Instance(0)])
    back = Job.from_record(job.to_record(), job.instances, lambda d, datadir: FakeSpec())
    assert back.state == "queued" and back.datadir == "/d"


def test_only_the_agents_running_update_times_the_run():
    core = core_with(FakeSpec(instances=1))
    (launch,) = launch_all(core, 101.0)
    core.on_update(Update(launch.task_id, "TASK_RUNNING", "a-worker1", reliable=False), 102.0)
    inst = core.jobs["j-1"].instances[0]
    assert inst.state == "running" and inst.running_at is None
    # pymesos's executor driver stamps whole seconds: the arrival time is used instead.
    core.on_update(Update(launch.task_id, "TASK_RUNNING", "a-worker1", timestamp=90), 103.5)
    assert inst.running_at == 103.5


def test_offer_view_and_update_parsing():
    import base64

    from scheduler.service import EXECUTOR_ID, offer_view, parse_update

    offer = {"id": {"value": "o1"}, "agent_id": {"value": "a1"}, "hostname": "h1",
             "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}},
                           {"name": "mem", "type": "SCALAR", "scalar": {"value": 512}},
                           {"name": "ports", "type": "RANGES", "ranges": {"range": []}}],
             "attributes": [{"name": "eos_account", "type": "TEXT", "text": {"value": "w1"}},
                            {"name": "rack", "type": "SCALAR", "scalar": {"value": 3.0}}],
             "executor_ids": [{"value": EXECUTOR_ID}]}
    view = offer_view(offer)
    assert view.available == Resources(2.0, 512.0, 0.0)
    assert view.attributes == {"eos_account": "w1", "rack": "3"}
    assert view.executor_running is True
    assert offer_view({**offer, "executor_ids": []}).executor_running is False
    data = base64.b64encode(b'{"run_us": 5}').decode()
    update = parse_update({"task_id": {"value": "j.0.0"}, "state": "TASK_FINISHED",
                           "agent_id": {"value": "a1"}, "data": data, "uuid": "dXU=",
                           "timestamp": 1.5})
    assert (update.data, update.reliable, update.timestamp) == ({"run_us": 5}, True, 1.5)
    bad = parse_update({"task_id": {"value": "j.0.0"}, "state": "TASK_LOST", "data": "!!"})
    assert bad.data is None and bad.reliable is False and bad.agent_id is None


def test_executor_time_beyond_the_observed_interval_is_flagged():
    """Trust: the credit is the smaller time; an executor claiming more than the scheduler
    saw (beyond the tolerance) flags the task in its status and in the effect for metrics."""
    core = core_with(FakeSpec())
    launch_all(core, 101.0)
    # RUNNING at 108, FINISHED at 110: 2 s observed. 2.5 s claimed: 0.5 s within 1 s.
    effects = finish(core, "j-1.0.0", 110.0, run_us=2_500_000)
    (save,) = [e for e in effects if isinstance(e, fx.SaveInstance) and e.credits]
    assert (save.discrepancy_us, save.flagged) == (500_000, False)
    # 5 s claimed: 3 s beyond the observed 2 s, flagged; 2 s credited.
    effects = finish(core, "j-1.1.0", 111.0, run_us=5_000_000)
    (save,) = [e for e in effects if isinstance(e, fx.SaveInstance) and e.credits]
    assert (save.discrepancy_us, save.flagged) == (3_000_000, True)
    assert next(c for c in save.credits if c.kind == "worker").time_us == 2_000_000
    tasks = core.jobs["j-1"].summary()["tasks"]
    assert [(t["discrepancy_us"], t["flags"]) for t in tasks] == [
        (500_000, []), (3_000_000, ["time_discrepancy"])]
    inst = core.jobs["j-1"].instances[1]
    again = Instance.from_record(json.loads(json.dumps(inst.to_record())))
    assert (again.discrepancy_us, again.flags) == (3_000_000, ["time_discrepancy"])


def test_an_honest_shorter_executor_time_is_not_a_discrepancy():
    core = core_with(FakeSpec())
    launch_all(core, 101.0)
    effects = finish(core, "j-1.0.0", 110.0, run_us=1_000_000)
    (save,) = [e for e in effects if isinstance(e, fx.SaveInstance) and e.credits]
    assert (save.discrepancy_us, save.flagged) == (0, False)
    inst = core.jobs["j-1"].instances[0]
    again = Instance.from_record(json.loads(json.dumps(inst.to_record())))
    assert again.discrepancy_us == 0  # agreed times, not unknown ones, after a restart


def test_a_finished_attempt_whose_running_update_never_came_is_still_credited():
    # The executor's TASK_RUNNING can be lost (its sends give up when the agent does not
    # answer, under load): the worker's time is then bounded by the interval the scheduler
    # saw from the launch to the terminal update, never dropped to zero.
    core = core_with(FakeSpec(instances=2))
    first, second = launch_all(core, 101.0)
    for launch, run_us in ((first, 3_000_000), (second, 9_000_000)):
        core.on_update(Update(launch.task_id, "TASK_STARTING", "a-worker1", timestamp=101.5),
                       101.5)
        core.on_update(Update(launch.task_id, "TASK_FINISHED", "a-worker1",
                              data={"run_us": run_us}, timestamp=106.0), 106.0)
    worker = [c for e in core.take_effects() if isinstance(e, fx.SaveInstance)
              for c in e.credits if c.kind == "worker"]
    assert [(c.task_id, c.time_us) for c in worker] == [
        (first.task_id, 3_000_000), (second.task_id, 5_000_000)]
    assert core.jobs["j-1"].state == "finished"
