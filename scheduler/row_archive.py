"""Chain RAM stays bounded: a thread in the scheduler process that archives the jobs
contract's paid ``job`` rows past the credit window with ``removejob`` (which rows:
scheduler/archive_policy.py), many actions per transaction, signed as the pusher
(``jobs@pusher`` is linked to ``removejob``). The history stays in the block log, and each
task's record in HDFS (``D/jobs/<job-id>/job.json``).

Rows are read raw and decoded here (as scheduler/chain_view.py does): nodeos exits on a row its
current ABI cannot decode.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from scheduler import chain
from scheduler.archive_policy import JobRow, Removal, removable
from scheduler.chain import ChainClient, ChainError, Signer
from scheduler.chain_view import ChainView, RowReader

log = logging.getLogger("clusterjobs.scheduler.archive")


def read_job_rows(view: ChainView, worker: str) -> list[JobRow]:
    """``worker``'s ``job`` rows. Rows written before credit identities existed end after
    ``time``: they read as credit 0, as the contract reads them."""
    found = []
    for raw in view._rows(view.jobs, worker, "job"):
        reader = RowReader(raw)
        row_id, researcher, time_us = reader.u64(), reader.name(), reader.u64()
        more = len(reader.data) - reader.pos >= 16
        credit_id, credited_at = (reader.u64(), reader.u64()) if more else (0, 0)
        found.append(JobRow(row_id, researcher, time_us, credit_id, credited_at))
    return found


def read_unpaid(view: ChainView, worker: str) -> dict[str, int]:
    """researcher → ``worker``'s unpaid time (its ``worker`` rows)."""
    found = {}
    for raw in view._rows(view.jobs, worker, "worker"):
        reader = RowReader(raw)
        researcher = reader.name()
        reader.u64()  # total_time
        found[researcher] = reader.u64()
    return found


class RowArchiver:
    """One :meth:`round` archives every row that may go, ``batch`` ``removejob`` per
    transaction; counters for the metrics."""

    def __init__(self, view: ChainView, client: ChainClient, window_s: float,
                 batch: int = 100, every_s: float = 60.0) -> None:
        if batch < 1 or window_s < 0 or every_s <= 0:
            raise ValueError("archive batch must be >= 1, window >= 0 s, interval > 0 s")
        self.view, self.client = view, client
        self.window_us, self.batch, self.every_s = int(window_s * 1e6), batch, every_s
        self.removed = 0
        self.failed = 0

    def pending(self) -> Iterator[list[Removal]]:
        """Batches of removals, worker after worker, at the chain's head time."""
        now_us = int(chain.parse_time(str(self.client.info()["head_block_time"])) * 1e6)
        for worker in list(self.view._scopes(self.view.jobs, "job")):
            rows = read_job_rows(self.view, worker)
            todo = removable(worker, rows, read_unpaid(self.view, worker), now_us,
                             self.window_us, len(rows))
            for start in range(0, len(todo), self.batch):
                yield todo[start:start + self.batch]

    def round(self) -> int:
        """Archive what may go now; returns how many rows were removed. A refused batch (a
        row removed meanwhile, say) is logged with the chain's message and left for the next
        round."""
        removed = 0
        for batch in self.pending():
            actions = [self.client.action(self.view.jobs, "removejob", r.data) for r in batch]
            try:
                self.client.push(actions)
            except ChainError as exc:
                self.failed += 1
                log.warning("archiving refused", extra={"rows": len(batch),
                                                        "reason": str(exc)[:300]})
                continue
            removed += len(batch)
            self.removed += len(batch)
        if removed:
            log.info("job rows archived", extra={"rows": removed})
        return removed

    def run(self, stopping: threading.Event) -> None:
        while not stopping.wait(self.every_s):
            try:
                self.round()
            except Exception as exc:  # nodeos away: the next round tries again
                log.warning("archive round failed", extra={"error": str(exc)[:300]})


class ArchiveCollector:
    """prometheus_client collector of the archiver's counters."""

    def __init__(self, archiver: RowArchiver) -> None:
        self.archiver = archiver

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        yield CounterMetricFamily("clusterjobs_archived_job_rows",
                                  "job rows removed from the chain (paid, past the window)",
                                  value=self.archiver.removed)
        yield CounterMetricFamily("clusterjobs_archive_batches_refused",
                                  "removejob transactions the chain refused",
                                  value=self.archiver.failed)


def start(service: Any) -> threading.Thread | None:
    """Start the archiving thread of ``service`` (0 s interval or no key: off)."""
    options = service.options
    if options.archive_every_seconds <= 0:
        return None
    if not options.chain_keys:
        log.warning("archiving of job rows is off: no chain key")
        return None
    account, permission = chain.parse_actor(options.chain_signer)
    client = ChainClient(options.nodeos, Signer(account, permission, options.chain_keys))
    view = ChainView(options.nodeos, registry=options.registry_account,
                     jobs=options.jobs_account)
    archiver = RowArchiver(view, client, options.archive_after_seconds,
                           options.archive_batch, options.archive_every_seconds)
    service.metrics.registry.register(ArchiveCollector(archiver))
    service.row_archiver = archiver
    thread = threading.Thread(target=archiver.run, args=(service.stopping,), daemon=True,
                              name="row-archive")
    thread.start()
    log.info("job row archiving on", extra={"every_s": options.archive_every_seconds,
                                            "after_s": options.archive_after_seconds})
    return thread
