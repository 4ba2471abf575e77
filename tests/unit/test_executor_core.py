"""Pure parts of the executor: grace periods, exit descriptions, one-line messages, the
terminal data, output file lists."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from executor import core
from executor.nested import is_unsupported, launch_body
from executor.runner import OutputError, output_files


def test_kill_grace_prefers_the_kill_then_the_task_then_3s() -> None:
    task = {"kill_policy": {"grace_period": {"nanoseconds": 1_500_000_000}}}
    assert core.kill_grace(None) == 3.0
    assert core.kill_grace(task) == 1.5
    assert core.kill_grace(task, {"grace_period": {"nanoseconds": 0}}) == 0.0
    assert core.kill_grace({"kill_policy": {}}) == 3.0


def test_exit_codes_and_descriptions() -> None:
    assert core.exit_code(3) == 3
    assert core.exit_code(-9) == 137
    assert core.describe_exit(3) == "exit code 3"
    assert core.describe_exit(137) == "killed by signal SIGKILL"


def test_failure_message_is_one_short_line() -> None:
    tail = core.stderr_tail(b"a\n\n  b  \nc\nd\ne\nf\n")
    assert tail == "b | c | d | e | f"
    message = core.failed_command_message(2, tail)
    assert message == "command failed with exit code 2; stderr: b | c | d | e | f"
    long = core.failed_command_message(1, "x" * 1000)
    assert len(long) == core.MESSAGE_MAX and "\n" not in long
    assert core.failed_command_message(1, "") == "command failed with exit code 1; stderr is empty"


def test_measures_json_has_every_key() -> None:
    data = json.loads(core.Measures(run_us=5, exit_code=0, outputs=["/a"]).to_bytes())
    assert set(data) == {"run_us", "cpu_us", "exit_code", "stage_in_us", "stage_out_us",
                         "bytes_in", "bytes_out", "outputs"}


def test_task_dir_name_is_a_plain_file_name() -> None:
    assert core.task_dir_name("job-1.0") == "job-1.0"
    assert core.task_dir_name("../x/y") == ".._x_y"


def test_output_files_walks_folders_and_adds_logs(tmp_path: Path) -> None:
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "sub" / "b").write_text("b")
    (tmp_path / "out" / "a").write_text("a")
    (tmp_path / "one.txt").write_text("1")
    names = [name for _, name in output_files(tmp_path, ("out", "one.txt"))]
    assert names == ["out/a", "out/sub/b", "one.txt", "stdout", "stderr"]


def test_output_files_refuses_missing_and_escaping_outputs(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="'gone' was not produced"):
        output_files(tmp_path, ("gone",))
    (tmp_path / "link").symlink_to("/etc/hostname")
    with pytest.raises(OutputError, match="outside the sandbox"):
        output_files(tmp_path, ("link",))


def test_nested_launch_mounts_the_task_folder_of_the_parent_sandbox() -> None:
    body = launch_body("parent-1", "child-1", "busybox:1.36", ("echo", "a b"), {"X": "1"},
                       "tasks/t1")
    launch = body["launch_container"]
    assert body["type"] == "LAUNCH_CONTAINER"
    assert launch["container_id"] == {"value": "child-1", "parent": {"value": "parent-1"}}
    assert launch["container"]["mesos"]["image"] == {"type": "DOCKER",
                                                     "docker": {"name": "busybox:1.36"}}
    volume = launch["container"]["volumes"][0]
    assert volume["source"] == {"type": "SANDBOX_PATH",
                                "sandbox_path": {"type": "PARENT", "path": "tasks/t1"}}
    assert shlex.split(launch["command"]["value"])[-3:] == ["/bin/sh", "-c", "echo 'a b'"]


@pytest.mark.parametrize("status,text,unsupported", [
    (404, "no such endpoint /api/v1", True),
    (400, "Failed to validate agent::Call: unsupported call type 'LAUNCH_CONTAINER'", True),
    (501, "", True),
    (400, "Parent container abc cannot be found", False),
    (400, "image busybox:1.36 not found in the store", False),
])
def test_unsupported_nested_calls_are_told_from_refusals(status: int, text: str,
                                                         unsupported: bool) -> None:
    assert is_unsupported(status, text) is unsupported
