"""The job spec: parsing and validation, pure (no I/O besides reading the schema file once).

One definition for the CLI (`clusterjobs submit`), the scheduler and the tests. The JSON
Schema (``job-spec.schema.json``, draft 2020-12) checks shapes and ranges; this module adds
what a schema cannot say (paths inside the datadir and the sandbox, constraint values, names
the executor reserves) and turns every failure into one :class:`SpecError` naming the field.
See scheduler/README.md for the fields and examples.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).with_name("job-spec.schema.json")
SPEC_VERSION = 1

DEFAULT_CPUS = 1.0
DEFAULT_MEM = 128.0
DEFAULT_DISK = 128.0

#: Constraint operators (Marathon's names) and whether they take a value.
OPERATORS = ("LIKE", "UNLIKE", "UNIQUE", "CLUSTER", "MAX_PER")
#: Names the executor writes in each task's sandbox; inputs and outputs may not take them.
RESERVED_SANDBOX_NAMES = ("stdout", "stderr")
#: Environment variables the executor sets; a spec may not override them.
RESERVED_ENV_PREFIXES = ("CLUSTERJOBS_", "MESOS_")

_ID_UNSAFE = re.compile(r"[^a-z0-9-]+")


class SpecError(ValueError):
    """A spec is not valid; ``field`` is a dotted path (``resources.cpus``, ``inputs[2]``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Input:
    """One input: an HDFS file copied into the sandbox under ``as_name``."""

    hdfs: str
    as_name: str


@dataclass(frozen=True)
class JobSpec:
    """A valid job spec (see scheduler/README.md for the meaning of each field)."""

    version: int
    researcher: str
    name: str
    command: tuple[str, ...] | str
    image: str | None
    cpus: float
    mem: float
    disk: float
    inputs: tuple[Input, ...]
    outputs: tuple[str, ...]
    env: Mapping[str, str]
    instances: int
    max_retries: int
    timeout_seconds: float | None
    constraints: tuple[tuple[str, str, str | None], ...]
    priority: int = 0
    _json: dict = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict:
        """The canonical spec dict (every default filled in); parse_spec accepts it back."""
        doc: dict[str, Any] = {
            "version": self.version,
            "researcher": self.researcher,
            "name": self.name,
            "command": list(self.command) if isinstance(self.command, tuple) else self.command,
        }
        if self.image is not None:
            doc["container"] = {"image": self.image}
        doc["resources"] = {"cpus": self.cpus, "mem": self.mem, "disk": self.disk}
        doc["inputs"] = [{"hdfs": i.hdfs, "as": i.as_name} for i in self.inputs]
        doc["outputs"] = list(self.outputs)
        doc["env"] = dict(self.env)
        doc["instances"] = self.instances
        doc["max_retries"] = self.max_retries
        doc["timeout_seconds"] = self.timeout_seconds
        doc["constraints"] = [[a, op] if v is None else [a, op, v]
                              for a, op, v in self.constraints]
        doc["priority"] = self.priority
        return doc


@functools.cache
def schema() -> dict:
    """The JSON Schema of a job spec (read once)."""
    return json.loads(SCHEMA_PATH.read_text())


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema())
    return jsonschema.Draft202012Validator(schema())


def parse_spec(data: bytes | str | dict, *, datadir: str | None = None) -> JobSpec:
    """Parse and validate a spec; raises :class:`SpecError` naming the first bad field.

    With ``datadir`` (the protocol's HDFS folder), inputs are resolved (a relative path is
    relative to it) and each must lie inside it; without it they are checked but kept as given.
    """
    doc = _decode(data)
    errors = sorted(_validator().iter_errors(doc), key=_error_order)
    if errors:
        raise _schema_error(errors[0])
    return _build(doc, datadir)


