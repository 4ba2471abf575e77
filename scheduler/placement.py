"""Placement: pending tasks x offers -> launches, and a reason for every task left waiting.

One pure call on plain values (the Fenzo model: no state kept between calls, fitness and
constraints as small plug-ins). The scheduler builds the inputs from its state and the current
offers, calls :func:`place`, then ACCEPTs the launches and DECLINEs ``unused_offers``.

The rules, in the order they decide:

1. Fair share between researchers: dominant resource fairness (DRF). Each researcher's dominant
   share is the largest of its cpus/mem/disk fractions of ``cluster_total``, over its running
   tasks plus what this call launched; the researcher with the smallest share (ties: by name)
   places its next task, until nobody has a task left to try.
2. Within a researcher: higher ``priority`` first, then FIFO (``submitted_at``, then task id).
3. Eligibility: a task may only go to an offer whose ``eos_account`` attribute is in
   ``eligible[researcher]`` (the researcher's registered workers).
4. The spec's constraints (:mod:`scheduler.constraints`), counted over the job's running tasks
   plus the launches of this call.
5. Resources: the task must fit what is left of the offer; the first task on an agent without
   our executor also pays ``executor_resources`` (once per agent and call).
6. Best fit: among the offers that pass, the one with the least free resources (each resource
   normalised by ``cluster_total``, summed) after the launch, so agents fill up and others stay
   free. A new executor counts as a cost, not as packing: an agent that already runs the
   executor wins over one of equal free resources that would need it.

A task that cannot be placed stays unplaced in this call: offers only shrink and constraints only
tighten as the call goes on, so retrying it later in the same call could not succeed. The one
exception is an agent with several offers, where an executor launched through one offer lowers
the cost of its siblings; a task missed because of that is placed at the next call.

Speed: offers are indexed by account; per (eligible accounts, static constraints) the candidate
offers are found once; per task shape a heap of candidates ordered by fitness answers "best
offer" in O(log n), refreshed lazily from a log of the offers changed since it last answered. A
shape with no offer left marks all its tasks unplaceable at once.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scheduler.constraints import (
    Constraint,
    ConstraintError,
    compile_constraints,
    dynamic_match,
    dynamic_reason,
    field_value,
    static_match,
)

# Offers and tasks come from floats (Mesos keeps 3 decimals); sums of many small tasks must
# still fit exactly-full offers.
EPSILON = 1e-6
RESOURCE_NAMES = ("cpus", "mem", "disk")


@dataclass(frozen=True)
class Resources:
    """Scalar resources: cpus, mem (MB), disk (MB)."""

    cpus: float
    mem: float
    disk: float

    def fits(self, available: Resources) -> bool:
        """Whether these resources fit within ``available`` (with a tiny float tolerance)."""
        return (self.cpus <= available.cpus + EPSILON and self.mem <= available.mem + EPSILON
                and self.disk <= available.disk + EPSILON)

    def plus(self, other: Resources) -> Resources:
        """Component-wise sum."""
        return Resources(self.cpus + other.cpus, self.mem + other.mem, self.disk + other.disk)

    def minus(self, other: Resources) -> Resources:
        """Component-wise difference (may be negative; check with :meth:`fits` first)."""
        return Resources(self.cpus - other.cpus, self.mem - other.mem, self.disk - other.disk)

    def dominant_share(self, total: Resources) -> float:
        """The largest fraction of ``total`` these take (resources whose total is 0 skipped)."""
        return max((mine / whole for mine, whole in zip(self.as_tuple(), total.as_tuple(),
                                                         strict=True) if whole > 0), default=0.0)

    def as_tuple(self) -> tuple[float, float, float]:
        """``(cpus, mem, disk)``."""
        return (self.cpus, self.mem, self.disk)


NO_RESOURCES = Resources(0.0, 0.0, 0.0)


@dataclass(frozen=True)
class PendingTask:
    """A task waiting for resources; ``constraints`` are the spec's Marathon-style triples."""

    task_id: str
    job_id: str
    researcher: str
    priority: int
    resources: Resources
    constraints: tuple[tuple[str, str, str | None], ...]
    submitted_at: float


