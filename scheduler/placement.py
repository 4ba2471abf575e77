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

Speed (:mod:`scheduler.offer_index`): offers are indexed by account; per (researcher, static
constraints) the candidate offers are found once; per task shape a heap ordered by
fitness answers "best offer" in O(log n), refreshed lazily from a log of the offers changed since
it last answered. Tasks with the same researcher, resources and constraints share one
classification, and once a shape has no offer left its remaining tasks are refused at once.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter

from scheduler.constraints import Constraint, ConstraintError, compile_constraints, dynamic_reason
from scheduler.offer_index import EPSILON, RESOURCE_NAMES, Bucket, OfferIndex

__all__ = ["EPSILON", "Launch", "OfferView", "PendingTask", "Placement", "Resources",
           "RunningTask", "place"]


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class PendingTask:
    """A task waiting for resources; ``constraints`` are the spec's Marathon-style triples."""

    task_id: str
    job_id: str
    researcher: str
    priority: int
    resources: Resources
    constraints: tuple[tuple[str, str, str | None], ...]
    submitted_at: float


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Launch:
    """Launch ``task_id`` on ``offer_id``; ``with_executor``: also start our executor there."""

    task_id: str
    offer_id: str
    agent_id: str
    with_executor: bool


@dataclass(frozen=True, slots=True)
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
    index = OfferIndex(offers, executor_resources.as_tuple(), cluster_total.as_tuple())
    return _Round(index, running, eligible).run(pending, offers, max_launches)


class _TaskClass:
    """What all pending tasks of one (researcher, resources, constraints) share."""

    __slots__ = ("bucket", "cluster_free", "dynamic", "error", "fields", "need", "researcher",
                 "static")

    def __init__(self, researcher: str, need: tuple[float, float, float]) -> None:
        self.researcher = researcher
        self.need = need
        self.error: str | None = None
        self.static: tuple[Constraint, ...] = ()  # all, checked per offer once (presence only
        # for the dynamic ones)
        self.dynamic: tuple[Constraint, ...] = ()  # UNIQUE, MAX_PER: the job's other tasks
        self.cluster_free: tuple[Constraint, ...] = ()  # CLUSTER without value: pinned per job
        self.fields: tuple[str, ...] = ()  # fields whose per-job counts the checks need
        self.bucket: Bucket | None = None  # fixed when there is no cluster_free constraint


def _frozen(value: object) -> object:
    """Lists (at any depth) as tuples, so a constraint list can be a dict key."""
    return tuple(map(_frozen, value)) if isinstance(value, list | tuple) else value


def _classify(task: PendingTask) -> _TaskClass:
    r = task.resources
    cls = _TaskClass(task.researcher, (r.cpus, r.mem, r.disk))
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
    cls.static = constraints
    cls.dynamic = tuple(c for c in constraints if c.counted)
    cls.cluster_free = tuple(c for c in constraints if c.operator == "CLUSTER" and c.value is None)
    cls.fields = tuple(sorted({c.field for c in cls.dynamic + cls.cluster_free}))
    return cls