def _decode(data: bytes | str | dict) -> dict:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError("spec", f"not UTF-8 text (byte {exc.start})") from None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise SpecError("spec", f"malformed JSON: {exc.msg} at line {exc.lineno} "
                                    f"column {exc.colno}") from None
    if not isinstance(data, dict):
        raise SpecError("spec", f"must be a JSON object, not {_json_type(data)}")
    return data


def _error_order(error: jsonschema.ValidationError) -> tuple:
    # Report in document order, and an unknown or missing field before what is inside others.
    rank = 0 if error.validator in ("additionalProperties", "required") else 1
    return (rank, [str(p) for p in error.absolute_path])


def field_path(parts: Any) -> str:
    """``["inputs", 2, "as"]`` -> ``inputs[2].as``; the empty path is ``spec``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "spec"


def _schema_error(error: jsonschema.ValidationError) -> SpecError:
    path = list(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in known)
        return SpecError(field_path([*path, extra[0]]), "unknown field")
    if kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return SpecError(field_path([*path, missing[0]]), "missing (required)")
    custom = error.schema.get("x-problem") if isinstance(error.schema, dict) else None
    got = _shown(error.instance)
    if custom:
        return SpecError(field_path(path), f"{custom}, got {got}")
    if kind == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return SpecError(field_path(path), f"must be {_article(wanted)}, got {got}")
    if kind == "exclusiveMinimum":
        return SpecError(field_path(path), f"must be greater than {error.validator_value:g}, "
                                           f"got {got}")
    if kind == "minimum":
        return SpecError(field_path(path), f"must be at least {error.validator_value}, got {got}")
    if kind == "maximum":
        return SpecError(field_path(path), f"must be at most {error.validator_value}, got {got}")
    if kind == "minLength":
        return SpecError(field_path(path), "must not be empty")
    return SpecError(field_path(path), " ".join(error.message.split()))


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- checks a schema cannot express --------------------------------------------------------


def _build(doc: dict, datadir: str | None) -> JobSpec:
    resources = doc.get("resources") or {}
    command = doc["command"]
    if isinstance(command, list):
        if not command[0].strip():
            raise SpecError("command[0]", "the program must not be empty")
        command = tuple(command)
    elif not command.strip():
        raise SpecError("command", "must not be blank")
    env = dict(doc.get("env") or {})
    for name in env:
        if name.startswith(RESERVED_ENV_PREFIXES):
            raise SpecError(f"env.{name}", "reserved: the executor sets CLUSTERJOBS_* and "
                                           "MESOS_* variables")
    root = _datadir(datadir) if datadir is not None else None
    inputs = tuple(_input(i, item, root) for i, item in enumerate(doc.get("inputs") or []))
    names: dict[str, int] = {}
    for i, item in enumerate(inputs):
        if item.as_name in names:
            raise SpecError(f"inputs[{i}]", f"sandbox name {item.as_name!r} is already taken "
                                            f"by inputs[{names[item.as_name]}]")
        names[item.as_name] = i
    outputs = tuple(_output(i, path) for i, path in enumerate(doc.get("outputs") or []))
    for i, path in enumerate(outputs):
        if path in outputs[:i]:
            raise SpecError(f"outputs[{i}]", f"{path!r} is listed twice")
    constraints = tuple(_constraint(i, c) for i, c in enumerate(doc.get("constraints") or []))
    timeout = doc.get("timeout_seconds")
    return JobSpec(
        version=doc["version"],
        researcher=doc["researcher"],
        name=doc["name"],
        command=command,
        image=(doc.get("container") or {}).get("image"),
        cpus=float(resources.get("cpus", DEFAULT_CPUS)),
        mem=float(resources.get("mem", DEFAULT_MEM)),
        disk=float(resources.get("disk", DEFAULT_DISK)),
        inputs=inputs,
        outputs=outputs,
        env=MappingProxyType(env),
        instances=int(doc.get("instances", 1)),
        max_retries=int(doc.get("max_retries", 0)),
        timeout_seconds=None if timeout is None else float(timeout),
        constraints=constraints,
        priority=int(doc.get("priority", 0)),
    )


def _datadir(datadir: str) -> str:
    if not datadir.startswith("/") or ".." in datadir.split("/"):
        raise SpecError("datadir", f"must be an absolute HDFS path without '..', got {datadir!r}")
    return posixpath.normpath(datadir)


def _input(index: int, item: str | dict, root: str | None) -> Input:
    where = f"inputs[{index}]"
    path = item if isinstance(item, str) else item["hdfs"]
    if ".." in path.split("/"):
        raise SpecError(where, f"{path!r} must not contain '..'")
    if root is not None:
        full = posixpath.normpath(posixpath.join(root, path))
        if full != root and not full.startswith(root.rstrip("/") + "/"):
            raise SpecError(where, f"{path!r} is outside the protocol's datadir {root}")
        if full == root:
            raise SpecError(where, f"{path!r} is the datadir itself, not a file in it")
        path = full
    name = item.get("as") if isinstance(item, dict) else None
    if name is None:
        name = posixpath.basename(path.rstrip("/"))
        if not name:
            raise SpecError(where, f"{path!r} names no file")
    return Input(hdfs=path, as_name=sandbox_path(f"{where}.as" if isinstance(item, dict)
                                                  and "as" in item else where, name))


def _output(index: int, path: str) -> str:
    return sandbox_path(f"outputs[{index}]", path)


def sandbox_path(where: str, path: str) -> str:
    """A path relative to the task's sandbox that stays inside it, normalised."""
    if path.startswith("/"):
        raise SpecError(where, f"{path!r} must be relative to the sandbox, not absolute")
    if ".." in path.split("/"):
        raise SpecError(where, f"{path!r} escapes the sandbox ('..')")
    if any(ord(c) < 32 for c in path):
        raise SpecError(where, f"{path!r} contains a control character")
    clean = posixpath.normpath(path)
    if clean in (".", ""):
        raise SpecError(where, f"{path!r} names the sandbox itself")
    if clean.split("/")[0] in RESERVED_SANDBOX_NAMES:
        raise SpecError(where, f"{path!r} is reserved for the task's stdout/stderr")
    return clean


