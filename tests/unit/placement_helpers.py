"""Builders shared by the placement tests (plain values, no services)."""

from __future__ import annotations

from scheduler.placement import OfferView, PendingTask, Placement, Resources, RunningTask, place

NO_EXECUTOR = Resources(0.0, 0.0, 0.0)
EXECUTOR = Resources(0.1, 64.0, 0.0)
TOTAL = Resources(100.0, 100_000.0, 100_000.0)


def offer(offer_id: str, cpus: float = 4.0, mem: float = 4000.0, disk: float = 1000.0, *,
          account: str | None = "w1", agent: str | None = None, host: str | None = None,
          executor: bool = True, **attributes: str) -> OfferView:
    """An offer of agent ``agent`` (default: a<offer_id>) on host ``host`` (default: h<id>)."""
    attrs = dict(attributes)
    if account is not None:
        attrs["eos_account"] = account
    return OfferView(offer_id, agent or f"a-{offer_id}", host or f"h-{offer_id}", attrs,
                     Resources(cpus, mem, disk), executor)


def task(task_id: str, cpus: float = 1.0, mem: float = 100.0, disk: float = 0.0, *,
         job: str = "job", researcher: str = "alice", priority: int = 0, at: float = 0.0,
         constraints: tuple = ()) -> PendingTask:
    return PendingTask(task_id, job, researcher, priority, Resources(cpus, mem, disk),
                       tuple(constraints), at)


def running(task_id: str, agent: str, *, job: str = "job", researcher: str = "alice",
            cpus: float = 1.0, mem: float = 100.0, disk: float = 0.0,
            **attributes: str) -> RunningTask:
    return RunningTask(task_id, job, researcher, agent, dict(attributes),
                       Resources(cpus, mem, disk))


def run(pending, offers, *, running_tasks=(), eligible=None, executor=NO_EXECUTOR,
        total=TOTAL, max_launches=None) -> Placement:
    """place() with everyone's workers registered for alice, bob and carol by default."""
    if eligible is None:
        accounts = frozenset(o.attributes.get("eos_account") for o in offers) - {None}
        eligible = {name: accounts for name in ("alice", "bob", "carol")}
    return place(pending, offers, running=list(running_tasks), eligible=eligible,
                 executor_resources=executor, cluster_total=total, max_launches=max_launches)


def where(result: Placement) -> dict[str, str]:
    """task id -> offer id of each launch."""
    return {launch.task_id: launch.offer_id for launch in result.launches}
