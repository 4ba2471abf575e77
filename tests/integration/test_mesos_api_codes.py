"""HTTP answers of the v1 scheduler and executor endpoints, as Mesos 1.x gives them."""

from __future__ import annotations

import http.client
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))

from mesos_raw import leader_address

SUBSCRIBE = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
    "user": "nobody", "name": "codes-test", "failover_timeout": 0}}}).encode()


def _request(address: str, method: str, path: str, body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection(address, timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        if resp.status != 200:  # a 200 here would be an endless event stream
            resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def test_scheduler_endpoint_status_codes(stack):
    leader = leader_address(stack["mesos_masters"])
    path = "/api/v1/scheduler"
    status, headers = _request(leader, "GET", path)
    assert status == 405 and headers["allow"] == "POST"
    assert _request(leader, "POST", path, SUBSCRIBE)[0] == 400  # no Content-Type
    assert _request(leader, "POST", path, SUBSCRIBE, {
        "Content-Type": "application/json; charset=utf-8"})[0] == 415  # exact match only
    assert _request(leader, "POST", path, SUBSCRIBE, {
        "Content-Type": "application/json", "Accept": "application/x-protobuf"})[0] == 406
    assert _request(leader, "POST", path, SUBSCRIBE, {
        "Content-Type": "application/json", "Mesos-Stream-Id": "x"})[0] == 400


def test_executor_endpoint_status_codes(stack):
    agent = stack["mesos_agents"][0].removeprefix("http://")
    path = "/api/v1/executor"
    call = json.dumps({"type": "UPDATE", "framework_id": {"value": "nope"},
                       "executor_id": {"value": "nope"}, "update": {"status": {
                           "task_id": {"value": "t"}, "state": "TASK_RUNNING",
                           "source": "SOURCE_EXECUTOR",
                           "uuid": "AAAAAAAAAAAAAAAAAAAAAA=="}}}).encode()
    status, headers = _request(agent, "GET", path)
    assert status == 405 and headers["allow"] == "POST"
    assert _request(agent, "POST", path, call)[0] == 400  # no Content-Type
    assert _request(agent, "POST", path, call, {"Content-Type": "text/plain"})[0] == 415
    assert _request(agent, "POST", path, call, {"Content-Type": "application/json"})[0] == 400
    heartbeat = json.dumps({"type": "HEARTBEAT", "framework_id": {"value": "nope"},
                            "executor_id": {"value": "nope"}}).encode()
    assert _request(agent, "POST", path, heartbeat,
                    {"Content-Type": "application/json"})[0] == 202
    staging = call.replace(b"TASK_RUNNING", b"TASK_STAGING")
    assert _request(agent, "POST", path, staging, {"Content-Type": "application/json"})[0] == 400


def test_state_redirects_to_the_leader_and_metrics_do_not(stack):
    leader = leader_address(stack["mesos_masters"])
    assert _request(leader, "GET", "/master/state")[0] == 200
    others = [u.removeprefix("http://") for u in stack["mesos_masters"]
              if u.removeprefix("http://") != leader]
    assert others, "needs a non-leading master: a stack with 2+ masters (stack up --masters 3)"
    for address in others:
        status, headers = _request(address, "GET", "/master/state")
        assert status == 307 and headers["location"] == f"//{leader}/master/state"
        status, headers = _request(address, "GET", "/master/redirect")
        assert status == 307 and headers["location"] == f"//{leader}"
        assert _request(address, "GET", "/metrics/snapshot")[0] == 200  # its own metrics
