"""The agent's status-update ledger and task-state helpers (pure)."""

import base64

from actors.local.tasks import UpdateLedger, is_terminal, make_status


def _status(tid: str, state: str) -> dict:
    return make_status(tid, state, agent_id="a1", executor_id=tid)


def test_updates_of_a_task_go_one_at_a_time_in_order():
    ledger = UpdateLedger(retry_seconds=10)
    s1, s2, s3 = (_status("t", s) for s in ("TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"))
    assert ledger.add("f", s1, now=0) is True
    assert ledger.add("f", s2, now=0) is False
    assert ledger.add("f", s3, now=0) is False
    assert ledger.latest_state("t") == "TASK_FINISHED"
    assert [d[1]["state"] for d in ledger.due(0)] == ["TASK_STARTING"]
    assert ledger.due(5) == []  # in flight, not yet due for a retry
    assert [d[1] for d in ledger.due(10)] == [s1]  # resent until acknowledged
    assert ledger.acknowledge("t", s2["uuid"]) == (None, False)  # not the head: ignored
    assert ledger.acknowledge("t", s1["uuid"]) == (s1, True)
    assert [d[1] for d in ledger.due(10)] == [s2]
    ledger.acknowledge("t", s2["uuid"])
    assert ledger.acknowledge("t", s3["uuid"]) == (s3, False)
    assert len(ledger) == 0 and ledger.latest_state("t") is None  # terminal and acked: gone
    assert ledger.acknowledge("t", s3["uuid"]) == (None, False)  # duplicate ack


def test_resend_all_and_drop_framework():
    ledger = UpdateLedger(retry_seconds=10)
    ledger.add("f1", _status("a", "TASK_RUNNING"), now=0)
    ledger.add("f2", _status("b", "TASK_RUNNING"), now=0)
    ledger.due(0)
    assert ledger.due(1) == []
    ledger.resend_all(1)
    assert len(ledger.due(1)) == 2
    assert ledger.drop_framework("f1") == 1
    assert len(ledger) == 1


def test_status_shape():
    status = make_status("t", "TASK_LOST", source="SOURCE_MASTER", reason="R", with_uuid=False)
    assert "uuid" not in status and status["task_id"] == {"value": "t"}
    withuuid = make_status("t", "TASK_RUNNING")
    assert len(base64.b64decode(withuuid["uuid"])) == 16
    assert is_terminal("TASK_LOST") and not is_terminal("TASK_UNREACHABLE")
