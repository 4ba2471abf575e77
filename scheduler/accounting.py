"""Accounting outbox entries: what the scheduler owes contributors for each terminal task.

Pure: no I/O. The scheduler writes one :class:`CreditEntry` per credited contributor to
ZooKeeper ``<state path>/outbox/<credit id as 16 hex digits>`` (the JSON of ``to_json``) in the
same transaction that records the terminal task, before acknowledging the status update; the
pusher (issue 9) drains them into ``newjob`` / ``updatedptch`` actions. ``credit_id`` makes a
re-push a no-op on chain, so a crash anywhere never pays a second twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

KINDS = ("worker", "dispatcher")


@dataclass(frozen=True)
class CreditEntry:
    """Time (µs) of one task credited to one contributor account for one researcher."""

    kind: str               # "worker" (an agent's eos_account) or "dispatcher" (a master's)
    researcher: str
    account: str
    time_us: int
    credit_id: int          # uint64, see :func:`credit_id`
    task_id: str
    job_id: str
    instance: int
    attempt: int
    finished_at_us: int

    def to_json(self) -> dict:
        """The entry as a JSON object (the outbox znode's content)."""
        return asdict(self)

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def znode_name(self) -> str:
        """Its name under ``outbox/``: unique per credit, so writing it twice is harmless."""
        return f"{self.credit_id:016x}"

    @classmethod
    def from_json(cls, data: Mapping | bytes | str) -> CreditEntry:
        """Parse an outbox entry; raises ValueError naming what is wrong."""
        if isinstance(data, bytes | str):
            data = json.loads(data)
        if not isinstance(data, Mapping):
            raise ValueError("outbox entry: not a JSON object")
        try:
            entry = cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except KeyError as exc:
            raise ValueError(f"outbox entry: missing {exc.args[0]}") from None
        if entry.kind not in KINDS:
            raise ValueError(f"outbox entry: kind {entry.kind!r} is not one of {KINDS}")
        if not isinstance(entry.time_us, int) or entry.time_us < 1:
            raise ValueError(f"outbox entry: time_us {entry.time_us!r} is not a positive int")
        return entry


def credit_id(framework_id: str, task_id: str, kind: str, account: str, n: int = 0) -> int:
    """The credit's identity (uint64): the same task, kind, account and leadership interval
    always give the same id, so the contracts can drop a duplicate push."""
    text = f"{framework_id}/{task_id}/{kind}/{account}/{n}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


@dataclass(frozen=True)
class Leadership:
    """A master led from ``since_us`` (until the next one's start); its dispatcher account."""

    since_us: int
    account: str | None


def split_by_leadership(start_us: int, end_us: int,
                        leaders: Sequence[Leadership]) -> list[tuple[int, str | None, int]]:
    """Split ``[start_us, end_us)`` over the leadership intervals (sorted by ``since_us``):
    ``[(n, account, µs)]`` with ``n`` the index of the piece, pieces of no time dropped.
    Time before the first known leader goes to the first one (it was leading at launch)."""
    if end_us <= start_us or not leaders:
        return []
    pieces: list[tuple[int, str | None, int]] = []
    for i, leader in enumerate(leaders):
        since = start_us if i == 0 else max(start_us, leader.since_us)
        until = end_us if i + 1 == len(leaders) else min(end_us, leaders[i + 1].since_us)
        if until > since:
            pieces.append((len(pieces), leader.account, until - since))
    return pieces


def time_discrepancy_us(executor_run_us: int | None, running_at_us: int | None,
                        finished_at_us: int) -> int | None:
    """How much more time the executor reports than the scheduler observed from TASK_RUNNING
    to the terminal update (0 when it reports less; None when either is unknown). Reporting
    less is normal (transport, staging); reporting more is what ``min`` keeps from being paid
    and what is flagged beyond a tolerance."""
    if executor_run_us is None or running_at_us is None:
        return None
    return max(0, int(executor_run_us) - (finished_at_us - running_at_us))


def task_credits(*, framework_id: str, task_id: str, job_id: str, instance: int, attempt: int,
                 researcher: str, worker: str | None, executor_run_us: int | None,
                 running_at_us: int | None, launched_at_us: int, finished_at_us: int,
                 leaders: Sequence[Leadership]) -> list[CreditEntry]:
    """Credits of one terminal task.

    Worker time is the smaller of the executor's measured run time and the interval the
    scheduler observed from TASK_RUNNING to the terminal update; when no TASK_RUNNING time is
    known (the executor's update was lost), from the launch, before which the task cannot have
    run: a run the executor measured is never credited zero. Without the executor's time
    nothing is credited (no one vouches for it). Dispatcher time is launch to terminal, split by the
    masters that led meanwhile; an interval with no configured account is not credited.
    """
    common = dict(researcher=researcher, task_id=task_id, job_id=job_id, instance=instance,
                  attempt=attempt, finished_at_us=finished_at_us)
    entries: list[CreditEntry] = []
    if worker and executor_run_us is not None:
        started_us = running_at_us if running_at_us is not None else launched_at_us
        observed = finished_at_us - started_us
        time_us = min(int(executor_run_us), observed)
        if time_us > 0:
            entries.append(CreditEntry(
                kind="worker", account=worker, time_us=time_us,
                credit_id=credit_id(framework_id, task_id, "worker", worker), **common))
    pieces = split_by_leadership(launched_at_us, finished_at_us, leaders)
    split = len(pieces) > 1
    for n, account, time_us in pieces:
        if account:
            entries.append(CreditEntry(
                kind="dispatcher", account=account, time_us=time_us,
                credit_id=credit_id(framework_id, task_id, "dispatcher", account,
                                    n if split else 0), **common))
    return entries
