"""The job spec (scheduler/spec.py): every bad class gets its own one-line message naming the
field; good specs parse with defaults filled in and round-trip through to_json."""

from __future__ import annotations

import json
import re

import pytest

from scheduler.spec import Input, SpecError, new_job_id, parse_spec

DATADIR = "/protocols/alice"
GOOD = {"version": 1, "researcher": "alice", "name": "wordcount",
        "command": ["wc", "-l", "words.txt"]}


def error_of(doc: object, datadir: str | None = DATADIR) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_spec(doc, datadir=datadir)  # type: ignore[arg-type]
    err = caught.value
    assert str(err) == f"{err.field}: {err.problem}"
    assert "\n" not in str(err)
    return err


def with_(**changes: object) -> dict:
    return {**GOOD, **changes}


# --- every bad class of the issue, each with its own message -----------------------------------

def test_malformed_json() -> None:
    err = error_of('{"version": 1, "researcher": "alice",')
    assert err.field == "spec"
    assert err.problem.startswith("malformed JSON: ")
    assert "line 1 column" in err.problem


def test_not_an_object() -> None:
    assert str(error_of("[1, 2]")) == "spec: must be a JSON object, not an array"


def test_not_utf8() -> None:
    assert error_of(b'{"name": "\xff"}').problem.startswith("not UTF-8")


def test_unknown_field() -> None:
    assert str(error_of(with_(cpus=2))) == "cpus: unknown field"


def test_unknown_nested_field() -> None:
    assert str(error_of(with_(resources={"gpus": 1}))) == "resources.gpus: unknown field"


def test_missing_researcher() -> None:
    doc = {k: v for k, v in GOOD.items() if k != "researcher"}
    assert str(error_of(doc)) == "researcher: missing (required)"


def test_bad_researcher_name() -> None:
    err = error_of(with_(researcher="Alice!"))
    assert err.field == "researcher"
    assert "chain account name" in err.problem


@pytest.mark.parametrize("name,value", [("cpus", -1), ("cpus", 0), ("mem", 0),
                                        ("mem", -128), ("disk", 0)])
def test_negative_or_zero_resources(name: str, value: float) -> None:
    err = error_of(with_(resources={name: value}))
    assert err.field == f"resources.{name}"
    assert err.problem == f"must be greater than 0, got {value}"


def test_resource_of_wrong_type() -> None:
    assert str(error_of(with_(resources={"cpus": "2"}))) == \
        'resources.cpus: must be a number, got "2"'


def test_input_outside_the_datadir() -> None:
    err = error_of(with_(inputs=["data/a.txt", "/protocols/bob/secret.txt"]))
    assert err.field == "inputs[1]"
    assert err.problem == ("'/protocols/bob/secret.txt' is outside the protocol's datadir "
                           "/protocols/alice")


def test_input_prefix_of_the_datadir_is_outside() -> None:
    # /protocols/alicex starts with the datadir's text but is another folder.
    assert error_of(with_(inputs=["/protocols/alicex/a"])).field == "inputs[0]"


@pytest.mark.parametrize("path", ["data/../../bob/x", "../x", "/protocols/alice/../bob/x"])
def test_input_with_dotdot(path: str) -> None:
    err = error_of(with_(inputs=[path]))
    assert err.field == "inputs[0]"
    assert err.problem == f"{path!r} must not contain '..'"


def test_input_with_dotdot_refused_without_datadir_too() -> None:
    assert error_of(with_(inputs=["../x"]), datadir=None).field == "inputs[0]"


def test_input_of_wrong_shape() -> None:
    err = error_of(with_(inputs=[{"path": "a"}]))
    assert err.field == "inputs[0]"
    assert "HDFS path or" in err.problem


def test_input_sandbox_name_escaping() -> None:
    err = error_of(with_(inputs=[{"hdfs": "a.txt", "as": "../a.txt"}]))
    assert str(err) == "inputs[0].as: '../a.txt' escapes the sandbox ('..')"


def test_two_inputs_with_one_sandbox_name() -> None:
    err = error_of(with_(inputs=["x/a.txt", "y/a.txt"]))
    assert str(err) == "inputs[1]: sandbox name 'a.txt' is already taken by inputs[0]"


@pytest.mark.parametrize("path,problem", [
    ("../out", "'../out' escapes the sandbox ('..')"),
    ("results/../../out", "'results/../../out' escapes the sandbox ('..')"),
    ("/etc/passwd", "'/etc/passwd' must be relative to the sandbox, not absolute"),
    (".", "'.' names the sandbox itself"),
    ("stdout", "'stdout' is reserved for the task's stdout/stderr"),
])
def test_output_escaping_the_sandbox(path: str, problem: str) -> None:
    assert str(error_of(with_(outputs=["ok.txt", path]))) == f"outputs[1]: {problem}"


