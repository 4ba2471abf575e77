"""The Mesos exporter's pure conversion: /metrics/snapshot keys to Prometheus names, types and
units, and exposition text that promtool's linter accepts."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from actors.observe.mesos_exporter import ProbeError, parse_probe
from actors.observe.mesos_metrics import convert, convert_snapshot, render

MASTER = {"master/cpus_total": 12.0, "master/cpus_used": 1.5, "master/cpus_percent": 0.125,
          "master/mem_total": 2048.0, "master/disk_used": 10.0, "master/tasks_finished": 7.0,
          "master/tasks_running": 2.0, "master/messages_decline_offers": 4.0,
          "master/slave_removals/reason_unhealthy": 1.0, "master/elected": 1.0,
          "master/uptime_secs": 63.7, "master/cpus_revocable_total": 0.0,
          "allocator/mesos/event_queue_dispatches": 0.0, "registrar/state_store_ms/p99": 1.5}
AGENT = {"slave/cpus_total": 4.0, "slave/mem_used": 512.0, "slave/tasks_failed": 2.0,
         "slave/executors_terminated": 3.0, "slave/registered": 1.0,
         "slave/executors_running": 1.0, "system/load_1min": 0.4, "containerizer/mesos/x": "n/a"}


def by_name(snapshot: dict, role: str) -> dict:
    return {s.name: s for s in convert_snapshot(snapshot, role)}


def test_master_names_types_and_units() -> None:
    got = by_name(MASTER, "master")
    assert got["mesos_master_cpus_capacity"].value == 12.0
    assert got["mesos_master_cpus_used_ratio"].value == 0.125
    assert got["mesos_master_mem_capacity_bytes"].value == 2048 * 1024 * 1024
    assert got["mesos_master_disk_used_bytes"].value == 10 * 1024 * 1024
    assert got["mesos_master_tasks_finished_total"].kind == "counter"
    assert got["mesos_master_tasks_running"].kind == "gauge"
    assert got["mesos_master_messages_decline_offers_total"].value == 4.0
    assert got["mesos_master_slave_removals_reason_unhealthy_total"].kind == "counter"
    assert got["mesos_master_uptime_seconds"].value == 63.7
    assert got["mesos_master_cpus_revocable_capacity"].kind == "gauge"
    assert got["mesos_master_registrar_state_store_seconds_p99"].value == 0.0015


def test_agent_keys_lose_the_slave_prefix_and_strings_are_skipped() -> None:
    got = by_name(AGENT, "agent")
    assert got["mesos_agent_cpus_capacity"].value == 4.0
    assert got["mesos_agent_mem_used_bytes"].value == 512 * 1024 * 1024
    assert got["mesos_agent_tasks_failed_total"].kind == "counter"
    assert got["mesos_agent_executors_terminated_total"].kind == "counter"
    assert got["mesos_agent_system_load_1min"].kind == "gauge"
    assert not any("containerizer" in name for name in got)


def test_no_gauge_ends_in_total() -> None:
    sample = convert("master/event_queue_total", 3.0, "master")
    assert sample is not None and sample.name == "mesos_master_event_queue_count"


def test_bad_role_is_refused() -> None:
    with pytest.raises(ValueError, match="role: expected one of master, agent, got 'slave'"):
        convert_snapshot({}, "slave")


@pytest.mark.parametrize(("snapshot", "role"), [(MASTER, "master"), (AGENT, "agent")])
def test_promtool_finds_nothing_in_the_exposition(snapshot: dict, role: str) -> None:
    text = render(convert_snapshot(snapshot, role), True, role, 0.01)
    assert "mesos_up 1\n" in text
    done = subprocess.run([shutil.which("promtool") or "/usr/bin/promtool", "check", "metrics"],
                          input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


def test_a_failed_probe_says_so() -> None:
    text = render([], False, "agent", 5.0)
    assert "mesos_up 0\n" in text and "mesos_probe_duration_seconds 5.0\n" in text


def test_probe_requests() -> None:
    assert parse_probe("target=m1:5050&role=master") == ("http://m1:5050/metrics/snapshot",
                                                         "master")
    assert parse_probe("target=http://a:5051&role=agent")[0] == "http://a:5051/metrics/snapshot"
    for query, message in [("role=master", "target: missing"),
                           ("target=m1&role=master", "target: expected host:port, got 'm1'"),
                           ("target=m1:5050&role=slave", "role: expected one of")]:
        with pytest.raises(ProbeError, match=message):
            parse_probe(query)
