"""HDFS intake: specs in ``<datadir>/jobs/incoming/`` become accepted jobs or ``.error`` files.

Per spec, in this order, so that a crash anywhere loses nothing and accepts nothing twice:

1. read and validate it (scheduler.spec); a bad one gets ``<name>.error`` beside it and stays;
2. claim it: rename it to ``incoming/_claims/<owner>/<name>``, where ``owner`` names this
   scheduler's state (its ZooKeeper path). Every scheduler that serves the protocol watches the
   same folder; the rename is atomic in the NameNode, so only one of them gets the spec (the
   others find it gone and leave it): a spec admitted by two schedulers would run, and be paid
   for, twice;
3. hand the valid spec to the scheduler's loop, which writes the job to ZooKeeper (durable);
4. rename it to ``accepted/<job-id>.json``.

Each pass first finishes this scheduler's own claims: a crash between 2 and 3 or between 3 and 4
leaves the spec there, and the next pass admits it (the loop says if the job is known already)
and renames it. The job id is the spec's file name (what ``clusterjobs submit`` chose) when it
is a valid id, else a new one.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from scheduler.chain_view import Protocol

log = logging.getLogger("clusterjobs.scheduler.intake")
_JOB_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
CLAIMS = "_claims"  # under incoming/; names starting with "_" are not specs


def owner_of(state_url: str) -> str:
    """A short, stable name for a scheduler's state (the same across its restarts)."""
    return hashlib.sha256(state_url.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Accepted:
    """A valid spec, ready for the loop."""

    job_id: str
    spec: object
    datadir: str
    source: str      # its path in incoming/
    target: str      # its path in accepted/


def job_id_for(filename: str, spec, now: float, new_job_id: Callable) -> str:
    stem = filename[:-len(".json")]
    return stem if _JOB_ID.match(stem) else new_job_id(spec.name, now)


class Intake:
    """Scans the incoming folders. ``admit(accepted) -> bool`` runs the loop's side (returns
    once the job is durable; False when it was known already); this class does the HDFS side."""

    def __init__(self, hdfs, admit: Callable[[Accepted], bool], *,
                 parse_spec: Callable, spec_error: type[Exception], new_job_id: Callable,
                 owner: str = "default") -> None:
        self.hdfs = hdfs
        self.owner = owner
        self.admit = admit
        self.parse_spec, self.spec_error, self.new_job_id = parse_spec, spec_error, new_job_id
        self.accepted = 0
        self.rejected = 0

    def scan(self, protocols: list[Protocol]) -> None:
        """One pass over every protocol's incoming folder."""
        for proto in protocols:
            try:
                self._scan_one(proto)
            except Exception as exc:  # one protocol's broken folder must not stop the others
                log.warning("intake scan failed", extra={"researcher": proto.researcher,
                                                         "datadir": proto.datadir,
                                                         "error": str(exc)})

    def _scan_one(self, proto: Protocol) -> None:
        incoming = f"{proto.datadir}/jobs/incoming"
        if not self.hdfs.exists(incoming):
            return
        claims = f"{incoming}/{CLAIMS}/{self.owner}"
        if self.hdfs.exists(claims):
            claimed = set(self.hdfs.list(claims))
            for name in sorted(claimed):
                if name.endswith(".json") and name[:-len(".json")] + ".error" not in claimed:
                    self._take(proto, claims, name, claimed=True)
        names = set(self.hdfs.list(incoming))
        for name in sorted(names):
            if not name.endswith(".json") or name.startswith((".", "_")):
                continue  # temporary names of writers in progress, and our .error files
            if name[:-len(".json")] + ".error" in names:
                continue  # rejected before; stays until the researcher fixes or removes it
            self._take(proto, incoming, name)

    def _take(self, proto: Protocol, incoming: str, name: str, *, claimed: bool = False) -> None:
        source = f"{incoming}/{name}"
        try:
            data = self.hdfs.read_bytes(source)
        except Exception:
            if claimed or self.hdfs.exists(source):
                raise
            return  # claimed by another scheduler since the listing
        try:
            spec = self.parse_spec(data, datadir=proto.datadir)
            if spec.researcher != proto.researcher:
                raise self.spec_error(
                    "researcher", f"the spec is for {spec.researcher} but was submitted to "
                                  f"the protocol folder of researcher {proto.researcher}")
        except self.spec_error as exc:
            self._reject(source, str(exc))
            return
        job_id = job_id_for(name, spec, time.time(), self.new_job_id)
        target = f"{proto.datadir}/jobs/accepted/{job_id}.json"
        if self.hdfs.exists(target):
            if not claimed and not self.hdfs.exists(source):
                return  # another scheduler claimed and accepted it while we read it
            # Only a second spec with the same id gets here: the rename is the last step.
            self._reject(source, f"job id {job_id} was already accepted ({target}); "
                                 "submit the spec again under a new name")
            return
        if not claimed:
            claims = f"{incoming}/{CLAIMS}/{self.owner}"
            self.hdfs.makedirs(claims)
            try:
                self.hdfs.rename(source, f"{claims}/{name}")
            except Exception:
                if self.hdfs.exists(source):
                    raise
                log.info("spec taken by another scheduler", extra={"spec": source})
                return
            source = f"{claims}/{name}"
        if not self.admit(Accepted(job_id, spec, proto.datadir, source, target)):
            log.info("completing an acceptance cut short", extra={"job_id": job_id})
        self.hdfs.makedirs(f"{proto.datadir}/jobs/accepted")
        self.hdfs.rename(source, target)
        self.accepted += 1
        log.info("job accepted", extra={"job_id": job_id, "researcher": spec.researcher,
                                        "instances": spec.instances})

    def _reject(self, source: str, message: str) -> None:
        error_path = source[:-len(".json")] + ".error"
        self.hdfs.write_bytes(error_path, (message + "\n").encode())
        self.rejected += 1
        log.info("spec rejected", extra={"spec": source, "error": message})
