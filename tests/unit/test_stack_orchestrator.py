"""The orchestrator with toy services made of real short-lived processes (no services needed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from actors.stack import orchestrator
from actors.stack.context import StackContext, StackOptions
from actors.stack.errors import StackError
from actors.stack.process import ProcessRecord, _start_ticks, is_running, records_in_text
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
    # The recorded pid now belongs to an unrelated process (its start time differs from the
    # record's): `down` must leave that process alone. It leads its own process group, as
    # our services do, so a signal to the recorded pid's group would reach it.
    unrelated = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        ticks = _start_ticks(unrelated.pid)
        assert ticks is not None
        record = ProcessRecord("ghost", unrelated.pid, start_ticks=ticks - 1, log="-")
        assert not is_running(record)
        # (A state without its .lock file, as a copied stack folder has, is taken down too.)
        (tmp_path / "stack.json").write_text(json.dumps({"processes": [record.to_json()]}))
        assert orchestrator.down(tmp_path) == []
        time.sleep(0.2)  # a SIGTERM would have landed by now
        assert unrelated.poll() is None, "down signalled a process it did not start"
        assert orchestrator.read_state(tmp_path) is None
    finally:
        unrelated.kill()
        unrelated.wait()


def test_down_on_a_folder_without_a_stack_creates_nothing(tmp_path: Path) -> None:
    assert orchestrator.down(tmp_path) == []
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StackError, match=r"no stack in .*misspelt: the folder does not exist"):
        orchestrator.down(tmp_path / "misspelt")
    assert list(tmp_path.iterdir()) == []


def test_down_with_an_unreadable_state_stops_what_it_can_identify(tmp_path: Path) -> None:
    orchestrator.up(tmp_path, OPTIONS, [_sleeper("a"), _sleeper("b"), _sleeper("c")])
    records = _records(tmp_path)
    text = (tmp_path / "stack.json").read_text()
    # Cut inside the last record: only the first ones still parse, the last one is found by
    # its log in DIR/logs. A process of another stack (logging elsewhere) is not touched.
    (tmp_path / "stack.json").write_text(text[: text.rindex('"pid"')])
    other = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        with pytest.raises(StackError, match=r"unreadable stack state .*stack down"):
            orchestrator.status(tmp_path)
        result = orchestrator.take_down(tmp_path)
        assert sorted(result.names) == ["a", "b", "c"]
        assert result.unreadable and "(char " in result.unreadable  # the JSON error
        assert not any(is_running(r) for r in records)
        assert other.poll() is None
        assert result.kept_as == tmp_path / "stack.json.unreadable"
        assert result.kept_as.read_text() == text[: text.rindex('"pid"')]
        assert orchestrator.read_state(tmp_path) is None
    finally:
        other.kill()
        other.wait()


def test_the_partial_state_is_read_record_by_record() -> None:
    text = ('{"processes": [{"name": "zookeeper", "pid": 12, "start_ticks": 345, '
            '"log": "/w/logs/zookeeper.log"}, {"name": "hd')
    assert records_in_text(text) == [ProcessRecord("zookeeper", 12, 345,
                                                   "/w/logs/zookeeper.log")]


def test_up_records_its_sizes(tmp_path: Path) -> None:
    options = StackOptions(masters=2, agents=1, agent_accounts=("alice",), start_timeout=30)
    state, _ = orchestrator.up(tmp_path, options, [_sleeper("a")])
    try:
        assert state["options"] == {"masters": 2, "agents": 1, "agent_accounts": ["alice"]}
        assert orchestrator.is_up(state)
    finally:
        orchestrator.down(tmp_path)
    assert not orchestrator.is_up(state)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_up_stops_what_was_started(tmp_path: Path, signum: int) -> None:
    # `stack up` (the CLI) with two started services and a third one still waiting.
    script = textwrap.dedent(f"""
        import sys
        from actors import cli
        from actors.stack import orchestrator
        from actors.stack.services import Service

        def sleeper(name):
            def start(ctx):
                ctx.spawn(name, {SLEEPER!r})
                return {{}}
            return Service(name, start)

        def waits(ctx):
            ctx.wait_until("waits", lambda: False, timeout=300)
            return {{}}

        orchestrator.all_services = lambda: [sleeper("a"), sleeper("b"),
                                             Service("waits", waits, after=("a", "b"))]
        sys.exit(cli.main(["stack", "up", "--workdir", {str(tmp_path)!r}]))
    """)
    up = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(_recorded(tmp_path)) < 2:
            assert up.poll() is None and time.monotonic() < deadline, "up never started a, b"
            time.sleep(0.05)
        records = _recorded(tmp_path)
        up.send_signal(signum)
        time.sleep(0.1)
        up.send_signal(signum)  # repeated while it cleans up: ignored, the clean-up finishes
        _, stderr = up.communicate(timeout=30)
    finally:
        up.kill()
    name = signal.Signals(signum).name
    assert up.returncode == 128 + signum, stderr
    assert stderr.splitlines()[-1] == f"clusterjobs: interrupted ({name})"
    assert "Traceback" not in stderr
    assert not any(is_running(r) for r in records)
    assert orchestrator.read_state(tmp_path) is None


def _recorded(workdir: Path) -> list[ProcessRecord]:
    try:
        return _records(workdir)
    except (AssertionError, StackError):
        return []


def test_an_up_killed_mid_start_leaves_its_processes_recorded(tmp_path: Path) -> None:
    # Each spawn is persisted at once: a `stack up` that dies before finishing leaves a state
    # that `down` (or the next `up`) uses to stop what it had started.
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


def test_cli_down_on_an_unreadable_state_says_what_it_did(tmp_path: Path) -> None:
    orchestrator.up(tmp_path, OPTIONS, [_sleeper("a"), _sleeper("b")])
    records = _records(tmp_path)
    (tmp_path / "stack.json").write_text("{garbage")
    done = subprocess.run([sys.executable, "-m", "actors.cli", "stack", "down", "--workdir",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("ts=")]  # logfmt
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"stack.json in {tmp_path} was unreadable (")
    assert "stopped the 2 processes" in lines[0]
    assert f"kept as {tmp_path / 'stack.json.unreadable'}" in lines[0]
    assert not any(is_running(r) for r in records)
