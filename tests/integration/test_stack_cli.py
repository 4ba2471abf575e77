"""`clusterjobs stack` as an operator uses it, against the session's running stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXPECTED_KEYS = {"zookeeper", "webhdfs", "nodeos", "prometheus", "mesos", "mesos_masters",
                 "mesos_agents"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "actors.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_status_json_names_every_endpoint(stack_dir: Path) -> None:
    done = _cli("stack", "status", "--json", "--workdir", str(stack_dir))
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info.keys() >= EXPECTED_KEYS
    assert info["healthy"] is True
    assert info["zookeeper"].startswith("127.0.0.1:")
    assert info["mesos"].startswith("zk://127.0.0.1:") and info["mesos"].endswith("/mesos")


def test_second_up_on_a_running_dir_says_so(stack_dir: Path) -> None:
    before = json.loads((stack_dir / "stack.json").read_text())
    done = _cli("stack", "up", "--workdir", str(stack_dir))
    assert done.returncode == 0, done.stderr
    assert "already running; nothing changed" in done.stderr
    assert json.loads((stack_dir / "stack.json").read_text()) == before


def test_status_of_an_empty_dir_is_one_clear_line(tmp_path: Path) -> None:
    done = _cli("stack", "status", "--workdir", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip() == (f"clusterjobs: error: no stack in {tmp_path} "
                                   f"(run: clusterjobs stack up --workdir {tmp_path})")
    assert "Traceback" not in done.stderr


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    done = _cli("stack", "up", "--agents", "zero", "--workdir", str(tmp_path))
    assert done.returncode == 2
    assert "--agents: not a whole number: 'zero'" in done.stderr
    done = _cli("stack", "up", "--agents", "2", "--agent-accounts", "alice",
                "--workdir", str(tmp_path))
    assert done.returncode != 0
    assert "--agent-accounts names 1 accounts for 2 agents" in done.stderr


def test_probe_asks_every_service_a_real_question(stack_dir: Path) -> None:
    done = _cli("stack", "status", "--json", "--probe", "--workdir", str(stack_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    health = json.loads(done.stdout)["health"]
    assert set(health) == {"zookeeper", "webhdfs", "nodeos", "prometheus", "mesos"}
    assert health["zookeeper"] == "mode standalone"
    assert health["webhdfs"].startswith("1 live DataNode(s)")
    assert health["nodeos"].startswith("head block ")
    agents = len(json.loads(done.stdout)["mesos_agents"])
    assert health["mesos"].startswith("leader http://127.0.0.1:")
    assert health["mesos"].endswith(f", {agents} agent(s) registered, {agents} answering")


def test_status_prints_lists_and_mappings_for_people(stack_dir: Path) -> None:
    done = _cli("stack", "status", "--workdir", str(stack_dir))
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(None, 1) for line in done.stdout.splitlines())
    info = json.loads(_cli("stack", "status", "--json", "--workdir", str(stack_dir)).stdout)
    assert lines["mesos_masters"] == ",".join(info["mesos_masters"])
    assert lines["chain"].startswith("token_contract=eosio.token; token_symbol=4,JOB; ")
    assert not any(c in done.stdout for c in "[]{}'"), done.stdout  # no Python reprs