def test_bad_constraint_operator() -> None:
    err = error_of(with_(constraints=[["eos_account", "LIKE", "w.*"], ["host", "EQUALS", "a"]]))
    assert err.field == "constraints[1][1]"
    assert err.problem == ('unknown operator (one of LIKE, UNLIKE, UNIQUE, CLUSTER, MAX_PER), '
                           'got "EQUALS"')


@pytest.mark.parametrize("constraint,field,words", [
    (["host"], "constraints[0]", "must be [attribute, operator]"),
    (["host", "LIKE"], "constraints[0]", "LIKE needs a regular expression"),
    (["host", "LIKE", "("], "constraints[0][2]", "not a regular expression"),
    (["host", "UNIQUE", "x"], "constraints[0]", "UNIQUE takes no value"),
    (["host", "MAX_PER", "0"], "constraints[0][2]", "MAX_PER needs a whole number"),
    (["host", "MAX_PER"], "constraints[0]", "MAX_PER needs a whole number"),
])
def test_bad_constraint_values(constraint: list, field: str, words: str) -> None:
    err = error_of(with_(constraints=[constraint]))
    assert err.field == field
    assert words in err.problem


@pytest.mark.parametrize("instances", [0, -3])
def test_instances_below_one(instances: int) -> None:
    assert str(error_of(with_(instances=instances))) == \
        f"instances: must be at least 1, got {instances}"


def test_instances_not_whole() -> None:
    assert str(error_of(with_(instances=1.5))) == "instances: must be an integer, got 1.5"


@pytest.mark.parametrize("command", [[], "", 7])
def test_bad_command(command: object) -> None:
    err = error_of(with_(command=command))
    assert err.field == "command"
    assert "argv list" in err.problem


def test_blank_program() -> None:
    assert str(error_of(with_(command=[" ", "x"]))) == "command[0]: the program must not be empty"


def test_reserved_environment_variable() -> None:
    err = error_of(with_(env={"CLUSTERJOBS_INSTANCE": "3"}))
    assert err.field == "env.CLUSTERJOBS_INSTANCE"
    assert err.problem.startswith("reserved")


def test_bad_version_and_timeout_and_image() -> None:
    assert error_of(with_(version=2)).field == "version"
    assert str(error_of(with_(timeout_seconds=0))) == \
        "timeout_seconds: must be greater than 0, got 0"
    assert error_of(with_(container={"image": "Not An Image"})).field == "container.image"


# --- good specs --------------------------------------------------------------------------------

def test_defaults() -> None:
    spec = parse_spec(GOOD, datadir=DATADIR)
    assert spec.command == ("wc", "-l", "words.txt")
    assert (spec.cpus, spec.mem, spec.disk) == (1.0, 128.0, 128.0)
    assert (spec.instances, spec.max_retries, spec.timeout_seconds, spec.priority) == \
        (1, 0, None, 0)
    assert spec.image is None and spec.inputs == () and spec.outputs == ()


def test_full_spec_resolves_inputs_and_round_trips() -> None:
    doc = with_(command="sort words.txt > out/sorted.txt", container={"image": "python:3.11"},
                resources={"cpus": 0.5, "mem": 64, "disk": 10},
                inputs=["data/words.txt", {"hdfs": "/protocols/alice/ref.bin", "as": "in/ref"}],
                outputs=["out/", "summary.json"], env={"LANG": "C"}, instances=4,
                max_retries=2, timeout_seconds=30, priority=5,
                constraints=[["eos_account", "LIKE", "worker[0-9]+"], ["host", "UNIQUE"]])
    spec = parse_spec(json.dumps(doc).encode(), datadir=DATADIR)
    assert spec.inputs == (Input("/protocols/alice/data/words.txt", "words.txt"),
                           Input("/protocols/alice/ref.bin", "in/ref"))
    assert spec.outputs == ("out", "summary.json")
    assert spec.image == "python:3.11"
    assert spec.constraints == (("eos_account", "LIKE", "worker[0-9]+"), ("host", "UNIQUE", None))
    assert dict(spec.env) == {"LANG": "C"}
    again = parse_spec(spec.to_json(), datadir=DATADIR)
    assert again == spec
    assert again.to_json() == spec.to_json()
    assert json.loads(json.dumps(spec.to_json())) == spec.to_json()


def test_without_datadir_inputs_are_kept_as_given() -> None:
    spec = parse_spec(with_(inputs=["data/a.txt"]), datadir=None)
    assert spec.inputs == (Input("data/a.txt", "a.txt"),)


def test_job_ids_are_unique_and_hdfs_safe() -> None:
    now = 1795694701.0  # 2026-11-26 12:05:01 UTC
    assert new_job_id("wordcount", now, b"\x4f\x3a\x9c") == "wordcount-20261126t120501-4f3a9c"
    ids = {new_job_id("Odd Name_2!", now) for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[a-z0-9-]+", i) for i in ids)
    assert next(iter(ids)).startswith("odd-name-2-20261126t120501-")
