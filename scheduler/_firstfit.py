"""TEMPORARY first-fit with placement's interface, used only until scheduler/placement.py
(issue 8a) lands; then this file goes. Same types and signature as placement.place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resources:
    cpus: float
    mem: float
    disk: float

    def fits(self, other: Resources) -> bool:
        return (self.cpus + 1e-9 >= other.cpus and self.mem + 1e-9 >= other.mem
                and self.disk + 1e-9 >= other.disk)

    def minus(self, other: Resources) -> Resources:
        return Resources(self.cpus - other.cpus, self.mem - other.mem, self.disk - other.disk)

    def plus(self, other: Resources) -> Resources:
        return Resources(self.cpus + other.cpus, self.mem + other.mem, self.disk + other.disk)


@dataclass(frozen=True)
class PendingTask:
    task_id: str
    job_id: str
    researcher: str
    priority: int
    resources: Resources
    constraints: tuple = ()
    submitted_at: float = 0.0


@dataclass(frozen=True)
class OfferView:
    offer_id: str
    agent_id: str
    hostname: str
    attributes: Mapping[str, str]
    available: Resources
    executor_running: bool


@dataclass(frozen=True)
class RunningTask:
    task_id: str
    job_id: str
    researcher: str
    agent_id: str
    attributes: Mapping[str, str]
    resources: Resources


@dataclass(frozen=True)
class Launch:
    task_id: str
    offer_id: str
    agent_id: str
    with_executor: bool


@dataclass(frozen=True)
class Placement:
    launches: tuple[Launch, ...]
    unplaced: Mapping[str, str] = field(default_factory=dict)
    unused_offers: tuple[str, ...] = ()


def place(pending: Sequence[PendingTask], offers: Sequence[OfferView], *,
          running: Sequence[RunningTask], eligible: Mapping[str, frozenset[str]],
          executor_resources: Resources, cluster_total: Resources,
          max_launches: int | None = None) -> Placement:
    left = {o.offer_id: o.available for o in offers}
    has_executor = {o.offer_id: o.executor_running for o in offers}
    launches: list[Launch] = []
    unplaced: dict[str, str] = {}
    for task in sorted(pending, key=lambda t: (-t.priority, t.submitted_at, t.task_id)):
        if max_launches is not None and len(launches) >= max_launches:
            unplaced[task.task_id] = "launch limit reached"
            continue
        for offer in offers:
            if offer.attributes.get("eos_account") not in eligible.get(task.researcher, ()):
                continue
            need = task.resources
            if not has_executor[offer.offer_id]:
                need = need.plus(executor_resources)
            if left[offer.offer_id].fits(need):
                left[offer.offer_id] = left[offer.offer_id].minus(need)
                launches.append(Launch(task.task_id, offer.offer_id, offer.agent_id,
                                       not has_executor[offer.offer_id]))
                has_executor[offer.offer_id] = True
                break
        else:
            unplaced[task.task_id] = "no offer fits"
    used = {launch.offer_id for launch in launches}
    return Placement(tuple(launches), unplaced,
                     tuple(o.offer_id for o in offers if o.offer_id not in used))
