"""`clusterjobs mesos-exporter` against the stack's real Mesos (emulator) master: the probe's
figures are the master's own, and promtool's linter finds nothing in the probe's answer nor in
the exporter's own /metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest


def start_exporter() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "actors.cli", "mesos-exporter", "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        found = re.search(r"url=(http://\S+)", line)
        if found:
            return proc, found.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail("the exporter did not start")


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    proc, url = start_exporter()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def lint(text: str) -> str:
    done = subprocess.run([shutil.which("promtool") or "/usr/bin/promtool", "check", "metrics"],
                          input=text, capture_output=True, text=True, timeout=60)
    return f"rc={done.returncode} {done.stdout}{done.stderr}"


def leader(stack: dict) -> str:
    for master in stack["mesos_masters"]:
        _, text = get(f"{master}/metrics/snapshot")
        if json.loads(text)["master/elected"] == 1.0:
            return master
    pytest.fail("no leading master")


def value(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not exported"
    return float(found.group(1))


def test_probe_of_the_leading_master(stack: dict, exporter: str) -> None:
    master = leader(stack)
    target = master.removeprefix("http://")
    code, text = get(f"{exporter}/probe?target={target}&role=master")
    assert code == 200
    assert value(text, "mesos_up") == 1
    assert value(text, "mesos_master_elected") == 1
    snapshot = json.loads(get(f"{master}/metrics/snapshot")[1])
    assert value(text, "mesos_master_slaves_active") == snapshot["master/slaves_active"] > 0
    assert value(text, "mesos_master_cpus_capacity") == snapshot["master/cpus_total"]
    assert value(text, "mesos_master_mem_capacity_bytes") == \
        snapshot["master/mem_total"] * 1024 * 1024
    assert lint(text) == "rc=0 "


def test_exporters_own_metrics_pass_promtool(exporter: str) -> None:
    code, text = get(f"{exporter}/metrics")
    assert code == 200 and "mesos_exporter_probes_total" in text
    assert lint(text) == "rc=0 "


def test_unreachable_target_is_mesos_up_0_and_bad_probe_is_400(exporter: str) -> None:
    code, text = get(f"{exporter}/probe?target=127.0.0.1:1&role=agent")
    assert code == 200 and value(text, "mesos_up") == 0
    code, text = get(f"{exporter}/probe?target=127.0.0.1:1&role=slave")
    assert code == 400 and text == "role: expected one of master, agent, got 'slave'\n"
