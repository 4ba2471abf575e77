"""Which ``job`` rows may be archived with ``removejob`` (pure): the chain RAM they hold is
given back, while their history stays in the block log and each task's record in HDFS.

A row may go when both hold:

- **its time is paid.** Payouts settle a contributor's oldest time first and ``removejob``
  never changes ``total_time``, so of a worker's rows for a researcher (in id order, which is
  credit order) the newest ones hold the unpaid time: a row is paid when the rows credited after
  it sum to at least the worker row's ``unpaid_time``. A researcher without a ``worker`` row
  for that worker (deregistered) keeps its rows: nothing says their time was paid.
- **it is past the contract's credit window** (``credit_id`` 0 rows at once): within the window
  the row is the on-chain trace a pusher resending the credit is checked against, and the
  contract refuses to remove it.

``removejob(researcher, worker, time)`` removes the *oldest* row of that researcher and time;
both conditions hold for a prefix of the rows in id order, so removing by time the rows chosen
from that prefix removes exactly them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class JobRow:
    """A row of the jobs contract's ``job`` table (scope = the worker)."""

    id: int
    researcher: str
    time_us: int
    credit_id: int
    credited_at_us: int  # block time of the credit


@dataclass(frozen=True)
class Removal:
    """One ``removejob`` action."""

    researcher: str
    worker: str
    time_us: int

    @property
    def data(self) -> dict[str, object]:
        return {"researcher": self.researcher, "worker": self.worker, "time": self.time_us}


def removable(worker: str, rows: Iterable[JobRow], unpaid_us: Mapping[str, int],
              now_us: int, window_us: int, limit: int) -> list[Removal]:
    """Up to ``limit`` removals of ``worker``'s rows that are paid and past the window at
    ``now_us`` (chain head time). ``unpaid_us``: researcher → the worker row's unpaid time."""
    by_researcher: dict[str, list[JobRow]] = {}
    for row in sorted(rows, key=lambda r: r.id):
        by_researcher.setdefault(row.researcher, []).append(row)
    found: list[Removal] = []
    for researcher in sorted(by_researcher):
        if researcher not in unpaid_us:
            continue
        ordered = by_researcher[researcher]
        newer = sum(r.time_us for r in ordered)  # time credited after the current row
        for row in ordered:
            newer -= row.time_us
            paid = newer >= unpaid_us[researcher]
            aged = row.credit_id == 0 or now_us - row.credited_at_us >= window_us
            if not (paid and aged) or len(found) >= limit:
                break
            found.append(Removal(researcher, worker, row.time_us))
    return found
