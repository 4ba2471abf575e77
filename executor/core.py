"""Pure pieces of the executor: kill grace periods, one-line failure messages, the terminal
status data, output file lists. No I/O beyond what the callers pass in."""

from __future__ import annotations

import json
import re
import signal
from dataclasses import asdict, dataclass, field

DEFAULT_KILL_GRACE = 3.0  # seconds, as Mesos when the task has no KillPolicy
STDERR_TAIL_LINES = 5
MESSAGE_MAX = 400

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Measures:
    """What the terminal update's ``data`` carries (microseconds and bytes)."""

    run_us: int = 0
    cpu_us: int = 0
    exit_code: int | None = None
    stage_in_us: int = 0
    stage_out_us: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    outputs: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()


def kill_grace(task: dict | None, kill_policy: dict | None = None) -> float:
    """Seconds between SIGTERM and SIGKILL: the KILL's own KillPolicy, else the task's,
    else Mesos's default of 3 s."""
    for policy in (kill_policy, (task or {}).get("kill_policy")):
        period = (policy or {}).get("grace_period") if isinstance(policy, dict) else None
        if isinstance(period, dict) and isinstance(period.get("nanoseconds"), int | float):
            return max(0.0, float(period["nanoseconds"]) / 1e9)
    return DEFAULT_KILL_GRACE


def task_dir_name(task_id: str) -> str:
    """A file name for the task's folder inside the executor's sandbox."""
    return _UNSAFE.sub("_", task_id)[:200] or "task"


def exit_code(wait_status: int) -> int:
    """The shell convention: the exit code, or 128 + signal number for a killed process."""
    if wait_status < 0:  # as subprocess reports signals
        return 128 - wait_status
    return wait_status


def describe_exit(code: int) -> str:
    """``exit code 3`` or ``killed by signal SIGKILL`` (``code`` as :func:`exit_code`)."""
    if code > 128:
        try:
            return f"killed by signal {signal.Signals(code - 128).name}"
        except ValueError:
            return f"exit code {code}"
    return f"exit code {code}"


def one_line(text: str, limit: int = MESSAGE_MAX) -> str:
    """Whitespace collapsed to single spaces, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def stderr_tail(data: bytes, lines: int = STDERR_TAIL_LINES) -> str:
    """The last non-empty lines of a stderr file, joined with `` | ``."""
    text = data.decode("utf-8", errors="replace")
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept)


def failed_command_message(code: int, tail: str) -> str:
    """A failed run in one line: how it ended and the end of its stderr."""
    head = f"command failed with {describe_exit(code)}"
    return one_line(f"{head}; stderr: {tail}" if tail else f"{head}; stderr is empty")