class _Round:
    """The working state of one :func:`place` call (lives only inside it)."""

    def __init__(self, index: OfferIndex, running: Sequence[RunningTask],
                 eligible: Mapping[str, frozenset[str]]) -> None:
        self.index = index
        self.running = running
        self.eligible = eligible
        self.inv = index.inv
        self.launches: list[Launch] = []
        self.unplaced: dict[str, str] = {}

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
                    value = self.index.agent_hostname.get(task.agent_id)
                if value is not None:
                    values[str(value)] = values.get(str(value), 0) + 1
        return counts

    def run(self, pending: Sequence[PendingTask], offers: Sequence[OfferView],
            max_launches: int | None) -> Placement:
        """The DRF loop (see the module doc)."""
        if len(set(map(attrgetter("task_id"), pending))) != len(pending):
            raise ValueError("duplicate task ids in pending")
        ordered = sorted(pending, key=attrgetter("submitted_at", "task_id"))
        ordered.sort(key=attrgetter("priority"), reverse=True)  # stable: FIFO within priority
        classes: dict[tuple, _TaskClass] = {}
        queues: dict[str, list[tuple[PendingTask, _TaskClass]]] = {}
        tracked: dict[str, tuple[str, ...]] = {}
        for task in ordered:
            r = task.resources
            key = (task.researcher, r.cpus, r.mem, r.disk, task.constraints)
            try:
                cls = classes.get(key)
            except TypeError:  # constraints given as lists (JSON): same meaning as tuples
                key = (*key[:4], _frozen(task.constraints))
                cls = classes.get(key)
            if cls is None:
                cls = classes[key] = _classify(task)
            queue = queues.get(task.researcher)
            if queue is None:
                queue = queues[task.researcher] = []
            queue.append((task, cls))
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
        index, unplaced, launches = self.index, self.unplaced, self.launches
        offer_ids, agent_ids = index.offer_ids, index.agent_ids
        best, take = index.best, index.take
        while turn and len(launches) < limit:
            _, researcher = turn[0]
            queue, pos = queues[researcher], position[researcher]
            end = len(queue)
            found = None
            while pos < end:
                task, cls = queue[pos]
                pos += 1
                bucket = cls.bucket
                if bucket is None or cls.dynamic:
                    found, bucket = self._slow(task, cls, counts)
                    if found is not None:
                        break
                    continue
                if bucket.dead is not None:
                    unplaced[task.task_id] = bucket.dead
                    continue
                found = best(bucket)
                if found is not None:
                    break
                bucket.dead = index.resource_reason(bucket)
                unplaced[task.task_id] = bucket.dead
            position[researcher] = pos
            if found is None:
                heapq.heappop(turn)
                continue
            need = cls.need
            with_executor = take(found, need, bucket)
            launches.append(Launch(task.task_id, offer_ids[found], agent_ids[found],
                                   with_executor))
            if cls.fields:
                for name, values in counts[task.job_id].items():
                    value = index.field_values(name)[found]
                    if value is not None:
                        values[value] = values.get(value, 0) + 1
            u = usage[researcher]
            u[0] += need[0]
            u[1] += need[1]
            u[2] += need[2]
            heapq.heapreplace(turn, (max(u[0] * ic, u[1] * im, u[2] * idisk), researcher))
        for researcher, queue in queues.items():
            for task, _ in queue[position[researcher]:]:
                unplaced[task.task_id] = f"launch limit of {max_launches} reached in this call"
        used = {offer_ids[i] for i, flag in enumerate(index.used) if flag}
        return Placement(tuple(launches), unplaced,
                         tuple(o.offer_id for o in offers if o.offer_id not in used))

    def _slow(self, task: PendingTask, cls: _TaskClass, counts: dict[str, dict[str, dict]]
              ) -> tuple[int | None, Bucket | None]:
        """Tasks with a bad spec, a first use of their class, or job-dependent constraints:
        the best offer and its bucket, or (None, None) with the reason recorded."""
        if cls.error is not None:
            self.unplaced[task.task_id] = cls.error
            return None, None
        index = self.index
        accounts = self.eligible.get(cls.researcher, frozenset())
        if not isinstance(accounts, frozenset):
            accounts = frozenset(accounts)  # a set or list works too (the key must hash)
        job_counts = counts.get(task.job_id)
        bucket = cls.bucket
        if bucket is None and not cls.cluster_free:
            bucket = cls.bucket = index.bucket(accounts, cls.researcher, cls.static, cls.need)
        elif bucket is None:
            pinned = []
            for constraint in cls.static:
                values = job_counts[constraint.field] if constraint in cls.cluster_free \
                    else None  # type: ignore[index]
                if not values:
                    pinned.append(constraint)
                elif len(values) == 1:
                    # The job's first task decided the value: now a plain static filter.
                    pinned.append(Constraint(constraint.field, "CLUSTER", next(iter(values)),
                                             pinned=True))
                else:
                    self.unplaced[task.task_id] = dynamic_reason(constraint, task.job_id, values)
                    return None, None
            bucket = index.bucket(accounts, cls.researcher, tuple(pinned), cls.need)
        if bucket.dead is not None:
            self.unplaced[task.task_id] = bucket.dead
            return None, None
        if cls.dynamic:
            shared = bucket
            bucket = shared.jobs.get(task.job_id)
            if bucket is None:
                bucket = shared.jobs[task.job_id] = shared.copy_for_job()
            if bucket.dead is None:
                found = index.best_for_job(bucket, cls.dynamic, job_counts)
                if found is not None:
                    return found, bucket
                # The job's other tasks of this shape get the same answer.
                bucket.dead = index.job_reason(bucket, cls.dynamic, task.job_id, job_counts)
            self.unplaced[task.task_id] = bucket.dead
            return None, None
        found = index.best(bucket)
        if found is not None:
            return found, bucket
        bucket.dead = index.resource_reason(bucket)
        self.unplaced[task.task_id] = bucket.dead
        return None, None
