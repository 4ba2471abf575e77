"""Must-show 2-4: leader failover, framework failover, agent death.

Each test starts a private mini-cluster of masters and agents (through actors/stack/mesos.py)
on the session's ZooKeeper under a znode path of its own, so it can kill parts of it without
touching the shared stack. Timeouts are short (agent timeout 2 s, update retry 1 s).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.stack import mesos
from actors.stack.context import StackContext, StackOptions
from actors.stack.process import is_running, stop

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))

from mesos_framework import SmallFramework, Spec, poll, start_driver
from mesos_raw import RawScheduler, get_json, leader_address, post

TERMINAL = ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR")
MASTER_FLAGS = ["--agent-timeout", "2", "--agent-reregister-timeout", "3",
                "--heartbeat-seconds", "2", "--allocation-interval", "0.5",
                "--zk-session-timeout", "2"]
AGENT_FLAGS = ["--update-retry", "1", "--executor-shutdown-grace", "1",
               "--executor-registration-timeout", "2"]


class MiniCluster:
    """Masters and agents of one test; ``kill`` stops one process by name."""

    def __init__(self, ctx: StackContext, endpoints: dict) -> None:
        self.ctx = ctx
        self.zk_url: str = endpoints["mesos"]
        self.masters: list[str] = endpoints["mesos_masters"]
        self.agents: list[str] = endpoints["mesos_agents"]

    def leader(self) -> str:
        return leader_address(self.live_masters())

    def live_masters(self) -> list[str]:
        alive = {r.name for r in self.ctx.records if is_running(r)}
        return [m for i, m in enumerate(self.masters) if f"mini-master-{i + 1}" in alive]

    def kill(self, name: str) -> None:
        record = next(r for r in self.ctx.records if r.name == name)
        stop(record)

    def crash_master(self, address: str) -> None:
        """SIGKILL a master: no goodbye, its znode goes only when its ZK session expires."""
        index = [m.removeprefix("http://") for m in self.masters].index(address)
        record = next(r for r in self.ctx.records if r.name == f"mini-master-{index + 1}")
        assert is_running(record)
        os.kill(record.pid, signal.SIGKILL)
        stop(record)  # reaps it


@pytest.fixture
def mini(stack, tmp_path, request) -> Iterator[MiniCluster]:
    masters, agents = request.param
    ctx = StackContext(workdir=tmp_path / "mini",
                       options=StackOptions(masters=masters, agents=agents,
                                            start_timeout=60.0),
                       endpoints={"zookeeper": stack["zookeeper"]})
    try:
        found = mesos.start(ctx, zk_path=f"/mesos-test-{uuid.uuid4().hex[:8]}", prefix="mini",
                            master_flags=MASTER_FLAGS, agent_flags=AGENT_FLAGS)
        yield MiniCluster(ctx, found)
    finally:
        for record in reversed(ctx.records):
            stop(record)


def _reconcile_all(driver, fw: SmallFramework, tids: list[str], timeout: float) -> dict:
    """Explicit reconciliation of the tasks still unanswered, repeated until every task is
    answered: {task: its first answer}. (A task that ends and is acknowledged meanwhile is
    unknown to the master afterwards, so a later answer would be TASK_LOST, as in Mesos.)"""
    answers: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while set(answers) != set(tids):
        assert time.monotonic() < deadline, f"unanswered: {set(tids) - set(answers)}"
        asked = [t for t in tids if t not in answers]
        mark = {t: len(fw.updates.get(t, [])) for t in asked}
        driver.reconcileTasks([{"task_id": {"value": t}} for t in asked])
        time.sleep(1.0)
        with fw.cond:
            for tid in asked:
                for update in fw.updates.get(tid, [])[mark[tid]:]:
                    if update.get("reason") == "REASON_RECONCILIATION":
                        answers.setdefault(tid, update["state"])
    return answers


@pytest.mark.parametrize("mini", [(3, 2)], indirect=True)
def test_leader_killed_mid_run(mini, tmp_path):
    specs = [Spec(f"cmd-{i}", "command", sleep=8) for i in range(10)]
    specs += [Spec(f"exe-{i}", "custom", sleep=8) for i in range(10)]
    fw = SmallFramework(specs, tmp_path)
    driver = start_driver(fw, mini.zk_url, name="leader-failover", failover_timeout=60)
    try:
        fw.wait(lambda: all(fw._last(s.task_id) == "TASK_RUNNING" for s in specs), 60,
                "all tasks running")
        old = mini.leader()
        mini.crash_master(old)
        # The driver finds the new leader through ZooKeeper and re-subscribes with its id.
        fw.wait(lambda: fw.registrations >= 2, 45, "re-registration with the new leader")
        new = mini.leader()
        assert new != old
        # Tasks the framework already saw end need no reconciliation (and a task ended and
        # acknowledged is unknown to the master: Mesos would answer TASK_LOST for it).
        tids = [s.task_id for s in specs if fw._last(s.task_id) not in TERMINAL]
        answers = _reconcile_all(driver, fw, tids, 30)
        assert set(answers.values()) <= {"TASK_RUNNING", "TASK_FINISHED"}, answers
        fw.wait(fw.all_terminal, 60, "all tasks to end")
        for spec in specs:
            states = fw.states(spec.task_id)
            assert states[-1] == "TASK_FINISHED", (spec, states)
            assert "TASK_LOST" not in states
            assert fw.runs(spec.task_id) == 1, spec  # never run twice
        state = get_json(f"http://{new}/master/state")
        assert state["frameworks"][0]["id"] == fw.framework_id
    finally:
        driver.stop()
        driver.join()


@pytest.mark.parametrize("mini", [(1, 1)], indirect=True)
def test_scheduler_failover_within_and_past_timeout(mini, tmp_path):
    specs = [Spec("long-cmd", "command", sleep=60), Spec("long-exe", "custom", sleep=60)]
    first = SmallFramework(specs, tmp_path)
    driver = start_driver(first, mini.zk_url, name="failover", failover_timeout=30)
    fw_id = None
    try:
        first.wait(lambda: all(first._last(s.task_id) == "TASK_RUNNING" for s in specs), 60,
                   "tasks running")
        fw_id = first.framework_id
    finally:
        driver.stop(failover=True)  # a scheduler restart: no TEARDOWN
        driver.join()
    # Within failover_timeout: the same framework_id gets its running tasks back.
    second = SmallFramework([], tmp_path)
    driver = start_driver(second, mini.zk_url, name="failover", failover_timeout=2,
                          framework_id=fw_id)
    try:
        second.wait(lambda: second.registrations >= 1, 30, "re-subscription")
        assert second.framework_id == fw_id
        answers = _reconcile_all(driver, second, [s.task_id for s in specs], 15)
        assert answers == {"long-cmd": "TASK_RUNNING", "long-exe": "TASK_RUNNING"}
    finally:
        driver.stop(failover=True)
        driver.join()
    # Past failover_timeout (now 2 s): the master removes the framework and kills its tasks.
    leader = mini.leader()

    def removed() -> bool:
        state = get_json(f"http://{leader}/master/state")
        return fw_id in {f["id"] for f in state["completed_frameworks"]}

    poll(removed, 20, "the framework to be removed")
    poll(lambda: get_json(f"{mini.agents[0]}/state")["frameworks"] == [], 20,
          "the agent to stop the framework's executors")
    state = get_json(f"http://{leader}/master/state")
    killed = {t["id"]: t["state"] for t in state["completed_tasks"]
              if t["framework_id"] == fw_id}
    assert killed == {"long-cmd": "TASK_KILLED", "long-exe": "TASK_KILLED"}
    status, text, _h = post(leader, {"type": "SUBSCRIBE", "framework_id": {"value": fw_id},
                                     "subscribe": {"framework_info": {
                                         "user": "nobody", "name": "failover",
                                         "id": {"value": fw_id}}}})
    # Mesos answers 200 and the stream carries one ERROR event, then ends (pymesos calls
    # Scheduler.error with it).
    length, _nl, record = text.partition("\n")
    assert status == 200 and int(length) == len(record.encode())
    assert json.loads(record) == {"type": "ERROR",
                                  "error": {"message": "Framework has been removed"}}


@pytest.mark.parametrize("mini", [(1, 1)], indirect=True)
def test_agent_death_reports_tasks_lost_or_unreachable(mini, tmp_path):
    plain = SmallFramework([Spec(f"p-{i}", "command", sleep=60) for i in range(2)],
                           tmp_path)
    aware = SmallFramework([Spec(f"a-{i}", "command", sleep=60) for i in range(2)],
                           tmp_path)
    drivers = [start_driver(plain, mini.zk_url, name="plain"),
               start_driver(aware, mini.zk_url, name="aware", partition_aware=True)]
    try:
        for fw in (plain, aware):
            fw.wait(lambda fw=fw: all(fw._last(t) == "TASK_RUNNING" for t in fw.specs), 60,
                    "tasks running")
        leader = mini.leader()
        agent_id = get_json(f"http://{leader}/master/state")["slaves"][0]["id"]
        mini.kill("mini-agent-1")
        for fw, state in ((plain, "TASK_LOST"), (aware, "TASK_UNREACHABLE")):
            fw.wait(lambda fw=fw, s=state: all(fw._last(t) == s for t in fw.specs), 30,
                    f"tasks {state}")
            for tid in fw.specs:
                last = fw.updates[tid][-1]
                # v1 spelling of REASON_SLAVE_REMOVED, with the time the agent was removed.
                assert last["reason"] == "REASON_AGENT_REMOVED"
                assert last["unreachable_time"]["nanoseconds"] > 0
                assert last["agent_id"]["value"] == agent_id
            fw.wait(lambda fw=fw: {"agent_id": agent_id} in fw.failures, 10, "slaveLost")
        state = get_json(f"http://{leader}/master/state")
        assert agent_id not in {s["id"] for s in state["slaves"]}
        assert len(state["frameworks"]) == 2
        assert all(not f["offers"] for f in state["frameworks"])  # its resources left offers
        metrics = get_json(f"http://{leader}/metrics/snapshot")
        assert metrics["master/tasks_lost"] >= 2 and metrics["master/tasks_unreachable"] >= 2
    finally:
        for driver in drivers:
            driver.stop()
            driver.join()


@pytest.mark.parametrize("mini", [(1, 1)], indirect=True)
def test_updates_resent_until_acknowledged_and_heartbeats(mini):
    raw = RawScheduler(mini.leader(), {"user": "nobody", "name": "resend"})
    fid = {"value": raw.framework_id}
    try:
        offer = raw.wait_event(lambda e: e["type"] == "OFFERS", 15)["offers"]["offers"][0]
        task = {"task_id": {"value": "once"}, "agent_id": offer["agent_id"], "name": "once",
                "command": {"value": "true"},
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]}
        assert raw.call({"type": "ACCEPT", "framework_id": fid, "accept": {
            "offer_ids": [offer["id"]], "operations": [
                {"type": "LAUNCH", "launch": {"task_infos": [task]}}]}})[0] == 202

        def updates() -> list[dict]:
            return [e["update"]["status"] for e in list(raw.events) if e["type"] == "UPDATE"]

        # Not acknowledged: TASK_STARTING comes again (same uuid), and nothing after it.
        poll(lambda: len(updates()) >= 2, 15, "a resent update")
        first, again = updates()[:2]
        assert first["state"] == again["state"] == "TASK_STARTING"
        assert first["uuid"] == again["uuid"]
        assert {u["state"] for u in updates()} == {"TASK_STARTING"}
        for state in ("TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"):
            poll(lambda s=state: any(u["state"] == s for u in updates()), 15, state)
            status = next(u for u in updates() if u["state"] == state)
            assert raw.call({"type": "ACKNOWLEDGE", "framework_id": fid, "acknowledge": {
                "agent_id": status["agent_id"], "task_id": status["task_id"],
                "uuid": status["uuid"]}})[0] == 202
        poll(lambda: get_json(f"{mini.agents[0]}/state")["unacknowledged_updates"] == 0, 15,
              "the agent's ledger to drain")
        raw.wait_event(lambda e: e["type"] == "HEARTBEAT", 10)  # --heartbeat-seconds 2
    finally:
        raw.call({"type": "TEARDOWN", "framework_id": fid})
        raw.close()


@pytest.mark.parametrize("mini", [(1, 1)], indirect=True)
def test_broken_executors_fail_their_tasks_and_free_resources(mini):
    raw = RawScheduler(mini.leader(), {"user": "nobody", "name": "broken"})
    fid = {"value": raw.framework_id}
    cpus = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]
    try:
        offer = raw.wait_event(lambda e: e["type"] == "OFFERS", 15)["offers"]["offers"][0]
        tasks = []
        for name, command in (("exits", "exit 3"), ("silent", "sleep 30")):
            tasks.append({"task_id": {"value": name}, "agent_id": offer["agent_id"],
                          "name": name, "resources": cpus, "executor": {
                              "executor_id": {"value": f"{name}-exec"},
                              "command": {"value": command}, "resources": cpus}})
        assert raw.call({"type": "ACCEPT", "framework_id": fid, "accept": {
            "offer_ids": [offer["id"]], "operations": [
                {"type": "LAUNCH", "launch": {"task_infos": tasks}}]}})[0] == 202

        def final(tid: str) -> dict:
            event = raw.wait_event(lambda e: e["type"] == "UPDATE" and e["update"]["status"][
                "task_id"]["value"] == tid, 20)
            return event["update"]["status"]

        exits, silent = final("exits"), final("silent")  # the second after the 2 s timeout
        assert exits["state"] == silent["state"] == "TASK_FAILED"
        # Slave::sendExecutorTerminatedStatusUpdate() and registerExecutorTimeout().
        assert (exits["reason"], exits["message"]) == (
            "REASON_EXECUTOR_TERMINATED", "Executor terminated")
        assert (silent["reason"], silent["message"]) == (
            "REASON_EXECUTOR_REGISTRATION_TIMEOUT", "Executor did not register within 2secs")
        for status in (exits, silent):
            raw.call({"type": "ACKNOWLEDGE", "framework_id": fid, "acknowledge": {
                "agent_id": status["agent_id"], "task_id": status["task_id"],
                "uuid": status["uuid"]}})
        poll(lambda: {e["failure"]["executor_id"]["value"] for e in list(raw.events)
                       if e["type"] == "FAILURE" and "executor_id" in e["failure"]}
              == {"exits-exec", "silent-exec"}, 15, "executor FAILURE events")
        statuses = {e["failure"]["executor_id"]["value"]: e["failure"].get("status")
                    for e in list(raw.events)
                    if e["type"] == "FAILURE" and "executor_id" in e["failure"]}
        # The raw wait status: exit code 3 << 8, and SIGKILL (9) for the silent one.
        assert statuses == {"exits-exec": 3 << 8, "silent-exec": 9}
        agent = get_json(f"http://{mini.leader()}/master/state")["slaves"][0]
        assert agent["used_resources"].get("cpus", 0) == 0  # tasks and executors freed
    finally:
        raw.call({"type": "TEARDOWN", "framework_id": fid})
        raw.close()