@dataclass(frozen=True)
class OfferView:
    """What placement needs of a Mesos offer. ``attributes`` holds text/scalar attributes as
    strings (``eos_account`` among them); ``executor_running``: our executor already runs on
    this agent, so a task there costs no executor resources."""

    offer_id: str
    agent_id: str
    hostname: str
    attributes: Mapping[str, str]
    available: Resources
    executor_running: bool


@dataclass(frozen=True)
class RunningTask:
    """A task of ours that holds resources now (for fair share and constraints).

    ``attributes`` are its agent's attributes; for ``hostname`` constraints put the agent's
    hostname under the key ``hostname`` (otherwise the hostname of a current offer from the same
    agent is used, and a task whose hostname is unknown does not count for hostname constraints).
    """

    task_id: str
    job_id: str
    researcher: str
    agent_id: str
    attributes: Mapping[str, str]
    resources: Resources


@dataclass(frozen=True)
class Launch:
    """Launch ``task_id`` on ``offer_id``; ``with_executor``: also start our executor there."""

    task_id: str
    offer_id: str
    agent_id: str
    with_executor: bool


@dataclass(frozen=True)
class Placement:
    """The answer: launches in decision order, a one-line reason per task not launched, and
    the offers with nothing launched (to decline), in input order."""

    launches: tuple[Launch, ...]
    unplaced: Mapping[str, str]
    unused_offers: tuple[str, ...]


def place(pending: Sequence[PendingTask], offers: Sequence[OfferView], *,
          running: Sequence[RunningTask], eligible: Mapping[str, frozenset[str]],
          executor_resources: Resources, cluster_total: Resources,
          max_launches: int | None = None) -> Placement:
    """Place ``pending`` on ``offers`` (rules in the module doc); pure and deterministic.

    ``eligible`` maps a researcher to the eos accounts registered as its workers;
    ``max_launches`` caps the launches of this call (the rest wait with a reason). Raises
    ValueError for duplicate task or offer ids or a negative ``max_launches`` (caller bugs).
    """
    if max_launches is not None and max_launches < 0:
        raise ValueError(f"max_launches must be >= 0, got {max_launches}")
    return _Round(offers, running, eligible, executor_resources, cluster_total).run(
        pending, max_launches)


@dataclass
class _TaskClass:
    """What all pending tasks of one (researcher, resources, constraints) share."""

    researcher: str
    need: tuple[float, float, float]
    error: str | None = None
    static: tuple[Constraint, ...] = ()  # checked once per offer (presence for dynamic ones)
    dynamic: tuple[Constraint, ...] = ()  # UNIQUE, MAX_PER: depend on the job's other tasks
    cluster_free: tuple[Constraint, ...] = ()  # CLUSTER without value: pinned per job
    fields: tuple[str, ...] = ()  # fields whose per-job counts the dynamic checks need
    bucket: _Bucket | None = None  # when there is no cluster_free constraint


@dataclass
class _Group:
    """The offers a set of eligible accounts and static constraints allows, best fit first."""

    members: set[int]
    entries: list[tuple[float, int, int]]  # (score, offer index, version): sorted, so a heap
    log_position: int  # offers changed after this point are not reflected in ``entries``
    empty_reason: str | None
    eligible_count: int


@dataclass
class _Bucket:
    """One group's offers for one task shape: a lazy heap of (score, offer, version)."""

    group: _Group
    need: tuple[float, float, float]
    heap: list[tuple[float, int, int]]
    cursor: int
    dead: str | None = None
    job_dead: dict[str, str] = field(default_factory=dict)


