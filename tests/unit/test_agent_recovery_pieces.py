"""Pieces of agent recovery that need no services: the ledger's checkpoint round trip, the
launcher's status file and adopting a launcher that is not our child."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from actors.local.containerizer.containers import LAUNCHER, AdoptedProcess, start_time
from actors.local.tasks import UpdateLedger, make_status


def test_ledger_export_restore_round_trip():
    ledger = UpdateLedger(10.0)
    first = make_status("t1", "TASK_RUNNING")
    second = make_status("t1", "TASK_FINISHED")
    done = make_status("t3", "TASK_RUNNING")
    ledger.add("fw-a", first, 0.0)
    ledger.add("fw-a", second, 0.0)
    ledger.add("fw-a", done, 0.0)
    ledger.acknowledge("t3", done["uuid"])
    ledger.add("fw-b", make_status("t2", "TASK_RUNNING"), 0.0)
    saved = json.loads(json.dumps(ledger.export({"fw-a"}, {"t1", "t3"})))
    assert {item["task_id"]: len(item["pending"]) for item in saved["streams"]} == {"t1": 2,
                                                                                 "t3": 0}
    again = UpdateLedger(10.0)
    again.restore(saved)
    assert again.latest_state("t1") == "TASK_FINISHED"
    assert again.seen("t1", first["uuid"]) and again.seen("t1", second["uuid"])
    assert again.seen("t3", done["uuid"])  # acknowledged before: a resend is a duplicate
    assert not again.seen("t2", first["uuid"])
    assert [s["uuid"] for _f, s, _l in again.due(1.0)] == [first["uuid"]]  # head, once


def _launch(tmp_path, argv: list[str]) -> subprocess.Popen:
    spec = {"procs": [], "pid_ns": False, "mount_ns": False, "rootfs": None, "mounts": [],
            "cwd": str(tmp_path), "argv": argv, "status_file": str(tmp_path / "status")}
    return subprocess.Popen([sys.executable, "-I", str(LAUNCHER), json.dumps(spec)],
                            start_new_session=True)


def test_launcher_records_exit_status_and_signal(tmp_path):
    proc = _launch(tmp_path, ["sh", "-c", "exit 7"])
    assert proc.wait(10) == 7
    assert int((tmp_path / "status").read_text()) == 7 << 8
    proc = _launch(tmp_path, ["sh", "-c", "kill -TERM $$"])
    assert proc.wait(10) == -15  # the launcher dies of the same signal
    assert int((tmp_path / "status").read_text()) == 15


def test_adopted_process_waits_through_a_pidfd_and_reads_the_status(tmp_path):
    proc = _launch(tmp_path, ["sh", "-c", "sleep 0.5; exit 3"])
    adopted = AdoptedProcess(proc.pid, tmp_path / "status", start_time(proc.pid) is not None)
    assert adopted.poll() is None
    began = time.monotonic()
    proc.wait(10)  # (the real parent reaps; an adopted one's is the host's init)
    assert adopted.wait(5) == 3
    assert time.monotonic() - began < 5
    gone = AdoptedProcess(proc.pid, tmp_path / "nothing", alive=False)
    assert gone.poll() == -9  # no status left: destroyed
