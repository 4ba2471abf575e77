"""The orchestrator with toy services made of real short-lived processes (no services needed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from actors.stack import orchestrator
from actors.stack.context import StackContext, StackOptions
from actors.stack.errors import StackError
from actors.stack.process import ProcessRecord, is_running
from actors.stack.services import Service

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]


def _sleeper(name: str) -> Service:
    def start(ctx: StackContext) -> dict[str, object]:
        ctx.spawn(name, SLEEPER)
        return {name: f"pid-file-{name}"}

    return Service(name, start)


def _dies_at_start(ctx: StackContext) -> dict[str, object]:
    proc = ctx.spawn("fragile", [sys.executable, "-c", "print('boom: port in use'); exit(3)"])
    ctx.wait_until("fragile", lambda: False, proc, timeout=30)
    return {}


def _records(workdir: Path) -> list[ProcessRecord]:
    state = orchestrator.read_state(workdir)
    assert state is not None
    return [ProcessRecord.from_json(p) for p in state["processes"]]


OPTIONS = StackOptions(start_timeout=30)


def test_up_status_down_round_trip(tmp_path: Path) -> None:
    services = [_sleeper("a"), _sleeper("b"), Service("c", _sleeper("c").start, after=("a",))]
    _, started = orchestrator.up(tmp_path, OPTIONS, services)
    assert started
    records = _records(tmp_path)
    assert sorted(r.name for r in records) == ["a", "b", "c"]
    assert all(is_running(r) for r in records)
    info = orchestrator.status(tmp_path)
    assert info["healthy"] and info["a"] == "pid-file-a" and info["workdir"] == str(tmp_path)

    assert sorted(orchestrator.down(tmp_path)) == ["a", "b", "c"]
    assert not any(is_running(r) for r in records)
    assert orchestrator.read_state(tmp_path) is None


def test_second_up_changes_nothing(tmp_path: Path) -> None:
    orchestrator.up(tmp_path, OPTIONS, [_sleeper("a")])
    try:
        before = _records(tmp_path)
        _, started = orchestrator.up(tmp_path, OPTIONS, [_sleeper("a"), _sleeper("b")])
        assert not started
        assert _records(tmp_path) == before
    finally:
        orchestrator.down(tmp_path)


def test_a_service_dying_at_start_stops_everything_and_names_the_log(tmp_path: Path) -> None:
    with pytest.raises(StackError) as caught:
        orchestrator.up(tmp_path, OPTIONS, [_sleeper("a"), Service("fragile", _dies_at_start,
                                                                    after=("a",))])
    assert "fragile exited with code 3 while starting" in str(caught.value)
    assert caught.value.log == tmp_path / "logs" / "fragile.log"
    assert "boom: port in use" in caught.value.log.read_text()
    assert orchestrator.read_state(tmp_path) is None
    # the sleeper started in the first wave was stopped again
    for line in (tmp_path / "logs").iterdir():
        assert line.name in {"a.log", "fragile.log"}
    assert not any(p for p in _python_children_sleeping())


def _python_children_sleeping() -> list[int]:
    mine = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == mine and fields[0] != "Z" and b"time.sleep(300)" in cmdline:
            found.append(int(entry.name))
    return found


def test_status_without_a_stack_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"no stack in .*clusterjobs stack up --workdir"):
        orchestrator.status(tmp_path)


def test_a_partly_dead_stack_is_reported_then_replaced(tmp_path: Path) -> None:
    orchestrator.up(tmp_path, OPTIONS, [_sleeper("a"), _sleeper("b")])
    try:
        victim = next(r for r in _records(tmp_path) if r.name == "b")
        os.kill(victim.pid, 9)
        os.waitpid(victim.pid, 0)
        info = orchestrator.status(tmp_path)
        assert not info["healthy"] and info["down"] == ["b"]
        _, started = orchestrator.up(tmp_path, OPTIONS, [_sleeper("a"), _sleeper("b")])
        assert started
        assert all(is_running(r) for r in _records(tmp_path))
    finally:
        orchestrator.down(tmp_path)


def test_a_dir_locked_by_another_command_is_refused(tmp_path: Path) -> None:
    import fcntl

    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("pid 4242")
        handle.flush()
        # flock is per open file description: a second open in this process conflicts too.
        with pytest.raises(StackError, match="in use by another stack command \\(pid 4242\\)"):
            orchestrator.up(tmp_path, OPTIONS, [_sleeper("a")])
    assert orchestrator.read_state(tmp_path) is None


def test_down_never_signals_a_reused_pid(tmp_path: Path) -> None:
    # A record whose start time does not match the live process with that pid is not ours.
    record = ProcessRecord("ghost", os.getpid(), start_ticks=1, log="-")
    assert not is_running(record)


def test_an_up_killed_mid_start_leaves_its_processes_recorded(tmp_path: Path) -> None:
    # Each spawn is persisted at once: a `stack up` that dies before finishing leaves a state
    # that `down` (or the next `up`) uses to stop what it had started.
    import json
    import subprocess
    import textwrap

    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from actors.stack import orchestrator
        from actors.stack.context import StackOptions
        from actors.stack.services import Service

        def first(ctx):
            ctx.spawn("first", {SLEEPER!r})
            return {{}}

        def dies(ctx):
            os._exit(9)  # the `up` process vanishes mid-start

        orchestrator.up(Path({str(tmp_path)!r}), StackOptions(start_timeout=30),
                        [Service("first", first), Service("dies", dies, after=("first",))])
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert done.returncode == 9
    state = json.loads((tmp_path / "stack.json").read_text())
    assert state["starting"] is True
    (record,) = _records(tmp_path)
    assert record.name == "first" and is_running(record)
    info = orchestrator.status(tmp_path)
    assert not info["healthy"]
    assert orchestrator.down(tmp_path) == ["first"]
    assert not is_running(record)


def test_a_failing_service_stops_the_ones_starting_beside_it(tmp_path: Path) -> None:
    started_second = []

    def slow(ctx: StackContext) -> dict[str, object]:
        ctx.wait_until("slow", lambda: False, timeout=60)  # gives up when cancelled
        started_second.append(ctx.spawn("late", SLEEPER))  # never reached
        return {}

    def fails(ctx: StackContext) -> dict[str, object]:
        raise StackError("fails: broken on purpose")

    with pytest.raises(StackError, match="fails: broken on purpose"):
        orchestrator.up(tmp_path, OPTIONS, [Service("slow", slow), Service("fails", fails)])
    assert started_second == []
    assert orchestrator.read_state(tmp_path) is None
