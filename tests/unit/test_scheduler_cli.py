"""`clusterjobs scheduler`, `status` and `cancel`: operator errors are one line, no traceback."""

from __future__ import annotations

import socket

import pytest

from actors import cli
from scheduler.service_cli import parse_dispatchers, progress_line


def run(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("argv,message", [
    (("scheduler", "--master", "zk://h:1/mesos", "--zk", "http://x", "--webhdfs", "http://w",
      "--nodeos", "http://n"), "--zk: expected zk://host:port/path, got 'http://x'"),
    (("scheduler", "--zk", "zk://h:1/cj", "--webhdfs", "http://w", "--nodeos", "http://n"),
     "--master is required (or --stack DIR)"),
    (("scheduler", "--master", "m:5050", "--zk", "zk://h:1/cj", "--webhdfs", "http://w",
      "--nodeos", "http://n", "--dispatcher-accounts", "m:5050"),
     "--dispatcher-accounts: expected host:port=account, got 'm:5050'"),
    (("status", "--scheduler", "http://127.0.0.1:9"),
     "scheduler at http://127.0.0.1:9/jobs does not answer: [Errno 111] Connection refused"),
    (("cancel", "j-1", "--scheduler", "http://127.0.0.1:9"),
     "cancel needs the scheduler's token: --auth-token-file, CLUSTERJOBS_AUTH_TOKEN, "
     "or --stack DIR"),
])
def test_operator_errors_are_one_line(capsys, monkeypatch, argv, message):
    monkeypatch.delenv("MESOS_MASTER", raising=False)
    monkeypatch.delenv("CLUSTERJOBS_AUTH_TOKEN", raising=False)
    code, err = run(capsys, *argv)
    assert code == 1
    assert err == f"clusterjobs: error: {message}"


def test_status_without_a_known_scheduler_names_the_stack(capsys, tmp_path):
    code, err = run(capsys, "status", "--stack", str(tmp_path))
    assert code == 1 and err.startswith(f"clusterjobs: error: no running scheduler known in "
                                        f"{tmp_path}")


def test_port_taken_is_an_operator_error():
    from scheduler.http import HttpError, serve

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(HttpError, match=r"cannot serve HTTP on 127\.0\.0\.1:"):
            serve(object(), "127.0.0.1", sock.getsockname()[1])


def test_dispatcher_map_and_progress_line():
    assert parse_dispatchers("a:1=d1, b:2=d2") == {"a:1": "d1", "b:2": "d2"}
    line = progress_line({"id": "j", "state": "running", "instances": 4,
                          "counts": {"finished": 1, "running": 3}}, width=8)
    assert line == "j [##------] 1/4 running (1 finished, 3 running)"


def test_progress_line_names_tasks_flagged_for_a_time_discrepancy():
    job = {"id": "j", "state": "finished", "instances": 2, "counts": {"finished": 2},
           "tasks": [{"flags": ["time_discrepancy"]}, {"flags": []}]}
    assert progress_line(job, width=4) == (
        "j [####] 2/2 finished (2 finished); 1 flagged: time discrepancy")
