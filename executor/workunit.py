"""The work unit: what one task of a job is, carried in ``TaskInfo.data`` (UTF-8 JSON).

The scheduler builds it with :func:`build_workunit`; the executor reads it with
:func:`parse_workunit`. Pure, no I/O. See executor/README.md for the document.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from scheduler.spec import Input, JobSpec, SpecError, sandbox_path

WORKUNIT_VERSION = 1


class WorkUnitError(ValueError):
    """``TaskInfo.data`` is not a valid work unit; the message names the key."""


@dataclass(frozen=True)
class WorkUnit:
    """One instance (one attempt) of a job, as the executor runs it."""

    job_id: str
    instance: int
    instances: int
    attempt: int
    researcher: str
    datadir: str
    command: tuple[str, ...] | str
    image: str | None
    env: Mapping[str, str]
    inputs: tuple[Input, ...]
    outputs: tuple[str, ...]
    output_dir: str
    hdfs_user: str
    timeout_seconds: float | None = None
    version: int = WORKUNIT_VERSION

    def task_env(self) -> dict[str, str]:
        """The spec's env plus the instance variables every task gets."""
        return {**self.env, "CLUSTERJOBS_JOB_ID": self.job_id,
                "CLUSTERJOBS_INSTANCE": str(self.instance),
                "CLUSTERJOBS_INSTANCES": str(self.instances),
                "CLUSTERJOBS_ATTEMPT": str(self.attempt)}


def output_dir(datadir: str, job_id: str, instance: int) -> str:
    """``<datadir>/jobs/<job-id>/<instance>``: where an instance's results land."""
    return posixpath.join(datadir, "jobs", job_id, str(instance))


def build_workunit(spec: JobSpec, job_id: str, instance: int, attempt: int, datadir: str,
                   hdfs_user: str) -> dict:
    """The work unit of one attempt of one instance (a JSON-ready dict).

    ``spec`` must have been parsed with ``datadir`` so that its inputs are absolute."""
    if not 0 <= instance < spec.instances:
        raise ValueError(f"instance {instance} out of range 0..{spec.instances - 1}")
    relative = [i.hdfs for i in spec.inputs if not i.hdfs.startswith("/")]
    if relative:
        raise ValueError(f"input {relative[0]!r} is not resolved: parse the spec with datadir")
    return {
        "version": WORKUNIT_VERSION,
        "job_id": job_id,
        "instance": instance,
        "instances": spec.instances,
        "attempt": attempt,
        "researcher": spec.researcher,
        "datadir": datadir,
        "command": list(spec.command) if isinstance(spec.command, tuple) else spec.command,
        "image": spec.image,
        "env": dict(spec.env),
        "inputs": [{"hdfs": i.hdfs, "as": i.as_name} for i in spec.inputs],
        "outputs": list(spec.outputs),
        "output_dir": output_dir(datadir, job_id, instance),
        "hdfs_user": hdfs_user,
        "timeout_seconds": spec.timeout_seconds,
    }


def encode_workunit(unit: dict) -> bytes:
    """The bytes of ``TaskInfo.data`` (base64 them for pymesos's JSON)."""
    return json.dumps(unit, separators=(",", ":"), sort_keys=True).encode()


def parse_workunit(data: bytes) -> WorkUnit:
    """Decode and check ``TaskInfo.data``; raises :class:`WorkUnitError`."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WorkUnitError(f"work unit: not UTF-8 JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise WorkUnitError("work unit: not a JSON object")
    if doc.get("version") != WORKUNIT_VERSION:
        raise WorkUnitError(f"work unit: version must be {WORKUNIT_VERSION}, "
                            f"got {doc.get('version')!r}")
    get = _Getter(doc)
    command = doc.get("command")
    if isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        command = tuple(command)
    elif not (isinstance(command, str) and command.strip()):
        raise WorkUnitError("work unit: command must be an argv list or a shell string")
    inputs = []
    for i, item in enumerate(get.list("inputs")):
        if not (isinstance(item, dict) and isinstance(item.get("hdfs"), str)
                and item["hdfs"].startswith("/") and isinstance(item.get("as"), str)):
            raise WorkUnitError(f"work unit: inputs[{i}] must be {{hdfs: absolute path, as}}")
        inputs.append(Input(item["hdfs"], get.sandbox(f"inputs[{i}].as", item["as"])))
    outputs = tuple(get.sandbox(f"outputs[{i}]", p) for i, p in enumerate(get.list("outputs")))
    env = doc.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in env.items()):
        raise WorkUnitError("work unit: env must map strings to strings")
    image = doc.get("image")
    if image is not None and not isinstance(image, str):
        raise WorkUnitError("work unit: image must be a string or null")
    timeout = doc.get("timeout_seconds")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or timeout <= 0):
        raise WorkUnitError("work unit: timeout_seconds must be a number > 0 or null")
    unit = WorkUnit(
        job_id=get.str("job_id"), instance=get.int("instance"), instances=get.int("instances"),
        attempt=get.int("attempt"), researcher=get.str("researcher"),
        datadir=get.str("datadir"), command=command, image=image,
        env=MappingProxyType(dict(env)), inputs=tuple(inputs), outputs=outputs,
        output_dir=get.str("output_dir"), hdfs_user=get.str("hdfs_user"),
        timeout_seconds=None if timeout is None else float(timeout))
    if not unit.output_dir.startswith("/") or not unit.datadir.startswith("/"):
        raise WorkUnitError("work unit: datadir and output_dir must be absolute HDFS paths")
    if not 0 <= unit.instance < unit.instances:
        raise WorkUnitError(f"work unit: instance {unit.instance} out of range")
    return unit


class _Getter:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def str(self, key: str) -> str:
        value = self.doc.get(key)
        if not isinstance(value, str) or not value:
            raise WorkUnitError(f"work unit: {key} must be a non-empty string")
        return value

    def int(self, key: str) -> int:
        value = self.doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise WorkUnitError(f"work unit: {key} must be a whole number >= 0")
        return value

    def list(self, key: str) -> list:
        value = self.doc.get(key, [])
        if not isinstance(value, list):
            raise WorkUnitError(f"work unit: {key} must be a list")
        return value

    def sandbox(self, where: str, path: object) -> str:
        if not isinstance(path, str):
            raise WorkUnitError(f"work unit: {where} must be a string")
        try:
            return sandbox_path(where, path)
        except SpecError as exc:
            raise WorkUnitError(f"work unit: {exc}") from None
