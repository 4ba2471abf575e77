"""`stack up | status | down`: bring the local services up together and take them down.

State lives in ``DIR/stack.json``: the endpoints and every process started, so `down` (from
any shell) stops exactly those processes. ``DIR/.lock`` is held while a command changes the
stack, so two commands on one DIR never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from actors.stack.context import StackContext, StackOptions
from actors.stack.errors import StackError
from actors.stack.process import (
    ProcessRecord,
    is_running,
    leaders_logging_to,
    records_in_text,
    stop,
)
from actors.stack.services import Service, all_services

log = logging.getLogger("clusterjobs.stack")

STATE_FILE = "stack.json"


def state_path(workdir: Path) -> Path:
    return workdir / STATE_FILE


def read_state(workdir: Path) -> dict | None:
    """The recorded state of the stack in ``workdir``, or None when there is none."""
    try:
        return json.loads(state_path(workdir).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StackError(f"unreadable stack state {state_path(workdir)}: {_why(exc)}; "
                         f"`clusterjobs stack down --workdir {workdir}` stops what it can "
                         f"identify") from None


def _why(exc: BaseException) -> str:
    """An OSError's reason without the repeated path; other errors on one line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split())


def _records(state: dict) -> list[ProcessRecord]:
    return [ProcessRecord.from_json(p) for p in state.get("processes", [])]


def prepare_workdir(workdir: Path) -> Path:
    """``workdir`` made absolute and created; a path that cannot hold a stack is one line."""
    workdir = workdir.resolve()
    if workdir.exists() and not workdir.is_dir():
        raise StackError(f"cannot use {workdir} as the stack folder: it is a file, not a folder")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / ".lock").touch()
    except NotADirectoryError:
        parent = next(p for p in workdir.parents if p.exists())
        raise StackError(f"cannot use {workdir} as the stack folder: {parent} is a file, "
                         f"not a folder") from None
    except FileNotFoundError:
        # mkdir with parents: an existing ancestor refused a new entry (e.g. /proc, /sys).
        parent = next(p for p in workdir.parents if p.exists())
        raise StackError(f"cannot use {workdir} as the stack folder: {parent} does not accept "
                         f"new folders") from None
    except OSError as exc:
        raise StackError(f"cannot use {workdir} as the stack folder: {_why(exc)}") from None
    return workdir


@contextmanager
def _locked(workdir: Path) -> Iterator[None]:
    """Hold ``workdir/.lock`` (which must exist) for the duration of one changing command."""
    with open(workdir / ".lock", "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StackError(f"{workdir} is in use by another stack command ({holder})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)


def is_up(state: dict) -> bool:
    """True when ``state`` is of a finished start whose processes are all alive."""
    records = _records(state)
    return not state.get("starting", False) and bool(records) and all(map(is_running, records))


def up(workdir: Path, options: StackOptions | None = None,
       services: list[Service] | None = None) -> tuple[dict, bool]:
    """Start every service; returns (state, started). ``started`` is False when it was up."""
    workdir = prepare_workdir(workdir)
    options = options or StackOptions()
    with _locked(workdir):
        state = read_state(workdir)
        if state is not None:
            if is_up(state):
                return state, False
            alive = [r for r in _records(state) if is_running(r)]
            # A stack that partly died, or an `up` that was killed mid-start (we hold the
            # lock, so it is not running): stop what is left and start from nothing.
            for record in reversed(alive):
                stop(record)
            state_path(workdir).unlink()
        ctx = StackContext(workdir=workdir, options=options)
        ctx.on_spawn = lambda records: _write_state(workdir, _state(ctx, {}, records, True))
        timings: dict[str, float] = {}
        try:
            _start_all(ctx, services or all_services(), timings)
        except BaseException:
            for record in reversed(ctx.records):
                stop(record)
            state_path(workdir).unlink(missing_ok=True)
            raise
        state = _state(ctx, timings, ctx.records, False)
        _write_state(workdir, state)
        return state, True


def _state(ctx: StackContext, timings: dict[str, float], records: list[ProcessRecord],
           starting: bool) -> dict:
    return {
        "workdir": str(ctx.workdir),
        "starting": starting,
        "started_at": time.time(),
        "endpoints": ctx.endpoints,
        "startup_seconds": timings,
        "options": {"masters": ctx.options.masters, "agents": ctx.options.agents,
                    "agent_accounts": list(ctx.options.agent_accounts)},
        "processes": [r.to_json() for r in records],
    }


def _write_state(workdir: Path, state: dict) -> None:
    tmp = state_path(workdir).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(state_path(workdir))  # readers never see a half-written file


