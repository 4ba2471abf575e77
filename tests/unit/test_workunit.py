"""The work unit (TaskInfo.data) and the ExecutorInfo: built from a spec, parsed back, checked."""

from __future__ import annotations

import json

import pytest

from executor.info import executor_info
from executor.workunit import (
    WorkUnitError,
    build_workunit,
    encode_workunit,
    parse_workunit,
)
from scheduler.spec import Input, parse_spec

SPEC = parse_spec({"version": 1, "researcher": "alice", "name": "wc",
                   "command": ["wc", "-c", "in/a"], "inputs": [{"hdfs": "a.txt", "as": "in/a"}],
                   "outputs": ["out"], "env": {"LANG": "C"}, "instances": 3,
                   "timeout_seconds": 9}, datadir="/protocols/alice")


def test_build_then_parse() -> None:
    unit = build_workunit(SPEC, "wc-20261126t120000-abcdef", 2, 1, "/protocols/alice", "alice")
    assert unit["output_dir"] == "/protocols/alice/jobs/wc-20261126t120000-abcdef/2"
    assert unit["inputs"] == [{"hdfs": "/protocols/alice/a.txt", "as": "in/a"}]
    parsed = parse_workunit(encode_workunit(unit))
    assert parsed.command == ("wc", "-c", "in/a")
    assert parsed.inputs == (Input("/protocols/alice/a.txt", "in/a"),)
    assert (parsed.instance, parsed.instances, parsed.attempt) == (2, 3, 1)
    assert parsed.timeout_seconds == 9.0
    assert parsed.task_env() == {"LANG": "C", "CLUSTERJOBS_JOB_ID": "wc-20261126t120000-abcdef",
                                 "CLUSTERJOBS_INSTANCE": "2", "CLUSTERJOBS_INSTANCES": "3",
                                 "CLUSTERJOBS_ATTEMPT": "1"}


def test_build_refuses_instance_out_of_range_and_unresolved_inputs() -> None:
    with pytest.raises(ValueError, match="out of range"):
        build_workunit(SPEC, "j", 3, 0, "/protocols/alice", "alice")
    loose = parse_spec({"version": 1, "researcher": "alice", "name": "x", "command": "true",
                        "inputs": ["a.txt"]})
    with pytest.raises(ValueError, match="not resolved"):
        build_workunit(loose, "j", 0, 0, "/protocols/alice", "alice")


def good() -> dict:
    return build_workunit(SPEC, "j", 0, 0, "/protocols/alice", "alice")


@pytest.mark.parametrize("change,words", [
    ({"version": 2}, "version must be 1"),
    ({"command": []}, "command"),
    ({"job_id": ""}, "job_id"),
    ({"instance": -1}, "instance"),
    ({"inputs": [{"hdfs": "rel", "as": "x"}]}, "inputs[0]"),
    ({"inputs": [{"hdfs": "/a", "as": "../x"}]}, "escapes the sandbox"),
    ({"outputs": ["/etc"]}, "outputs[0]"),
    ({"env": {"A": 1}}, "env"),
    ({"timeout_seconds": 0}, "timeout_seconds"),
])
def test_bad_work_units(change: dict, words: str) -> None:
    with pytest.raises(WorkUnitError) as caught:
        parse_workunit(json.dumps({**good(), **change}).encode())
    assert words in str(caught.value)


def test_not_json() -> None:
    with pytest.raises(WorkUnitError, match="not UTF-8 JSON"):
        parse_workunit(b"{")


def test_executor_info() -> None:
    info = executor_info("cj-exec", command="clusterjobs-executor",
                         webhdfs="http://127.0.0.1:9870", extra_env={"X": "1"})
    assert info["type"] == "CUSTOM"
    assert info["executor_id"] == {"value": "cj-exec"}
    assert info["command"]["value"] == "clusterjobs-executor"
    assert {"name": "CLUSTERJOBS_WEBHDFS", "value": "http://127.0.0.1:9870"} in \
        info["command"]["environment"]["variables"]
    assert {"name": "X", "value": "1"} in info["command"]["environment"]["variables"]
    assert [r["name"] for r in info["resources"]] == ["cpus", "mem"]
