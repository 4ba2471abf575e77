"""The agent's pure helpers: attributes, sandbox layout, executor environment, exit states."""

from pathlib import Path

import pytest

from actors.local.agent_core import (
    AgentConfigError,
    command_argv,
    executor_env,
    exit_state,
    parse_attributes,
    sandbox_dir,
)
from actors.local.zk import ZkUrlError, lowest, master_info, parse_zk_url


def test_attributes():
    attrs = parse_attributes("eos_account:alice; rack : r1;weight:3")
    assert attrs[0] == {"name": "eos_account", "type": "TEXT", "text": {"value": "alice"}}
    assert attrs[2] == {"name": "weight", "type": "SCALAR", "scalar": {"value": 3.0}}
    with pytest.raises(AgentConfigError):
        parse_attributes("nocolon")


def test_sandbox_and_env():
    box = sandbox_dir(Path("/w"), "A-S0", "F1", "E1", "C1")
    assert str(box) == "/w/slaves/A-S0/frameworks/F1/executors/E1/runs/C1"
    env = executor_env(agent_id="A-S0", agent_address="127.0.0.1:5051", framework_id="F1",
                       executor_id="E1", sandbox=box, checkpoint=False, shutdown_grace=5,
                       extra=[{"name": "FOO", "value": "bar"}])
    assert env["MESOS_AGENT_ENDPOINT"] == "127.0.0.1:5051"
    assert env["MESOS_DIRECTORY"] == env["MESOS_SANDBOX"] == str(box)
    assert env["MESOS_CHECKPOINT"] == "0" and env["FOO"] == "bar"
    assert env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == "5secs"


def test_command_argv_and_exit_states():
    assert command_argv({"value": "echo hi"}) == (["/bin/sh", "-c", "echo hi"], None)
    assert command_argv({"value": "/bin/echo", "shell": False,
                         "arguments": ["echo", "a"]}) == (["/bin/echo", "a"], None)
    assert command_argv({"value": ""})[1]
    assert exit_state(0, False)[0] == "TASK_FINISHED"
    assert exit_state(3, False) == ("TASK_FAILED", "Command exited with status 3")
    assert exit_state(-15, True)[0] == "TASK_KILLED"


def test_zk_url_and_master_info():
    assert parse_zk_url("zk://h1:2181,h2:2181/mesos") == ("h1:2181,h2:2181", "/mesos")
    for bad in ("http://x/mesos", "zk://h:1", "zk:///mesos"):
        with pytest.raises(ZkUrlError):
            parse_zk_url(bad)
    assert lowest(["json.info_0000000012", "json.info_0000000003", "log_replicas"]) == \
        "json.info_0000000003"
    assert lowest(["log_replicas"]) is None
    info = master_info("m1", "127.0.0.1", 5050, "host", "1.11.0")
    assert info["ip"] == 16777343  # network-order uint32, as Mesos writes it
    assert info["address"] == {"hostname": "host", "ip": "127.0.0.1", "port": 5050}
