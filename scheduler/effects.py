"""What the scheduler core asks its edge to do, in order (see :mod:`scheduler.core`)."""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.accounting import CreditEntry


@dataclass(frozen=True)
class SaveJob:
    """Write the job's record (``new``: it was just accepted; create, never overwrite)."""

    job_id: str
    new: bool = False


@dataclass(frozen=True)
class SaveInstance:
    """Write one instance's record, with the outbox credits of its terminal task, atomically."""

    job_id: str
    index: int
    credits: tuple[CreditEntry, ...] = ()
    # Of the terminal task: executor time beyond the observed interval, and whether it passed
    # the tolerance (metrics only).
    discrepancy_us: int | None = None
    flagged: bool = False


@dataclass(frozen=True)
class LaunchTask:
    """Launch attempt ``attempt`` of an instance on an offer (after its SaveInstance)."""

    task_id: str
    job_id: str
    index: int
    attempt: int
    agent_id: str
    offer_id: str
    with_executor: bool


@dataclass(frozen=True)
class KillTask:
    task_id: str
    agent_id: str


@dataclass(frozen=True)
class ArchiveJob:
    """Write the finished job's record to ``<datadir>/jobs/<job-id>/job.json`` in HDFS."""

    job_id: str


@dataclass(frozen=True)
class ForgetJob:
    """Drop an archived job's records from ZooKeeper (its retention has passed)."""

    job_id: str
    instances: int


@dataclass(frozen=True)
class SaveLeaders:
    """Write the list of leadership intervals (for dispatcher credits)."""
