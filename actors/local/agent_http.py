"""The agent's HTTP endpoints: the v1 executor API, /state, and the internal calls the
master makes (launch, kill, ack, message, shutdown_executor, shutdown_framework).
"""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from actors.local import agent_views, recordio
from actors.local.containerizer import operator_api
from actors.local.validation import update_call_error
from actors.local.web import Handler, pump_stream

if TYPE_CHECKING:
    from actors.local.agent import Agent
    from actors.local.agent_model import Executor

EXECUTOR_HEARTBEAT = recordio.encode_json({"type": "HEARTBEAT"})


class AgentHandler(Handler):
    """The agent's HTTP endpoints: executor API, /state, internal master calls."""

    @property
    def agent(self) -> Agent:
        return self.server.app  # type: ignore[return-value]

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/health":
            self.answer(200)
        elif path in ("/state", "/slave(1)/state", "/state.json"):
            self.answer_json(200, agent_views.state_json(self.agent))
        elif path == "/version":
            self.answer_json(200, {"version": "1.11.0"})
        elif path in ("/monitor/statistics", "/monitor/statistics.json"):
            self.answer_json(200, operator_api.monitor_statistics(self.agent))
        elif path in ("/api/v1/executor", "/api/v1"):
            self.answer(405, b"", headers={"Allow": "POST"})
        else:
            self.answer_text(404, f"no such endpoint {path}")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        media_error = self.api_media_error() if path in ("/api/v1/executor",
                                                         "/api/v1") else None
        if media_error is not None:
            self.read_body()
            self.answer_text(*media_error)
            return
        try:
            msg = self.read_json()
        except ValueError as exc:
            self.answer_text(400, str(exc))
            return
        if not isinstance(msg, dict):
            self.answer_text(400, "Expecting a JSON object")
            return
        agent = self.agent
        if path == "/api/v1/executor":
            self._executor_call(msg)
            return
        if path == "/api/v1":
            status, answer = operator_api.handle(agent, msg)
            if isinstance(answer, str):
                self.answer_text(status, answer)
            elif answer is None:
                self.answer(status)
            else:
                self.answer_json(status, answer)
            return
        messages = msg.get("messages") if path == "/internal/batch" else [
            {"path": path, "payload": msg}]
        if not isinstance(messages, list):
            self.answer_text(400, "expecting 'messages' to be a list")
            return
        for item in messages:
            if not self._internal(agent, item.get("path"), item.get("payload") or {}):
                return
        self.answer(202)

    def _internal(self, agent: Agent, path: object, msg: dict) -> bool:
        """One master request; False when an error answer was already sent."""
        try:
            if path == "/internal/launch":
                agent.launch(msg)
            elif path == "/internal/kill":
                agent.kill(msg["framework_id"], msg["task_id"])
            elif path == "/internal/ack":
                agent.acknowledge(msg["framework_id"], msg["task_id"], msg["uuid"])
            elif path == "/internal/message":
                agent.message(msg["framework_id"], msg["executor_id"], msg["data"])
            elif path == "/internal/shutdown_executor":
                agent.shutdown_executor(msg["framework_id"], msg["executor_id"])
            elif path == "/internal/shutdown_framework":
                agent.shutdown_framework(msg["framework_id"])
            elif path == "/internal/update_framework":
                agent.update_framework(msg["framework_id"], msg["framework_info"])
            else:
                self.answer_text(404, f"no such endpoint {path}")
                return False
        except (KeyError, TypeError) as exc:
            self.answer_text(400, f"malformed request: missing {exc}")
            return False
        return True

    def _executor_call(self, call: dict) -> None:
        agent = self.agent
        kind = call.get("type")
        fw_id = (call.get("framework_id") or {}).get("value")
        exec_id = (call.get("executor_id") or {}).get("value")
        if not isinstance(fw_id, str) or not isinstance(exec_id, str):
            self.answer_text(400, "Expecting 'framework_id' and 'executor_id' to be present")
            return
        if kind == "HEARTBEAT":
            self.answer(202)  # Mesos 1.x accepts executor heartbeats before any lookup
            return
        if kind == "UPDATE":
            error = update_call_error(call, exec_id, fw_id)
            if error:
                self.answer_text(400, f"Failed to validate executor::Call: {error}")
                return
        if kind == "SUBSCRIBE" and not self.accepts_json():
            self.answer_text(406, "Expecting 'Accept' to allow 'application/x-protobuf' or "
                                  "'application/json'")
            return
        with agent.lock:
            exe = agent.executors.get((fw_id, exec_id))
        if exe is None or exe.info is None:
            self.answer_text(400, "Executor cannot be found")
            return
        if kind != "SUBSCRIBE" and not exe.subscribed:
            self.answer_text(403, "Executor is not subscribed")
            return
        if kind == "SUBSCRIBE":
            self._executor_subscribe(exe, call.get("subscribe") or {})
        elif kind == "UPDATE":
            status = call["update"]["status"]
            status["executor_id"] = {"value": exec_id}
            status["agent_id"] = {"value": agent.agent_id}
            agent.update(fw_id, status)
            self.answer(202)
        elif kind == "MESSAGE":
            data = (call.get("message") or {}).get("data")
            if not isinstance(data, str):
                self.answer_text(400, "MESSAGE needs message.data")
                return
            agent.host.send(agent, "/internal/agent/message", {
                "agent_id": agent.agent_id, "framework_id": fw_id, "executor_id": exec_id,
                "data": data})
            self.answer(202)
        else:
            self.answer_text(400, f"Failed to validate executor::Call: unknown type {kind!r}")

    def _executor_subscribe(self, exe: Executor, subscribe: dict) -> None:
        agent = self.agent
        events: queue.Queue = queue.Queue()
        agent.executor_subscribing(exe, subscribe)  # issue 12: what the executor still has
        with agent.lock:
            if exe.stream is not None:
                exe.stream.put(None)  # a re-subscription replaces the old stream
            exe.stream = events
            exe.subscribed = True
            events.put(recordio.encode_json({"type": "SUBSCRIBED", "subscribed": {
                "executor_info": exe.info,
                "framework_info": agent.frameworks.get(exe.framework_id, {}),
                "agent_info": agent.info,
                "container_id": {"value": exe.container_id}}}))
            for event in exe.queued:
                events.put(recordio.encode_json(event))
            exe.queued.clear()
        try:
            self.start_stream({})
            # Mesos 1.x agents send HTTP executors a HEARTBEAT event every
            # DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL (30 min); pymesos ignores it.
            pump_stream(self, events, EXECUTOR_HEARTBEAT,
                        agent.host.args.executor_heartbeat_seconds)
        except OSError:
            pass
        finally:
            self.close_connection = True
            with agent.lock:
                if exe.stream is events:
                    exe.stream = None
