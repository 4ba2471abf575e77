"""The scheduler's bookkeeping, without I/O: jobs, instances, attempts, and what to do next.

Every method takes ``now`` (wall-clock seconds) and appends what must happen outside to
``self.outbox`` as effects (:mod:`scheduler.effects`): persist a job or an instance (with the
accounting credits of a terminal task, in one ZooKeeper transaction), launch, kill, archive,
forget. The edge (``scheduler/service.py``) calls these from one loop and carries the effects
out in order, persisting before it talks to Mesos, and acknowledges a status update only after
the effects of that update are durable.

Instance lifecycle: ``pending`` → ``staging`` (launched) → ``running`` → ``finished``; a failure
(non-zero exit, TASK_ERROR, a kill at its timeout) goes back to ``pending`` after an exponential
backoff until ``max_retries`` is spent, then ``failed``; a lost attempt (agent lost, task gone,
dropped, unreachable) goes back to ``pending`` at once (bounded by ``max_lost``); ``cancel``
turns pending instances ``cancelled`` and kills the others. A finished instance never runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from scheduler import effects as fx
from scheduler.accounting import Leadership, task_credits, time_discrepancy_us
from scheduler.placement import OfferView, PendingTask, Placement, Resources, RunningTask, place
from scheduler.records import Instance, Job, parse_task_id, task_id_of

TERMINAL_FROM_AGENT = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR"}
LOST = {"TASK_LOST", "TASK_GONE", "TASK_DROPPED", "TASK_UNREACHABLE", "TASK_GONE_BY_OPERATOR",
        "TASK_UNKNOWN"}
ACTIVE = {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"}
KILL_RESEND_S = 30.0
MAX_LEADERS = 32


@dataclass(frozen=True)
class Update:
    """A task status update, reduced to what the core needs (the edge parses pymesos's)."""

    task_id: str
    state: str
    agent_id: str | None = None
    reason: str | None = None
    message: str | None = None
    data: Mapping | None = None        # the executor's JSON (run_us, ...), when any
    timestamp: float | None = None     # when the agent/master generated it (seconds)
    reliable: bool = True              # has a uuid (retried until acknowledged)


@dataclass
class Config:
    """Policy knobs (flags of `clusterjobs scheduler`)."""

    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_lost: int = 10
    retention_s: float = 3600.0
    time_tolerance_s: float = 1.0  # executor time beyond the observed interval that is flagged


@dataclass
class Core:
    """All scheduler state; not thread-safe (one loop calls it)."""

    framework_id: str = ""
    config: Config = field(default_factory=Config)
    jobs: dict[str, Job] = field(default_factory=dict)
    leaders: list[Leadership] = field(default_factory=list)
    agent_attributes: dict[str, Mapping[str, str]] = field(default_factory=dict)
    outbox: list = field(default_factory=list)

    # -- jobs ------------------------------------------------------------------------------------
    def add_job(self, job_id: str, spec, datadir: str, now: float) -> bool:
        """Track an accepted job (``spec`` is a JobSpec); False when it is already known."""
        if job_id in self.jobs:
            return False
        job = Job(job_id=job_id, spec=spec, datadir=datadir, submitted_at=now,
                  instances=[Instance(i) for i in range(spec.instances)])
        self.jobs[job_id] = job
        self.outbox.append(fx.SaveJob(job_id, new=True))
        return True

    def cancel(self, job_id: str, now: float) -> str:
        """Cancel a job: pending instances are cancelled, active ones killed. Returns its state."""
        job = self.jobs[job_id]
        if job.state in ("finished", "failed", "cancelled") and not job.cancelled:
            return job.state
        job.cancelled = True
        self.outbox.append(fx.SaveJob(job_id))
        for inst in job.instances:
            if inst.state == "pending":
                inst.state, inst.reason = "cancelled", "cancelled by request"
                self.outbox.append(fx.SaveInstance(job_id, inst.index))
            elif inst.state in ("staging", "running", "killing"):
                self._kill(job, inst, "cancel", now)
        self._maybe_done(job, now)
        return job.state

    # -- offers ----------------------------------------------------------------------------------
    def wants_offers(self, now: float) -> bool:
        """True while some instance waits for a launch (backoff included: offers will be
        needed soon, and SUPPRESS/REVIVE churn costs more than declining a few)."""
        return any(inst.state == "pending" for job in self.jobs.values()
                   for inst in job.instances)

    def pending_tasks(self, now: float) -> list[PendingTask]:
        """Instances ready to launch now, as placement's input."""
        out = []
        for job in self.jobs.values():
            spec = job.spec
            res = Resources(spec.cpus, spec.mem, spec.disk)
            for inst in job.instances:
                if inst.state == "pending" and inst.not_before <= now:
                    out.append(PendingTask(
                        task_id=task_id_of(job.job_id, inst.index, inst.attempts),
                        job_id=job.job_id, researcher=spec.researcher, priority=spec.priority,
                        resources=res, constraints=tuple(spec.constraints),
                        submitted_at=job.submitted_at))
        return out

    def running_tasks(self) -> list[RunningTask]:
        """Launched instances (for fair share and constraints)."""
        out = []
        for job in self.jobs.values():
            spec = job.spec
            res = Resources(spec.cpus, spec.mem, spec.disk)
            for inst in job.instances:
                if inst.state in ("staging", "running", "killing") and inst.agent_id:
                    out.append(RunningTask(
                        task_id=inst.task_id or "", job_id=job.job_id,
                        researcher=spec.researcher, agent_id=inst.agent_id,
                        attributes=self.agent_attributes.get(inst.agent_id, {}),
                        resources=res))
        return out

    def place_offers(self, offers: list[OfferView], now: float, *,
                     eligible: Mapping[str, frozenset[str]], executor_resources: Resources,
                     cluster_total: Resources,
                     place_fn: Callable[..., Placement] = place) -> Placement:
        """Match offers with ready instances; every launch is recorded (a SaveInstance then a
        LaunchTask effect, so the attempt is durable before Mesos hears of it)."""
        for offer in offers:
            self.agent_attributes[offer.agent_id] = offer.attributes
        placement = place_fn(self.pending_tasks(now), offers, running=self.running_tasks(),
                             eligible=eligible, executor_resources=executor_resources,
                             cluster_total=cluster_total)
        by_offer = {o.offer_id: o for o in offers}
        for launch in placement.launches:
            job_id, index, attempt = parse_task_id(launch.task_id)
            job = self.jobs[job_id]
            inst = job.instances[index]
            offer = by_offer[launch.offer_id]
            inst.state, inst.task_id, inst.agent_id = "staging", launch.task_id, launch.agent_id
            inst.worker = offer.attributes.get("eos_account")
            inst.launched_at, inst.running_at, inst.kill = now, None, None
            inst.attempts = attempt + 1
            self.outbox.append(fx.SaveInstance(job_id, index))
            self.outbox.append(fx.LaunchTask(launch.task_id, job_id, index, attempt,
                                             launch.agent_id, launch.offer_id,
                                             launch.with_executor))
            self.outbox.append(fx.SaveJob(job_id))
        return placement

    # -- status updates --------------------------------------------------------------------------
    def on_update(self, update: Update, now: float) -> None:
        """Apply one status update; the edge acknowledges it after persisting the effects."""
        try:
            job_id, index, _attempt = parse_task_id(update.task_id)
        except ValueError:
            return
        job = self.jobs.get(job_id)
        inst = job.instances[index] if job and 0 <= index < len(job.instances) else None
        if inst is None or inst.task_id != update.task_id or inst.state not in (
                "staging", "running", "killing"):
            # A stale attempt (replaced after it was reported lost) or one of a job already
            # done: a copy still running must not run on.
            if update.state in ACTIVE and update.agent_id:
                self.outbox.append(fx.KillTask(update.task_id, update.agent_id))
            return
        # pymesos's executor driver stamps whole seconds (int): too coarse to time a task, so
        # only a fractional (float) timestamp is trusted; otherwise the time it arrived.
        at = update.timestamp if isinstance(update.timestamp, float) else now
        if update.agent_id:
            inst.agent_id = update.agent_id
        if update.state in ("TASK_RUNNING", "TASK_STARTING"):
            if update.state == "TASK_RUNNING" and inst.state == "staging":
                inst.state = "running"
                self.outbox.append(fx.SaveInstance(job_id, index))
            # Only the agent's own update times the run: a reconciliation answer arrives
            # whenever asked, and the agent's update, if not yet acknowledged, will follow.
            if update.state == "TASK_RUNNING" and update.reliable and inst.running_at is None:
                inst.running_at = at
                self.outbox.append(fx.SaveInstance(job_id, index))
            return
        if update.state == "TASK_KILLING":
            return
        if update.state in TERMINAL_FROM_AGENT and not update.reliable:
            # A reconciliation answer: the agent's own update (with the executor's timing) is
            # retried until acknowledged, so wait for it rather than lose the worker's time.
            return
        if update.state not in TERMINAL_FROM_AGENT and update.state not in LOST:
            return
        self._terminal(job, inst, update, at, now)

    def _terminal(self, job: Job, inst: Instance, update: Update, at: float, now: float) -> None:
        data = update.data or {}
        run_us = data.get("run_us") if isinstance(data.get("run_us"), int) else None
        credits = task_credits(
            framework_id=self.framework_id, task_id=inst.task_id or update.task_id,
            job_id=job.job_id, instance=inst.index, attempt=inst.attempts - 1,
            researcher=job.spec.researcher, worker=inst.worker, executor_run_us=run_us,
            running_at_us=_us(inst.running_at) if inst.running_at is not None else None,
            launched_at_us=_us(inst.launched_at), finished_at_us=_us(at),
            leaders=self.leaders)
        if run_us is not None:
            inst.run_us = (inst.run_us or 0) + run_us
        discrepancy = time_discrepancy_us(
            run_us, _us(inst.running_at) if inst.running_at is not None else None, _us(at))
        flagged = discrepancy is not None and discrepancy > self.config.time_tolerance_s * 1e6
        if discrepancy is not None:
            inst.discrepancy_us = max(inst.discrepancy_us or 0, discrepancy)
        if flagged and "time_discrepancy" not in inst.flags:
            inst.flags = [*inst.flags, "time_discrepancy"]
        reason = _reason(update)
        state = update.state
        timed_out = inst.kill == "timeout" and state == "TASK_KILLED"
        ended = "timeout" if timed_out else state[5:].lower()
        inst.history = [*inst.history, [inst.attempts - 1, ended, reason[:120]]][-4:]
        if state == "TASK_FINISHED":
            inst.state, inst.reason = "finished", None
        elif inst.kill == "cancel" or (job.cancelled and state == "TASK_KILLED"):
            inst.state, inst.reason = "cancelled", "cancelled by request"
        elif state in LOST:
            inst.lost += 1
            inst.reason = reason
            if inst.lost > self.config.max_lost or job.cancelled:
                inst.state = "failed" if not job.cancelled else "cancelled"
                inst.reason = f"lost {inst.lost} times; last: {reason}"
            else:
                inst.state, inst.not_before = "pending", now
        else:
            if inst.kill == "timeout":
                reason = f"timed out after {job.spec.timeout_seconds:g} s"
            inst.failures += 1
            inst.reason = reason
            if inst.failures > job.spec.max_retries:
                inst.state = "failed"
                inst.reason = (f"failed {inst.failures} times (max_retries "
                               f"{job.spec.max_retries}); last: {reason}")
            else:
                delay = min(self.config.backoff_base_s * 2 ** (inst.failures - 1),
                            self.config.backoff_max_s)
                inst.state, inst.not_before = "pending", now + delay
        inst.kill, inst.kill_sent_at = None, None
        if inst.state != "pending":
            inst.finished_at = at
        self.outbox.append(fx.SaveInstance(job.job_id, inst.index, tuple(credits),
                                           discrepancy_us=discrepancy, flagged=flagged))
        self._maybe_done(job, now)

    # -- time ------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Timeouts (KILL), kill retries, and forgetting archived jobs after the retention."""
        for job in list(self.jobs.values()):
            timeout = job.spec.timeout_seconds
            for inst in job.instances:
                if inst.state in ("staging", "running") and timeout is not None \
                        and now - inst.launched_at > timeout:
                    self._kill(job, inst, "timeout", now)
                elif inst.state == "killing" and now - (inst.kill_sent_at or 0) > KILL_RESEND_S:
                    self._kill(job, inst, inst.kill or "timeout", now)
            if job.archived_at is not None and now - job.archived_at >= self.config.retention_s:
                del self.jobs[job.job_id]
                self.outbox.append(fx.ForgetJob(job.job_id, len(job.instances)))

    def archived(self, job_id: str, now: float) -> None:
        """The edge wrote the job's record to HDFS."""
        job = self.jobs.get(job_id)
        if job and job.archived_at is None:
            job.archived_at = now
            self.outbox.append(fx.SaveJob(job_id))

    # -- reconciliation and leadership -----------------------------------------------------------
    def reconcile_targets(self) -> list[tuple[str, str | None]]:
        """(task id, agent id) of every launched attempt, for explicit reconciliation."""
        return [(inst.task_id, inst.agent_id) for job in self.jobs.values()
                for inst in job.instances
                if inst.state in ("staging", "running", "killing") and inst.task_id]

    def set_leader(self, account: str | None, now: float) -> None:
        """A (re)subscription to a master: from now on its account earns dispatcher time."""
        if self.leaders and self.leaders[-1].account == account:
            return
        self.leaders = [*self.leaders, Leadership(_us(now), account)][-MAX_LEADERS:]
        self.outbox.append(fx.SaveLeaders())

    # -- helpers ---------------------------------------------------------------------------------
    def _kill(self, job: Job, inst: Instance, why: str, now: float) -> None:
        inst.state, inst.kill, inst.kill_sent_at = "killing", why, now
        self.outbox.append(fx.SaveInstance(job.job_id, inst.index))
        if inst.task_id and inst.agent_id:
            self.outbox.append(fx.KillTask(inst.task_id, inst.agent_id))

    def _maybe_done(self, job: Job, now: float) -> None:
        if job.state in ("finished", "failed", "cancelled") and job.finished_at is None:
            job.finished_at = now
            self.outbox.append(fx.SaveJob(job.job_id))
            self.outbox.append(fx.ArchiveJob(job.job_id))

    def load(self, jobs: Iterable[Job], leaders: list[Leadership]) -> None:
        """Restore state read from the store (after a restart)."""
        self.jobs = {job.job_id: job for job in jobs}
        self.leaders = list(leaders)
        for job in self.jobs.values():
            if job.finished_at is not None and job.archived_at is None:
                self.outbox.append(fx.ArchiveJob(job.job_id))

    def take_effects(self) -> list:
        out, self.outbox = self.outbox, []
        return out


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _reason(update: Update) -> str:
    parts = [update.state]
    if update.reason:
        parts.append(update.reason)
    if update.message:
        parts.append(" ".join(update.message.split())[:200])
    return ": ".join(parts)
