"""Start, watch and stop the stack's child processes.

Every process is started in its own session (so its whole process group can be signalled)
and recorded with its start time from /proc: `down` only ever signals a pid whose start time
still matches, so a pid reused by an unrelated process after a reboot is never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from actors.stack.errors import StackError


@dataclass(frozen=True)
class ProcessRecord:
    """What is needed to find (and only find) a process we started."""

    name: str
    pid: int
    start_ticks: int
    log: str

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> ProcessRecord:
        return cls(str(data["name"]), int(data["pid"]), int(data["start_ticks"]), str(data["log"]))


def _start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] == "Z":  # a zombie is as good as gone
        return None
    return int(fields[19])


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (state first), None when the process is gone."""
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def records_in_text(text: str) -> list[ProcessRecord]:
    """The process records that can still be read in ``text``, a damaged stack.json."""
    pattern = re.compile(r'"name":\s*"([^"\\]*)",\s*"pid":\s*(\d+),\s*"start_ticks":\s*(\d+)'
                         r'(?:,\s*"log":\s*"([^"\\]*)")?')
    return [ProcessRecord(m[1], int(m[2]), int(m[3]), m[4] or "-")
            for m in pattern.finditer(text)]


def leaders_logging_to(folder: Path) -> list[ProcessRecord]:
    """Live session leaders whose stdout is a file in ``folder``, as records named after it.

    Every process the stack starts leads its own session with stdout on ``logs/<name>.log``,
    so this finds them without stack.json, and nothing else (no other process writes there).
    """
    found = []
    folder = folder.resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            out = Path(os.readlink(entry / "fd" / "1"))
        except OSError:
            continue
        fields = _stat_fields(int(entry.name))
        if out.parent != folder or fields is None or fields[0] == "Z":
            continue
        if int(fields[3]) != int(entry.name):  # field 6: session id; only leaders
            continue
        found.append(ProcessRecord(out.stem, int(entry.name), int(fields[19]), str(out)))
    return found


def is_running(record: ProcessRecord) -> bool:
    """True while the recorded process (not a reuse of its pid) is alive."""
    return _start_ticks(record.pid) == record.start_ticks


def spawn(
    name: str,
    argv: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[subprocess.Popen, ProcessRecord]:
    """Start ``argv`` in a new session with stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(log, "ab") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise StackError(f"{name}: cannot run {argv[0]!r}: {exc.strerror}") from None
    ticks = _start_ticks(proc.pid)
    if ticks is None:
        proc.wait()
        raise StackError(f"{name} exited at once with code {proc.returncode}", log)
    return proc, ProcessRecord(name, proc.pid, ticks, str(log))


def stop(record: ProcessRecord, grace: float = 10.0) -> None:
    """SIGTERM the record's process group, then SIGKILL what is left after ``grace`` seconds."""
    if not is_running(record):
        return
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not is_running(record):
            break
        _reap(record.pid)
        time.sleep(0.05)
    _signal_group(record.pid, signal.SIGKILL)
    _reap(record.pid)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
