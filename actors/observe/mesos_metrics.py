"""Mesos's `/metrics/snapshot` JSON as Prometheus exposition text (pure, no I/O).

Mesos does not speak the Prometheus format: its masters and agents answer a flat JSON object
(`{"master/tasks_running": 3.0, ...}`). Names become `mesos_<role>_<key>` with `/` as `_`;
Mesos's counters get the `_total` suffix and the `counter` type; resource gauges are renamed so
that no gauge ends in `_total` (promtool's lint) and memory and disk (Mesos: megabytes) are
given in bytes and timers (`_ms`, `_secs`) in seconds, Prometheus's base units:
`master/mem_total` -> `mesos_master_mem_capacity_bytes`, `registrar/state_store_ms/p99` ->
`mesos_master_registrar_state_store_seconds_p99`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ROLES = ("master", "agent")
# Mesos agents name their metrics `slave/...`; masters `master/...`. Anything else (allocator,
# registrar, system) is shared; it is exported under the role that was asked for.
PREFIXES = {"master": "master/", "agent": "slave/"}
MEGABYTE = 1024 * 1024
RESOURCE = re.compile(r"^(cpus|mem|disk|gpus)(_revocable)?_(total|used|percent)$")
# Counters of Mesos (monotonic until the process restarts): every other key is a gauge.
COUNTER_PATTERNS = (
    re.compile(r"^messages_"),
    re.compile(r"^(valid|invalid)_"),
    re.compile(r"^dropped_messages$"),
    re.compile(r"^slave_(registrations|reregistrations|removals|shutdowns_)"),
    re.compile(r"^tasks_(finished|failed|killed|lost|error|dropped|gone|gone_by_operator)$"),
    re.compile(r"^executors_terminated$"),
    re.compile(r"^recovery_errors$"),
)
NAME_OK = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True, slots=True)
class Sample:
    """One exported metric: name, Prometheus type, help text and value."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    value: float


def convert(key: str, value: float, role: str) -> Sample | None:
    """One snapshot entry as a Sample; None for an entry that is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    prefix = PREFIXES[role]
    rest = key[len(prefix):] if key.startswith(prefix) else key
    base = NAME_OK.sub("_", rest.replace("/", "_"))
    help_text = f"Mesos {key} from /metrics/snapshot"
    resource = RESOURCE.match(base)
    if resource:
        name, revocable, what = resource.groups()
        stem = f"mesos_{role}_{name}{revocable or ''}"
        factor = MEGABYTE if name in ("mem", "disk") and what != "percent" else 1
        suffix = {"total": "capacity", "used": "used", "percent": "used_ratio"}[what]
        unit = "_bytes" if factor != 1 else ""
        return Sample(f"{stem}_{suffix}{unit}", "gauge", help_text, float(value) * factor)
    words = base.split("_")
    if "ms" in words or "secs" in words:  # Mesos timers: milliseconds or seconds, as seconds
        factor = 1e-3 if "ms" in words else 1.0
        base = "_".join("seconds" if w in ("ms", "secs") else w for w in words)
        value = float(value) * factor
    if any(p.match(base) for p in COUNTER_PATTERNS):
        return Sample(f"mesos_{role}_{base}_total", "counter", help_text, float(value))
    if base.endswith("_total"):  # a gauge must not look like a counter
        base = base[: -len("_total")] + "_count"
    return Sample(f"mesos_{role}_{base}", "gauge", help_text, float(value))


def convert_snapshot(snapshot: Mapping[str, object], role: str) -> list[Sample]:
    """Every numeric entry of a snapshot, sorted by name; raises ValueError on a bad role."""
    if role not in ROLES:
        raise ValueError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    samples: dict[str, Sample] = {}
    for key, value in snapshot.items():
        sample = convert(key, value, role)  # type: ignore[arg-type]
        if sample is not None and sample.name not in samples:
            samples[sample.name] = sample
    return sorted(samples.values(), key=lambda s: s.name)


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render(samples: Iterable[Sample], up: bool, role: str, seconds: float) -> str:
    """Exposition text: the samples, then `mesos_up` and the probe's duration."""
    lines: list[str] = []
    for sample in samples:
        help_text = sample.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines += [f"# HELP {sample.name} {help_text}", f"# TYPE {sample.name} {sample.kind}",
                  f"{sample.name} {_number(sample.value)}"]
    lines += ["# HELP mesos_up Whether the Mesos " + role + "'s /metrics/snapshot answered",
              "# TYPE mesos_up gauge", f"mesos_up {1 if up else 0}",
              "# HELP mesos_probe_duration_seconds Time to fetch and convert the snapshot",
              "# TYPE mesos_probe_duration_seconds gauge",
              f"mesos_probe_duration_seconds {_number(round(seconds, 6))}"]
    return "\n".join(lines) + "\n"