class _Round:
    """The working state of one :func:`place` call (lives only inside it)."""

    def __init__(self, offers: Sequence[OfferView], running: Sequence[RunningTask],
                 eligible: Mapping[str, frozenset[str]], executor: Resources,
                 total: Resources) -> None:
        ordered = sorted(offers, key=lambda o: o.offer_id)  # ties in fitness: by offer id
        ids = [o.offer_id for o in ordered]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate offer ids in offers")
        self.offers = ordered
        self.input_order = [o.offer_id for o in offers]
        self.eligible = eligible
        self.inv = tuple(1.0 / whole if whole > 0 else 0.0 for whole in total.as_tuple())
        self.total = total
        self.executor = executor.as_tuple()
        self.executor_cost = sum(x * i for x, i in zip(self.executor, self.inv, strict=True))
        agents: dict[str, int] = {}
        self.agent_of: list[int] = []
        self.agent_offers: list[list[int]] = []
        self.agent_exec: list[bool] = []
        self.by_account: dict[str, list[int]] = {}
        self.agent_hostname: dict[str, str] = {}
        for index, offer in enumerate(ordered):
            agent = agents.get(offer.agent_id)
            if agent is None:
                agent = agents[offer.agent_id] = len(self.agent_offers)
                self.agent_offers.append([])
                self.agent_exec.append(False)
            self.agent_of.append(agent)
            self.agent_offers[agent].append(index)
            self.agent_exec[agent] = self.agent_exec[agent] or offer.executor_running
            self.agent_hostname.setdefault(offer.agent_id, offer.hostname)
            account = offer.attributes.get("eos_account")
            if account is not None:
                self.by_account.setdefault(str(account), []).append(index)
        self.free = [list(o.available.as_tuple()) for o in ordered]
        self.version = [0] * len(ordered)
        self.score = [self._score(i) for i in range(len(ordered))]
        self.used = [False] * len(ordered)
        self.log: list[int] = []  # offer indexes, appended whenever one changes
        self.groups: dict[tuple, _Group] = {}
        self.buckets: dict[tuple, _Bucket] = {}
        self.values: dict[str, list[str | None]] = {}  # field -> value per offer
        self.running = running
        self.launches: list[Launch] = []
        self.unplaced: dict[str, str] = {}

    # -- offers ----------------------------------------------------------------------------------
    def _score(self, i: int) -> float:
        free, (ic, im, idisk) = self.free[i], self.inv
        score = free[0] * ic + free[1] * im + free[2] * idisk
        return score if self.agent_exec[self.agent_of[i]] else score + self.executor_cost

    def _values(self, name: str) -> list[str | None]:
        values = self.values.get(name)
        if values is None:
            values = self.values[name] = [field_value(name, o.hostname, o.attributes)
                                          for o in self.offers]
        return values

    def _group(self, accounts: frozenset[str], researcher: str,
               static: tuple[Constraint, ...]) -> _Group:
        key = (accounts, static)
        group = self.groups.get(key)
        if group is not None:
            return group
        candidates = sorted(i for account in accounts for i in self.by_account.get(account, ()))
        eligible_count = len(candidates)
        reason = None
        if not candidates:
            reason = (f"no eligible agent: researcher {researcher} has no registered worker "
                      f"among {len(self.offers)} offers")
        for constraint in static:
            if not candidates:
                break
            values = self._values(constraint.field)
            candidates = [i for i in candidates if static_match(constraint, values[i])]
            if not candidates:
                reason = (f"constraint {constraint.describe()}: none of {eligible_count} "
                          f"eligible offers matches")
        entries = sorted((self.score[i], i, self.version[i]) for i in candidates)
        group = _Group(set(candidates), entries, len(self.log), reason, eligible_count)
        self.groups[key] = group
        return group

    def _bucket(self, accounts: frozenset[str], researcher: str, static: tuple[Constraint, ...],
                need: tuple[float, float, float]) -> _Bucket:
        key = (accounts, static, need)
        bucket = self.buckets.get(key)
        if bucket is None:
            group = self._group(accounts, researcher, static)
            bucket = _Bucket(group, need, list(group.entries), group.log_position,
                             dead=group.empty_reason)
            self.buckets[key] = bucket
        return bucket

    def _best(self, bucket: _Bucket, dynamic: tuple[Constraint, ...],
              counts: dict[str, dict[str, int]] | None) -> tuple[int | None, Constraint | None]:
        """The best offer of ``bucket`` passing ``dynamic``; else (None, constraint that
        blocked every offer with room, or None when no offer has room)."""
        heap, version, free, agent_exec, agent_of = (
            bucket.heap, self.version, self.free, self.agent_exec, self.agent_of)
        log = self.log
        if bucket.cursor < len(log):
            # Offers changed since this heap last answered: push their current entries.
            changed = bucket.group.members.intersection(log[bucket.cursor:])
            bucket.cursor = len(log)
            for i in changed:
                if self._room(i, bucket.need):
                    heapq.heappush(heap, (self.score[i], i, version[i]))
        c, m, d = bucket.need
        ec, em, ed = self.executor
        aside: list[tuple[float, int, int]] = []
        blocked: Constraint | None = None
        found = None
        while heap:
            _, i, v = entry = heap[0]
            if v != version[i]:
                heapq.heappop(heap)  # stale: the current entry was pushed when it changed
                continue
            room = free[i]
            if agent_exec[agent_of[i]]:
                fits = (c <= room[0] + EPSILON and m <= room[1] + EPSILON
                        and d <= room[2] + EPSILON)
            else:
                fits = (c + ec <= room[0] + EPSILON and m + em <= room[1] + EPSILON
                        and d + ed <= room[2] + EPSILON)
            if not fits:
                heapq.heappop(heap)  # offers only shrink: never again for this shape
                continue
            if dynamic:
                failed = self._dynamic_failure(i, dynamic, counts)
                if failed is not None:
                    blocked = blocked or failed
                    aside.append(heapq.heappop(heap))
                    continue
            found = i
            break
        for entry in aside:
            heapq.heappush(heap, entry)
        return found, (None if found is not None else blocked)

    def _dynamic_failure(self, i: int, dynamic: tuple[Constraint, ...],
                         counts: dict[str, dict[str, int]] | None) -> Constraint | None:
        for constraint in dynamic:
            value = self._values(constraint.field)[i]
            if value is None or not dynamic_match(constraint, value,
                                                  counts.get(constraint.field, {})):  # type: ignore[union-attr]
                return constraint
        return None

    def _room(self, i: int, need: tuple[float, float, float]) -> bool:
        room = self.free[i]
        extra = (0.0, 0.0, 0.0) if self.agent_exec[self.agent_of[i]] else self.executor
        return all(n + x <= r + EPSILON for n, x, r in zip(need, extra, room, strict=True))

    def _resource_reason(self, bucket: _Bucket) -> str:
        """Why no offer of the bucket's group has room for its shape (one line)."""
        members = sorted(bucket.group.members)
        best = [-math.inf] * 3
        for i in members:
            extra = (0.0, 0.0, 0.0) if self.agent_exec[self.agent_of[i]] else self.executor
            for k in range(3):
                best[k] = max(best[k], self.free[i][k] - extra[k])
        short = [k for k in range(3) if bucket.need[k] > best[k] + EPSILON]
        executor_note = "" if all(self.agent_exec[self.agent_of[i]] for i in members) else (
            " (after the executor's own resources on agents without it)")
        count = len(members)
        if short:
            names = ", ".join(RESOURCE_NAMES[k] for k in short)
            needs = ", ".join(f"{bucket.need[k]:g}" for k in short)
            frees = ", ".join(f"{max(best[k], 0.0):g}" for k in short)
            return (f"insufficient {names}: needs {needs}, at most {frees} free on {count} "
                    f"eligible offers{executor_note}")
        needs = " ".join(f"{name} {value:g}" for name, value in zip(
            RESOURCE_NAMES, bucket.need, strict=True))
        return (f"insufficient resources: none of {count} eligible offers has {needs} free "
                f"at once{executor_note}")

    # -- tasks -----------------------------------------------------------------------------------
    def _classify(self, task: PendingTask, classes: dict[tuple, _TaskClass]) -> _TaskClass:
        r = task.resources
        key = (task.researcher, r.cpus, r.mem, r.disk, task.constraints)
        cls = classes.get(key)
        if cls is not None:
            return cls
        cls = classes[key] = _TaskClass(task.researcher, (r.cpus, r.mem, r.disk))
        bad = [name for name, value in zip(RESOURCE_NAMES, cls.need, strict=True)
               if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value))]
        if bad:
            cls.error = f"invalid resources: {', '.join(bad)} must be a number >= 0"
            return cls
        try:
            constraints = compile_constraints(task.constraints)
        except ConstraintError as err:
            cls.error = str(err)
            return cls
        # Static filters first in the spec's order; the dynamic ones' presence check too.
        cls.static = constraints
        cls.dynamic = tuple(c for c in constraints if c.operator in ("UNIQUE", "MAX_PER"))
        cls.cluster_free = tuple(c for c in constraints
                                 if c.operator == "CLUSTER" and c.value is None)
        cls.fields = tuple(sorted({c.field for c in cls.dynamic + cls.cluster_free}))
        return cls

    def _job_counts(self, tracked: dict[str, tuple[str, ...]]) -> dict[str, dict[str, dict]]:
        """Per tracked job and field: value -> number of the job's running tasks there."""
        counts: dict[str, dict[str, dict]] = {
            job: {name: {} for name in names} for job, names in tracked.items()}
        for task in self.running:
            per_field = counts.get(task.job_id)
            if per_field is None:
                continue
            for name, values in per_field.items():
                value = task.attributes.get(name)
                if value is None and name == "hostname":
                    value = self.agent_hostname.get(task.agent_id)
                if value is not None:
                    values[str(value)] = values.get(str(value), 0) + 1
        return counts

    def run(self, pending: Sequence[PendingTask], max_launches: int | None) -> Placement:
        """The DRF loop (see the module doc)."""
        ids = {t.task_id for t in pending}
        if len(ids) != len(pending):
            raise ValueError("duplicate task ids in pending")
        classes: dict[tuple, _TaskClass] = {}
        queues: dict[str, list[tuple[PendingTask, _TaskClass]]] = {}
        tracked: dict[str, tuple[str, ...]] = {}
        for task in sorted(pending, key=lambda t: (-t.priority, t.submitted_at, t.task_id)):
            cls = self._classify(task, classes)
            queues.setdefault(task.researcher, []).append((task, cls))
            if cls.fields:
                known = tracked.get(task.job_id, ())
                if not set(cls.fields) <= set(known):
                    tracked[task.job_id] = tuple(sorted(set(known) | set(cls.fields)))
        counts = self._job_counts(tracked)
        usage: dict[str, list[float]] = {name: [0.0, 0.0, 0.0] for name in queues}
        for task in self.running:
            used = usage.get(task.researcher)
            if used is not None:
                used[0] += task.resources.cpus
                used[1] += task.resources.mem
                used[2] += task.resources.disk
        ic, im, idisk = self.inv
        turn = [(max(u[0] * ic, u[1] * im, u[2] * idisk), name) for name, u in usage.items()]
        heapq.heapify(turn)
        position = dict.fromkeys(queues, 0)
        limit = math.inf if max_launches is None else max_launches
        while turn and len(self.launches) < limit:
            _, researcher = turn[0]
            queue, pos = queues[researcher], position[researcher]
            placed = False
            while pos < len(queue) and not placed:
                task, cls = queue[pos]
                pos += 1
                placed = self._try(task, cls, counts)
            position[researcher] = pos
            if placed:
                u = usage[researcher]
                u[0] += task.resources.cpus
                u[1] += task.resources.mem
                u[2] += task.resources.disk
                heapq.heapreplace(turn, (max(u[0] * ic, u[1] * im, u[2] * idisk), researcher))
            else:
                heapq.heappop(turn)
        for researcher, queue in queues.items():
            for task, _ in queue[position[researcher]:]:
                self.unplaced[task.task_id] = f"launch limit of {max_launches} reached in this call"
        used = {self.offers[i].offer_id for i, flag in enumerate(self.used) if flag}
        return Placement(tuple(self.launches), self.unplaced,
                         tuple(o for o in self.input_order if o not in used))

    def _try(self, task: PendingTask, cls: _TaskClass,
             counts: dict[str, dict[str, dict]]) -> bool:
        """Launch ``task`` on its best offer, or record why it waits."""
        if cls.error is not None:
            self.unplaced[task.task_id] = cls.error
            return False
        accounts = self.eligible.get(cls.researcher, frozenset())
        job_counts = counts.get(task.job_id)
        bucket = cls.bucket
        if bucket is None:
            static = cls.static
            if cls.cluster_free:
                pinned = []
                for constraint in static:
                    values = job_counts[constraint.field] if constraint in cls.cluster_free \
                        else None  # type: ignore[index]
                    if values is None or not values:
                        pinned.append(constraint)
                    elif len(values) == 1:
                        # The job's first task decided the value: now a plain static filter.
                        pinned.append(Constraint(constraint.field, "CLUSTER", next(iter(values)),
                                                 pinned=True))
                    else:
                        self.unplaced[task.task_id] = dynamic_reason(
                            constraint, task.job_id, values)
                        return False
                bucket = self._bucket(accounts, cls.researcher, tuple(pinned), cls.need)
            else:
                bucket = cls.bucket = self._bucket(accounts, cls.researcher, static, cls.need)
        if bucket.dead is not None:
            self.unplaced[task.task_id] = bucket.dead
            return False
        if cls.dynamic:
            reason = bucket.job_dead.get(task.job_id)
            if reason is not None:
                self.unplaced[task.task_id] = reason
                return False
        best, blocked = self._best(bucket, cls.dynamic, job_counts)
        if best is None:
            if blocked is None:
                bucket.dead = self._resource_reason(bucket)
                self.unplaced[task.task_id] = bucket.dead
            else:
                reason = dynamic_reason(blocked, task.job_id, job_counts[blocked.field])
                bucket.job_dead[task.job_id] = reason  # the job's other tasks: same answer
                self.unplaced[task.task_id] = reason
            return False
        self._launch(best, task, cls, job_counts)
        return True

    def _launch(self, i: int, task: PendingTask, cls: _TaskClass,
                job_counts: dict[str, dict] | None) -> None:
        agent = self.agent_of[i]
        room = self.free[i]
        with_executor = not self.agent_exec[agent]
        if with_executor:
            for k in range(3):
                room[k] -= self.executor[k]
            self.agent_exec[agent] = True
            for sibling in self.agent_offers[agent]:
                if sibling != i:  # no executor cost there any more
                    self.version[sibling] += 1
                    self.score[sibling] = self._score(sibling)
                    self.log.append(sibling)
        for k in range(3):
            room[k] -= cls.need[k]
        self.version[i] += 1
        self.score[i] = self._score(i)
        self.log.append(i)
        self.used[i] = True
        offer = self.offers[i]
        self.launches.append(Launch(task.task_id, offer.offer_id, offer.agent_id, with_executor))
        if job_counts is not None:
            for name, values in job_counts.items():
                value = self._values(name)[i]
                if value is not None:
                    values[value] = values.get(value, 0) + 1
