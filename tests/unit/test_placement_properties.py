"""Property-style placement tests on seeded random inputs (pure): no offer over-committed, every
task launched or given a reason, eligibility and executor rules kept, and the fast placement
equal, launch for launch, to a slow reference that scans every offer for every task."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from scheduler.placement import (
    EPSILON,
    Launch,
    OfferView,
    PendingTask,
    Placement,
    Resources,
    RunningTask,
    place,
)

RESEARCHERS = ("alice", "bob", "carol")
CONSTRAINTS = [
    (), (), (), (),
    (("rack", "UNIQUE", None),),
    (("hostname", "UNIQUE", None),),
    (("rack", "CLUSTER", None),),
    (("rack", "CLUSTER", "r1"),),
    (("rack", "MAX_PER", "2"),),
    (("rack", "LIKE", "r[01]"),),
    (("rack", "UNLIKE", "r0"),),
    (("hostname", "LIKE", "host-[0-4]"), ("rack", "MAX_PER", "1")),
    (("rack", "MAX_PER", "zero"),),  # bad
    (("rack", "LIKE", "("),),  # bad
]


def _scenario(seed: int, *, shared_agents: bool):
    rng = random.Random(seed)
    accounts = [f"w{i}" for i in range(4)]
    offers = []
    for i in range(rng.randint(0, 15)):
        agent = f"agent-{rng.randrange(6)}" if shared_agents else f"agent-{i}"
        attributes = {"eos_account": rng.choice(accounts)}
        if rng.random() < 0.85:
            attributes["rack"] = f"r{rng.randrange(4)}"
        offers.append(OfferView(
            f"offer-{i:02d}", agent, f"host-{rng.randrange(8)}", attributes,
            Resources(rng.choice([0.5, 1, 2, 4, 8]), rng.choice([256, 1024, 4096]),
                      rng.choice([0, 100, 1000])),
            rng.random() < 0.5))
    jobs = [(f"job-{j}", rng.choice(RESEARCHERS), rng.choice(CONSTRAINTS), rng.randrange(3))
            for j in range(rng.randint(1, 8))]
    pending = []
    for i in range(rng.randint(0, 60)):
        job, researcher, constraints, priority = rng.choice(jobs)
        pending.append(PendingTask(
            f"task-{i:03d}", job, researcher, priority,
            Resources(rng.choice([0.1, 0.5, 1, 2]), rng.choice([64, 128, 512, 2048]),
                      rng.choice([0, 10, 500])),
            constraints, float(rng.randrange(10))))
    running = [RunningTask(f"run-{i}", job, researcher, f"agent-{rng.randrange(8)}",
                           {"rack": f"r{rng.randrange(4)}"}, Resources(1, 256, 0))
               for i, (job, researcher, _, _) in enumerate(rng.choices(jobs, k=rng.randrange(6)))]
    eligible = {name: frozenset(rng.sample(accounts, rng.randint(0, 4))) for name in RESEARCHERS}
    executor = rng.choice([Resources(0, 0, 0), Resources(0.1, 32, 0), Resources(0.5, 128, 10)])
    total = Resources(64, 65536, 4000)
    limit = rng.choice([None, None, None, rng.randrange(10)])
    return pending, offers, running, eligible, executor, total, limit


def _reference(pending, offers, running, eligible, executor, total, limit) -> Placement:
    """The rules written plainly: every task scans every offer."""
    inv = [1 / t if t > 0 else 0.0 for t in total.as_tuple()]
    ex = executor.as_tuple()
    free = {o.offer_id: list(o.available.as_tuple()) for o in offers}
    has_exec = {o.agent_id: False for o in offers}
    for o in offers:
        has_exec[o.agent_id] |= o.executor_running
    host_of = {}
    for o in sorted(offers, key=lambda o: o.offer_id):
        host_of.setdefault(o.agent_id, o.hostname)
    placed: dict[str, list[dict]] = {}  # job -> attributes (+hostname) of its tasks
    for t in running:
        attrs = dict(t.attributes)
        if "hostname" not in attrs and t.agent_id in host_of:
            attrs["hostname"] = host_of[t.agent_id]
        placed.setdefault(t.job_id, []).append(attrs)
    queues = {}
    for t in sorted(pending, key=lambda t: (-t.priority, t.submitted_at, t.task_id)):
        queues.setdefault(t.researcher, []).append(t)
    usage = {r: [0.0, 0.0, 0.0] for r in queues}
    for t in running:
        if t.researcher in usage:
            for k, v in enumerate(t.resources.as_tuple()):
                usage[t.researcher][k] += v
    launches, unplaced, used = [], {}, set()

    def allowed(task, o):
        for field, op, value in task.constraints:
            mine = o.hostname if field == "hostname" else o.attributes.get(field)
            others = [a.get(field) for a in placed.get(task.job_id, [])]
            others = [x for x in others if x is not None]
            if op == "LIKE" and not (mine is not None and re.fullmatch(value, mine)):
                return False
            if op == "UNLIKE" and mine is not None and re.fullmatch(value, mine):
                return False
            if op == "UNIQUE" and (mine is None or mine in others):
                return False
            if op == "CLUSTER" and (mine is None or (value is not None and mine != value)
                                    or (value is None and any(x != mine for x in others))):
                return False
            if op == "MAX_PER" and (mine is None or others.count(mine) >= int(value)):
                return False
        return True

    while queues and (limit is None or len(launches) < limit):
        researcher = min(queues, key=lambda r: (
            max(u * i for u, i in zip(usage[r], inv, strict=True)), r))
        task = queues[researcher].pop(0)
        if not queues[researcher]:
            del queues[researcher]
        if any((op == "MAX_PER" and value == "zero") or (op == "LIKE" and value == "(")
               for _, op, value in task.constraints):
            unplaced[task.task_id] = "bad"
            continue
        best = None
        for o in offers:
            if o.attributes.get("eos_account") not in eligible.get(researcher, ()):
                continue
            if not allowed(task, o):
                continue
            extra = (0, 0, 0) if has_exec[o.agent_id] else ex
            if not all(n + x <= f + EPSILON for n, x, f in zip(
                    task.resources.as_tuple(), extra, free[o.offer_id], strict=True)):
                continue
            f = free[o.offer_id]
            score = f[0] * inv[0] + f[1] * inv[1] + f[2] * inv[2]
            if not has_exec[o.agent_id]:
                score += sum(x * i for x, i in zip(ex, inv, strict=True))
            if best is None or (score, o.offer_id) < best[0]:
                best = ((score, o.offer_id), o)
        if best is None:
            unplaced[task.task_id] = "no"
            continue
        o = best[1]
        room = free[o.offer_id]
        with_executor = not has_exec[o.agent_id]
        if with_executor:
            for k in range(3):
                room[k] -= ex[k]
            has_exec[o.agent_id] = True
        for k in range(3):
            room[k] -= task.resources.as_tuple()[k]
            usage[researcher][k] += task.resources.as_tuple()[k]
        used.add(o.offer_id)
        attrs = dict(o.attributes, hostname=o.hostname)
        placed.setdefault(task.job_id, []).append(attrs)
        launches.append(Launch(task.task_id, o.offer_id, o.agent_id, with_executor))
    for queue in queues.values():
        for task in queue:
            unplaced[task.task_id] = "limit"
    return Placement(tuple(launches), unplaced,
                     tuple(o.offer_id for o in offers if o.offer_id not in used))


def _check_invariants(pending, offers, eligible, result: Placement, limit) -> None:
    by_id = {o.offer_id: o for o in offers}
    tasks = {t.task_id: t for t in pending}
    launched = [x.task_id for x in result.launches]
    assert len(launched) == len(set(launched))
    assert set(launched).isdisjoint(result.unplaced)
    assert set(launched) | set(result.unplaced) == set(tasks)  # every task: launch or reason
    for reason in result.unplaced.values():
        assert reason and "\n" not in reason
    if limit is not None:
        assert len(launched) <= limit
    spent: dict[str, list[float]] = {o: [0.0, 0.0, 0.0] for o in by_id}
    executors = Counter()
    seen_agents: set[str] = set()
    for launch in result.launches:
        o, t = by_id[launch.offer_id], tasks[launch.task_id]
        assert launch.agent_id == o.agent_id
        assert o.attributes.get("eos_account") in eligible.get(t.researcher, ())
        for k, v in enumerate(t.resources.as_tuple()):
            spent[o.offer_id][k] += v
        if launch.with_executor:
            executors[o.agent_id] += 1
            assert o.agent_id not in seen_agents  # the agent's first launch starts it
        seen_agents.add(o.agent_id)
    return spent, executors


@pytest.mark.parametrize("seed", range(150))
def test_random_inputs_keep_every_rule(seed):
    pending, offers, running, eligible, executor, total, limit = _scenario(
        seed, shared_agents=True)
    result = place(pending, offers, running=running, eligible=eligible,
                   executor_resources=executor, cluster_total=total, max_launches=limit)
    spent, executors = _check_invariants(pending, offers, eligible, result, limit)
    running_exec = {o.agent_id for o in offers if o.executor_running}
    launched_agents = {x.agent_id for x in result.launches}
    for agent in launched_agents:
        assert executors[agent] == (0 if agent in running_exec else 1)
    for o in offers:
        paid = [x for x in result.launches if x.offer_id == o.offer_id and x.with_executor]
        need = spent[o.offer_id]
        if paid:
            need = [n + e for n, e in zip(need, executor.as_tuple(), strict=True)]
        assert all(n <= a + 1e-6 for n, a in zip(need, o.available.as_tuple(), strict=True)), \
            f"offer {o.offer_id} over-committed"
    used = {x.offer_id for x in result.launches}
    assert result.unused_offers == tuple(o.offer_id for o in offers if o.offer_id not in used)


@pytest.mark.parametrize("seed", range(150))
def test_fast_placement_equals_the_reference(seed):
    pending, offers, running, eligible, executor, total, limit = _scenario(
        seed, shared_agents=False)
    fast = place(pending, offers, running=running, eligible=eligible,
                 executor_resources=executor, cluster_total=total, max_launches=limit)
    slow = _reference(pending, offers, running, eligible, executor, total, limit)
    assert fast.launches == slow.launches
    assert set(fast.unplaced) == set(slow.unplaced)
    assert fast.unused_offers == slow.unused_offers


def test_the_scenarios_exercise_placement():
    """Guard against a generator that never launches or never refuses."""
    launched = refused = 0
    for seed in range(150):
        pending, offers, running, eligible, executor, total, limit = _scenario(
            seed, shared_agents=False)
        result = place(pending, offers, running=running, eligible=eligible,
                       executor_resources=executor, cluster_total=total, max_launches=limit)
        launched += len(result.launches)
        refused += len(result.unplaced)
    assert launched > 500 and refused > 500
