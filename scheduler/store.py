"""The scheduler's durable state in ZooKeeper (kazoo): the thin edge under scheduler.core.

Layout under the state path P (``--zk``, e.g. ``zk://127.0.0.1:2181/clusterjobs``):

    P/framework_id            the Mesos framework id, reused on every restart
    P/leaders                 leadership intervals [[since_us, dispatcher account], ...]
    P/jobs/<job-id>           the job's record (spec, times)          scheduler.records.Job
    P/jobs/<job-id>/<n>       instance n's record (state, attempts)   scheduler.records.Instance
    P/outbox/<credit-id hex>  accounting credits to push to the chain scheduler.accounting
    P/lock                    kazoo Lock: one active scheduler, the others stand by

A terminal instance and its credits are written in one ZooKeeper transaction, so a crash never
keeps one without the other.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from urllib.parse import urlparse

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError

from scheduler.accounting import CreditEntry, Leadership
from scheduler.records import Instance, Job

log = logging.getLogger("clusterjobs.scheduler.store")
BATCH = 500  # znodes per transaction when creating a large job


class StoreError(Exception):
    """The state store is unusable (bad URL, unreadable record)."""


def parse_zk_url(url: str) -> tuple[str, str]:
    """``zk://host:port[,host:port]/path`` -> (hosts, path)."""
    parsed = urlparse(url)
    if parsed.scheme != "zk" or not parsed.netloc or not parsed.path.strip("/"):
        raise StoreError(f"--zk: expected zk://host:port/path, got {url!r}")
    return parsed.netloc, "/" + parsed.path.strip("/")


def _dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Store:
    """Reads and writes the records; callers serialise calls (the scheduler's one loop)."""

    def __init__(self, url: str, *, timeout: float = 15.0) -> None:
        self.hosts, self.path = parse_zk_url(url)
        self.zk = KazooClient(hosts=self.hosts, timeout=timeout)

    def start(self, timeout: float = 30.0) -> None:
        try:
            self.zk.start(timeout=timeout)
        except KazooTimeoutError:
            raise StoreError(f"ZooKeeper at {self.hosts} did not answer within "
                             f"{timeout:.0f} s") from None
        for sub in ("jobs", "outbox"):
            self.zk.ensure_path(f"{self.path}/{sub}")

    def stop(self) -> None:
        self.zk.stop()
        self.zk.close()

    def reachable(self) -> bool:
        return self.zk.connected

    def lock(self, identifier: str):
        """The kazoo Lock that makes one scheduler active."""
        return self.zk.Lock(f"{self.path}/lock", identifier)

    # -- framework and leaders -------------------------------------------------------------------
    def framework_id(self) -> str | None:
        try:
            data, _ = self.zk.get(f"{self.path}/framework_id")
        except NoNodeError:
            return None
        return data.decode() or None

    def save_framework_id(self, framework_id: str) -> None:
        node = f"{self.path}/framework_id"
        try:
            self.zk.create(node, framework_id.encode())
        except NodeExistsError:
            self.zk.set(node, framework_id.encode())

    def leaders(self) -> list[Leadership]:
        try:
            data, _ = self.zk.get(f"{self.path}/leaders")
        except NoNodeError:
            return []
        return [Leadership(int(since), account) for since, account in json.loads(data)]

    def save_leaders(self, leaders: Iterable[Leadership]) -> None:
        self._put(f"{self.path}/leaders", [[lead.since_us, lead.account] for lead in leaders])

    # -- jobs --------------------------------------------------------------------------------------
    def create_job(self, job: Job) -> None:
        """Create the job and its instances; a job that exists is left as is. A large job is
        written in batches, marked incomplete until the last one: load() drops an incomplete
        job, whose spec is still in incoming/ (it is renamed only after this returns)."""
        node = f"{self.path}/jobs/{job.job_id}"
        if self.zk.exists(node):
            return
        records = [(f"{node}/{inst.index}", inst.to_record()) for inst in job.instances]
        whole = len(records) <= BATCH
        tx = self.zk.transaction()
        tx.create(node, _dump({**job.to_record(), "incomplete": not whole}))
        for start in range(0, len(records), BATCH):
            for path, record in records[start:start + BATCH]:
                tx.create(path, _dump(record))
            _commit(tx)
            tx = self.zk.transaction()
        if not whole:
            self.save_job(job)

    def save_job(self, job: Job) -> None:
        self.zk.set(f"{self.path}/jobs/{job.job_id}", _dump(job.to_record()))

    def save_instance(self, job_id: str, inst: Instance,
                      credits: tuple[CreditEntry, ...] = ()) -> None:
        """The instance's record and the outbox entries of its terminal task, atomically.
        An entry already in the outbox (written before a crash) is not written twice."""
        tx = self.zk.transaction()
        tx.set_data(f"{self.path}/jobs/{job_id}/{inst.index}", _dump(inst.to_record()))
        for entry in credits:
            node = f"{self.path}/outbox/{entry.znode_name}"
            if not self.zk.exists(node):
                tx.create(node, entry.to_bytes())
        _commit(tx)

    def save_instances(self, items: list[tuple[str, Instance, tuple[CreditEntry, ...]]]) -> None:
        """Many :meth:`save_instance` at once, pipelined (one round trip for the batch rather
        than one per instance). A transaction that fails because a credit is already in the
        outbox (written before a crash) is redone the careful way."""
        pending = []
        for job_id, inst, credits in items:
            tx = self.zk.transaction()
            tx.set_data(f"{self.path}/jobs/{job_id}/{inst.index}", _dump(inst.to_record()))
            for entry in credits:
                tx.create(f"{self.path}/outbox/{entry.znode_name}", entry.to_bytes())
            pending.append((job_id, inst, credits, tx.commit_async()))
        for job_id, inst, credits, result in pending:
            if any(isinstance(r, Exception) for r in result.get(timeout=60)):
                self.save_instance(job_id, inst, credits)

    def delete_job(self, job_id: str) -> None:
        with contextlib.suppress(NoNodeError):
            self.zk.delete(f"{self.path}/jobs/{job_id}", recursive=True)

    def load(self, parse_spec: Callable[[dict], object]) -> list[Job]:
        """Every job with its instances (after a restart)."""
        jobs = []
        root = f"{self.path}/jobs"
        for name in sorted(self.zk.get_children(root)):
            data, _ = self.zk.get(f"{root}/{name}")
            record = json.loads(data)
            if record.get("incomplete"):
                self.zk.delete(f"{root}/{name}", recursive=True)  # a creation cut short
                continue
            # Asynchronous gets pipeline the reads: one round trip per job, not per instance.
            pending = [self.zk.get_async(f"{root}/{name}/{index}")
                       for index in range(record["instances"])]
            instances = [Instance.from_record(json.loads(p.get(timeout=30)[0]))
                         for p in pending]
            jobs.append(Job.from_record(record, instances, parse_spec))
        return jobs

    def outbox(self) -> list[CreditEntry]:
        """The credits not yet drained (for tests and the accounting pusher)."""
        root = f"{self.path}/outbox"
        return [CreditEntry.from_json(self.zk.get(f"{root}/{name}")[0])
                for name in sorted(self.zk.get_children(root))]

    def _put(self, node: str, value: object) -> None:
        try:
            self.zk.set(node, _dump(value))
        except NoNodeError:
            self.zk.create(node, _dump(value), makepath=True)


def _commit(tx) -> None:
    results = tx.commit()
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        raise StoreError(f"ZooKeeper transaction failed: {failed[0]!r}")
