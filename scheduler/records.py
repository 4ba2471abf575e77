"""Job and instance records: the scheduler's durable state, and their compact JSON form.

An instance's record stays small (well under 2 KB: a few numbers, ids and the last four
attempts' one-line reasons, each cut to 120 characters), so ZooKeeper holds many.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

DONE = ("finished", "failed", "cancelled")
ACTIVE = ("staging", "running", "killing")
_TASK_ID = re.compile(r"^([a-z0-9][a-z0-9-]*)\.(\d+)\.(\d+)$")


def task_id_of(job_id: str, index: int, attempt: int) -> str:
    """Mesos task id of an attempt: ``<job-id>.<instance>.<attempt>``."""
    return f"{job_id}.{index}.{attempt}"


def parse_task_id(task_id: str) -> tuple[str, int, int]:
    """Inverse of :func:`task_id_of`; ValueError for a task id that is not ours."""
    match = _TASK_ID.match(task_id)
    if not match:
        raise ValueError(f"not a clusterjobs task id: {task_id!r}")
    return match.group(1), int(match.group(2)), int(match.group(3))


@dataclass
class Instance:
    """One instance of a job and its current (or last) attempt."""

    index: int
    state: str = "pending"      # pending, staging, running, killing, finished, failed, cancelled
    attempts: int = 0           # launches so far; the current attempt is attempts - 1
    failures: int = 0           # counted against max_retries
    lost: int = 0               # lost attempts (agent gone, dropped, ...), not counted
    task_id: str | None = None
    agent_id: str | None = None
    worker: str | None = None   # the agent's eos_account
    launched_at: float = 0.0
    running_at: float | None = None
    finished_at: float | None = None
    not_before: float = 0.0     # backoff: no launch before this time
    kill: str | None = None     # why a kill was sent: "timeout" or "cancel"
    kill_sent_at: float | None = None
    run_us: int | None = None   # executor-measured run time, summed over attempts
    reason: str | None = None
    history: list = field(default_factory=list)  # [[attempt, state, reason], ...] (last 4)
    # Trust: the largest executor time beyond the observed interval over its attempts (us),
    # and flags such as "time_discrepancy" (beyond the scheduler's --time-tolerance).
    discrepancy_us: int | None = None
    flags: list = field(default_factory=list)

    _KEYS = {"index": "i", "state": "s", "attempts": "a", "failures": "f", "lost": "l",
             "task_id": "t", "agent_id": "ag", "worker": "w", "launched_at": "L",
             "running_at": "R", "finished_at": "F", "not_before": "nb", "kill": "k",
             "kill_sent_at": "ks", "run_us": "ru", "reason": "r", "history": "h",
             "discrepancy_us": "d", "flags": "fl"}

    def to_record(self) -> dict:
        """Compact JSON form (defaults and empty values left out)."""
        out = {}
        for name, key in self._KEYS.items():
            value = getattr(self, name)
            # A measured discrepancy of 0 is kept: it says the times agreed (None: unknown).
            if name == "index" or value not in (None, 0, 0.0, [], "pending") or (
                    name == "discrepancy_us" and value is not None):
                out[key] = value
        return out

    @classmethod
    def from_record(cls, record: dict) -> Instance:
        values = {name: record[key] for name, key in cls._KEYS.items() if key in record}
        return cls(**values)

    @property
    def done(self) -> bool:
        return self.state in DONE


@dataclass
class Job:
    """An accepted job: its spec (a scheduler.spec.JobSpec), protocol folder and instances."""

    job_id: str
    spec: object
    datadir: str
    submitted_at: float
    instances: list[Instance]
    cancelled: bool = False
    finished_at: float | None = None
    archived_at: float | None = None

    @property
    def state(self) -> str:
        """queued, running, finished, failed or cancelled (the status CLI's words)."""
        states = [inst.state for inst in self.instances]
        if all(s in DONE for s in states):
            if "failed" in states:
                return "failed"
            return "cancelled" if "cancelled" in states else "finished"
        if self.cancelled:
            return "cancelled"
        if any(s != "pending" for s in states) or any(i.attempts for i in self.instances):
            return "running"
        return "queued"

    def counts(self) -> dict[str, int]:
        """Instances by state."""
        out: dict[str, int] = {}
        for inst in self.instances:
            out[inst.state] = out.get(inst.state, 0) + 1
        return out

    def to_record(self) -> dict:
        """The job's own znode: spec and times (instances have their own znodes)."""
        return {"id": self.job_id, "spec": self.spec.to_json(), "datadir": self.datadir,
                "submitted_at": self.submitted_at, "instances": len(self.instances),
                "cancelled": self.cancelled, "finished_at": self.finished_at,
                "archived_at": self.archived_at}

    @classmethod
    def from_record(cls, record: dict, instances: list[Instance],
                    parse_spec: Callable[..., object]) -> Job:
        """``parse_spec(spec_dict, datadir=...)`` is scheduler.spec.parse_spec."""
        return cls(job_id=record["id"], spec=parse_spec(record["spec"], datadir=record["datadir"]),
                   datadir=record["datadir"], submitted_at=record["submitted_at"],
                   instances=instances, cancelled=record.get("cancelled", False),
                   finished_at=record.get("finished_at"), archived_at=record.get("archived_at"))

    def summary(self, *, with_tasks: bool = True) -> dict:
        """The JSON of `clusterjobs status JOB --json` and of HTTP /jobs/<id>."""
        out = {"id": self.job_id, "name": getattr(self.spec, "name", ""),
               "researcher": getattr(self.spec, "researcher", ""), "state": self.state,
               "instances": len(self.instances), "counts": self.counts(),
               "submitted_at": self.submitted_at, "finished_at": self.finished_at}
        if with_tasks:
            out["tasks"] = [{"instance": i.index, "state": i.state, "attempts": i.attempts,
                             "agent_id": i.agent_id, "worker": i.worker, "run_us": i.run_us,
                             "reason": i.reason, "task_id": i.task_id,
                             "discrepancy_us": i.discrepancy_us, "flags": list(i.flags),
                             "output_dir": f"{self.datadir}/jobs/{self.job_id}/{i.index}"}
                            for i in self.instances]
        return out
