"""`clusterjobs` failure paths that need running services, and probes that tell the truth.

The session stack is only read here; the tests that kill services bring up a stack of their
own (one agent) in a temporary folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))

from cli_failure import processes_marked, run_cli, run_failing

from actors.stack import orchestrator
from actors.stack.process import ProcessRecord, is_running

SMALL = ["--agents", "1", "--no-sample"]  # the private stacks of the tests that kill services


def test_up_with_other_sizes_on_a_running_stack_says_how_to_change_them(
        stack_dir: Path, tmp_path: Path) -> None:
    state = json.loads((stack_dir / "stack.json").read_text())
    masters = len(state["endpoints"]["mesos_masters"])
    agents = len(state["endpoints"]["mesos_agents"])
    line = run_failing(["stack", "up", "--workdir", str(stack_dir), "--masters",
                        str(masters + 1), "--agents", str(agents + 1)], code=1, cwd=tmp_path,
                       names=[f"running with {masters} master(s) and {agents} agent(s)",
                              f"clusterjobs stack down --workdir {stack_dir}",
                              f"--masters {masters + 1} --agents {agents + 1}"])
    assert "nothing changed" not in line
    assert json.loads((stack_dir / "stack.json").read_text()) == state
    # The sizes it runs with are no change at all.
    done = run_cli(["stack", "up", "--workdir", str(stack_dir), "--masters", str(masters),
                    "--agents", str(agents)], tmp_path, uuid.uuid4().hex)
    assert done.returncode == 0 and "already running; nothing changed" in done.stderr


def test_delegate_from_an_account_that_does_not_exist(stack: dict, stack_dir: Path,
                                                      tmp_path: Path) -> None:
    for where in (["--url", stack["nodeos"]], ["--stack", str(stack_dir)]):
        line = run_failing(["contracts", "delegate", "--funder", "nosuchacct", *where],
                           code=1, cwd=tmp_path, names=["account nosuchacct does not exist"])
        assert "unknown key" not in line and "boost" not in line


def _records(workdir: Path) -> dict[str, ProcessRecord]:
    state = json.loads((workdir / "stack.json").read_text())
    return {p["name"]: ProcessRecord.from_json(p) for p in state["processes"]}


def _kill(record: ProcessRecord) -> None:
    os.killpg(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_running(record):
        assert time.monotonic() < deadline, f"{record.name} outlived SIGKILL"
        time.sleep(0.05)


def _probe(workdir: Path, marker: str) -> tuple[int, dict, list[str]]:
    done = run_cli(["stack", "status", "--probe", "--json", "--workdir", str(workdir)],
                   workdir.parent, marker)
    plain = run_cli(["stack", "status", "--probe", "--workdir", str(workdir)],
                    workdir.parent, marker)
    state_line = next(ln for ln in plain.stdout.splitlines() if ln.startswith("state "))
    failing = state_line.partition("UNHEALTHY: ")[2]
    return done.returncode, json.loads(done.stdout), failing.split(", ") if failing else []


def test_probes_tell_what_is_true_now_and_a_restart_names_the_new_endpoints(
        tmp_path: Path) -> None:
    workdir, marker = tmp_path / "stack", uuid.uuid4().hex
    up = ["stack", "up", "--workdir", str(workdir), *SMALL]
    done = run_cli(up, tmp_path, marker, timeout=300)
    assert done.returncode == 0, done.stderr
    try:
        records = _records(workdir)
        _kill(records["hdfs-datanode"])
        code, info, unhealthy = _probe(workdir, marker)
        # Seconds after the kill the NameNode still counts the DataNode as live; the probe
        # asks the DataNode itself.
        assert code == 3
        assert info["health"]["webhdfs"] == (
            "FAILED: no DataNode answers; the NameNode still counts 1 as live")
        assert info["health"]["mesos"].startswith("leader http://127.0.0.1:")
        assert unhealthy == ["hdfs-datanode", "webhdfs"]

        _kill(records["zookeeper"])
        code, info, unhealthy = _probe(workdir, marker)
        # The masters keep their agents for 75 s, but no framework can find a leader now.
        assert code == 3
        assert info["health"]["zookeeper"].startswith("FAILED: ")
        assert info["health"]["mesos"].startswith("FAILED: ZooKeeper at 127.0.0.1:")
        assert info["health"]["mesos"].endswith("does not answer: no leader can be found")
        assert len(unhealthy) == len(set(unhealthy))  # each name once
        assert {"zookeeper", "mesos", "webhdfs", "hdfs-datanode"} <= set(unhealthy)

        before = json.loads((workdir / "stack.json").read_text())["endpoints"]
        done = run_cli(up, tmp_path, marker, timeout=300)
        assert done.returncode == 0, done.stderr
        after = json.loads((workdir / "stack.json").read_text())["endpoints"]
        changed = [line for line in done.stderr.splitlines() if "endpoints changed" in line]
        assert len(changed) == 1, done.stderr
        assert f"zookeeper {before['zookeeper']} -> {after['zookeeper']}" in changed[0]
        assert f"webhdfs {before['webhdfs']} -> {after['webhdfs']}" in changed[0]
        code, info, _ = _probe(workdir, marker)
        assert code == 0, info
    finally:
        run_cli(["stack", "down", "--workdir", str(workdir)], tmp_path, marker)
    assert processes_marked(marker) == []


def test_sigterm_during_up_stops_every_service_started(tmp_path: Path) -> None:
    workdir, marker = tmp_path / "stack", uuid.uuid4().hex
    env = dict(os.environ, CLUSTERJOBS_TEST_MARKER=marker)
    up = subprocess.Popen([sys.executable, "-m", "actors.cli", "stack", "up", "--workdir",
                           str(workdir), *SMALL], env=env, cwd=tmp_path,
                          stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(_records_if_any(workdir)) < 4:  # a few services spawned, not yet all up
            assert up.poll() is None, up.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        up.send_signal(signal.SIGTERM)
        _, stderr = up.communicate(timeout=60)
    finally:
        up.kill()
    assert up.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.splitlines()[-1] == "clusterjobs: interrupted (SIGTERM)"
    assert processes_marked(marker) == []
    assert orchestrator.read_state(workdir) is None


def _records_if_any(workdir: Path) -> dict[str, ProcessRecord]:
    try:
        return _records(workdir)
    except (OSError, ValueError):
        return {}