def _start_all(ctx: StackContext, services: list[Service], timings: dict[str, float]) -> None:
    """Start services in waves: each wave holds those whose dependencies are all up."""
    pending = list(services)
    done: set[str] = set()
    while pending:
        wave = [s for s in pending if set(s.after) <= done]
        if not wave:
            names = ", ".join(s.name for s in pending)
            raise StackError(f"services with unmet dependencies: {names}")
        errors: list[BaseException] = []
        threads = [threading.Thread(target=_start_one, args=(ctx, s, timings, errors),
                                    name=s.name) for s in wave]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        except BaseException:
            # Ctrl-C: let the running starts give up (they poll ``cancelled``) before the
            # caller stops what was started, so no process is spawned after the clean-up.
            ctx.cancelled.set()
            for thread in threads:
                if thread.ident is not None:
                    thread.join()
            raise
        if errors:
            raise errors[0]
        done |= {s.name for s in wave}
        pending = [s for s in pending if s.name not in done]


def _start_one(ctx: StackContext, service: Service, timings: dict[str, float],
               errors: list[BaseException]) -> None:
    began = time.monotonic()
    try:
        found = service.start(ctx)
    except BaseException as exc:  # collected; the caller raises the first one
        errors.append(exc)
        ctx.cancelled.set()  # the services starting beside it give up instead of finishing
        return
    timings[service.name] = round(time.monotonic() - began, 2)
    ctx.endpoints.update(found)
    log.info("service up", extra={"service": service.name, "seconds": timings[service.name]})


def status(workdir: Path) -> dict:
    """Endpoints plus which recorded processes are alive; raises when no stack is recorded."""
    workdir = workdir.resolve()
    _require_folder(workdir, "")
    state = read_state(workdir)
    if state is None:
        raise StackError(f"no stack in {workdir} (run: clusterjobs stack up --workdir {workdir})")
    records = _records(state)
    down_names = sorted({r.name for r in records if not is_running(r)})
    if state.get("starting"):
        down_names.append("(stack start not finished or interrupted; run `stack up` again)")
    return {
        **state["endpoints"],
        "workdir": str(workdir),
        "healthy": not down_names,
        "down": down_names,
        "startup_seconds": state.get("startup_seconds", {}),
    }


@dataclass(frozen=True)
class Stopped:
    """What `down` did: the names of the processes stopped, and why the state was not used."""

    names: list[str]
    unreadable: str | None = None  # the reason stack.json could not be read, if it could not
    kept_as: Path | None = None  # where the unreadable stack.json was moved


def down(workdir: Path) -> list[str]:
    """Stop every process `up` recorded (and only those); returns the names stopped."""
    return take_down(workdir).names


def take_down(workdir: Path) -> Stopped:
    """Stop every process `up` recorded (and only those).

    Creates nothing: a folder that does not exist is an error, one without a stack is a no-op.
    When stack.json is unreadable, the processes still identifiable are stopped: the records
    in the part of it that parses (pid and start time must match) and the session leaders
    whose output goes to a log in ``workdir/logs`` (every process `up` starts is one); the
    unreadable file is kept beside as ``stack.json.unreadable``.
    """
    workdir = workdir.resolve()
    _require_folder(workdir, "; nothing stopped")
    if not state_path(workdir).exists():
        if not (workdir / ".lock").exists():
            return Stopped([])  # never a stack here: nothing to lock, nothing to create
    else:
        (workdir / ".lock").touch()  # a state without its lock file (copied, or older)
    with _locked(workdir):
        try:
            records = _records(json.loads(state_path(workdir).read_text()))
        except FileNotFoundError:
            return Stopped([])
        except (OSError, ValueError) as exc:
            return _salvage(workdir, _why(exc))
        except (AttributeError, KeyError, TypeError):
            return _salvage(workdir, "not the state of a stack")
        stopped = [r.name for r in records if is_running(r)]
        for record in reversed(records):
            stop(record)
        state_path(workdir).unlink()
        return Stopped(stopped)


def _require_folder(workdir: Path, then: str) -> None:
    """A stack folder that is not there is one line (nothing is created to find out)."""
    if not workdir.is_dir():
        what = "is a file, not a folder" if workdir.exists() else "does not exist"
        raise StackError(f"no stack in {workdir}: the folder {what}{then}")


def _salvage(workdir: Path, reason: str) -> Stopped:
    try:
        text = state_path(workdir).read_text(errors="replace")
    except OSError:
        text = ""
    found = {r.pid: r for r in records_in_text(text) if is_running(r)}
    for record in leaders_logging_to(workdir / "logs"):
        found.setdefault(record.pid, record)
    records = sorted(found.values(), key=lambda r: r.start_ticks)
    for record in reversed(records):
        stop(record)
    kept = state_path(workdir).with_name(STATE_FILE + ".unreadable")
    with contextlib.suppress(OSError):
        state_path(workdir).replace(kept)
    log.warning("stack state unreadable; stopped the processes found",
                extra={"workdir": workdir, "stopped": len(records)})
    return Stopped([r.name for r in records], unreadable=reason, kept_as=kept)
