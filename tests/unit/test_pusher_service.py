"""The scheduler's accounting glue: the status lines and where the pusher's keys come from."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler import pusher_service, service_cli

DEV_KEY = "5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD3"


def test_status_lines_show_the_backlog_and_each_parked_credit() -> None:
    lines = pusher_service.describe({
        "enabled": True, "outbox": 12,
        "metrics": {"outbox_entries": 12, "outbox_oldest_age_seconds": 31.25,
                    "pusher_confirmed_actions_total": 400},
        "parked": [{"key": "00ab", "message": "assertion failure with message: worker bob is "
                    "not registered for researcher alice",
                    "entry": {"kind": "worker", "account": "bob", "researcher": "alice",
                              "time_us": 1500, "task_id": "t1"}}]})
    assert lines == [
        "accounting on: 12 credit(s) in the outbox, oldest 31.2 s, 400 confirmed since start",
        "  parked 00ab: worker bob for alice, 1500 us, task t1: assertion failure with "
        "message: worker bob is not registered for researcher alice"]


def test_status_says_when_accounting_is_off() -> None:
    assert pusher_service.describe({"enabled": False, "outbox": 3, "metrics": None,
                                     "parked": []}) == [
        "accounting OFF (no chain key): 3 credit(s) in the outbox"]


def test_chain_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLUSTERJOBS_CHAIN_KEY", raising=False)
    assert service_cli._chain_keys(None, stack=False) == ()  # accounting off
    assert service_cli._chain_keys(None, stack=True) == (DEV_KEY,)
    path = tmp_path / "key"
    path.write_text(DEV_KEY + "\n")
    assert service_cli._chain_keys(str(path), stack=False) == (DEV_KEY,)
    path.write_text("nonsense\n")
    with pytest.raises(service_cli.SchedulerCliError,
                       match=r"--chain-key-file: key file .* key 1 is not a valid private key"):
        service_cli._chain_keys(str(path), stack=True)
    monkeypatch.setenv("CLUSTERJOBS_CHAIN_KEY", DEV_KEY)
    assert service_cli._chain_keys(None, stack=False) == (DEV_KEY,)