def _constraint(index: int, item: list) -> tuple[str, str, str | None]:
    where = f"constraints[{index}]"
    attribute, operator = item[0], item[1]
    value = item[2] if len(item) > 2 else None
    if operator in ("LIKE", "UNLIKE"):
        if value is None:
            raise SpecError(where, f"{operator} needs a regular expression as third element")
        try:
            re.compile(value)
        except re.error as exc:
            raise SpecError(f"{where}[2]", f"not a regular expression: {exc}") from None
    elif operator == "UNIQUE":
        if value is not None:
            raise SpecError(where, "UNIQUE takes no value")
    elif operator == "MAX_PER" and (value is None or not value.isdigit() or int(value) < 1):
        raise SpecError(f"{where}[2]" if value is not None else where,
                        f"MAX_PER needs a whole number >= 1 as value, got {value!r}")
    return attribute, operator, value


# --- job ids ---------------------------------------------------------------------------------


def new_job_id(name: str, now: float, entropy: bytes | None = None) -> str:
    """A unique job id, safe as an HDFS name: ``<name>-<UTC yyyymmddThhmmss>-<6 hex>``.

    ``entropy`` (3 bytes or more) makes it deterministic in tests; by default it is random.
    """
    safe = _ID_UNSAFE.sub("-", name.lower()).strip("-")[:40].strip("-") or "job"
    stamp = time.strftime("%Y%m%dt%H%M%S", time.gmtime(now))
    tail = (entropy if entropy is not None else os.urandom(3)).hex()[:6]
    if len(tail) < 6:
        raise ValueError("new_job_id needs at least 3 bytes of entropy")
    return f"{safe}-{stamp}-{tail}"
