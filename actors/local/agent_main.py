"""The agent process: hosts one or more agents, follows the leading master through
ZooKeeper, registers, pings and delivers status updates; and its command line.

Run it as ``python -m actors.local.agent`` (see :mod:`actors.local.agent` for the flags).
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import signal
import sys
import threading
import time
from pathlib import Path

from actors.local import agent_recovery, agent_views
from actors.local.agent import Agent
from actors.local.agent_core import DEFAULT_RESOURCES, parse_attributes
from actors.local.containerizer import flags as container_flags
from actors.local.containerizer.containers import Containerizer
from actors.local.resources import Resources
from actors.local.web import Client
from actors.local.zk import Detector, parse_zk_url

log = logging.getLogger("clusterjobs.mesos.agent")


class AgentProcess:
    """One OS process hosting one or more agents, one ZooKeeper detector, one sender loop."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.wakeup = threading.Event()
        self.leader: str | None = None
        self.client: Client | None = None
        self.outbox: queue.Queue = queue.Queue()
        ports = [int(p) for p in str(args.port).split(",") if p.strip()]
        accounts = [a for a in args.account.split(",") if a] if args.account else []
        if accounts and len(accounts) != len(ports):
            raise SystemExit(f"--account names {len(accounts)} accounts for "
                             f"{len(ports)} ports")
        resources = Resources.parse_flag(args.resources)
        self.containers: Containerizer = container_flags.containerizer(args)
        self.agents: list[Agent] = []
        for index, port in enumerate(ports):
            attrs = parse_attributes(args.attributes)
            if accounts:
                attrs = [a for a in attrs if a["name"] != "eos_account"]
                attrs.append({"name": "eos_account", "type": "TEXT",
                              "text": {"value": accounts[index]}})
            self.agents.append(Agent(self, args.index_base + index, port, attrs, resources,
                                     Path(args.work_dir) / f"agent-{port}"))
        for agent in self.agents:
            agent_recovery.recover(agent, agent.saved_state)
        self.containers.remove_orphans()  # after recovery took back what it knows
        hosts, path = parse_zk_url(args.zk)
        self.detector = Detector(hosts, path, self._on_leader)

    def _on_leader(self, info: dict | None) -> None:
        address = None
        if info:
            address = f"{info['address']['ip']}:{info['address']['port']}"
        log.info("leading master", extra={"master": address})
        self.leader = address
        self.wakeup.set()

    def send(self, agent: Agent, path: str, payload: dict) -> None:
        """Best-effort message to the master (executor exits, framework messages)."""
        self.outbox.put((path, payload))
        self.wakeup.set()

    def _post(self, path: str, payload: dict) -> tuple[int, bytes]:
        leader = self.leader
        if leader is None:
            return 503, b""
        if self.client is None or f"{self.client.host}:{self.client.port}" != leader:
            self.client = Client(leader, timeout=5.0)
        try:
            status, body, _h = self.client.post(path, payload)
        except OSError:
            return 599, b""
        return status, body

    def loop(self) -> None:
        """Register, ping, and (re)send due status updates for every agent."""
        while True:
            self.wakeup.wait(0.25)
            self.wakeup.clear()
            leader = self.leader
            if leader is None:
                continue
            now = time.monotonic()
            for agent in self.agents:
                self._maintain(agent, leader, now)
            while True:
                try:
                    path, payload = self.outbox.get_nowait()
                except queue.Empty:
                    break
                self._post(path, payload)

    def _maintain(self, agent: Agent, leader: str, now: float) -> None:
        if agent.registered_with != leader:
            status, body = self._post("/internal/agent/register",
                                      agent_views.registration(agent))
            if status == 200:
                agent.registered(leader, json.loads(body))
                log.info("registered", extra={"agent_id": agent.agent_id, "master": leader})
            return
        if now >= agent.next_ping:
            agent.next_ping = now + agent.ping_seconds
            status, _b = self._post("/internal/agent/ping", {"agent_id": agent.agent_id})
            if status in (404, 307):
                agent.registered_with = None
                return
        with agent.lock:
            due = agent.ledger.due(now)
        if due:
            # One POST carries every due update of this agent (cheap under bursts).
            code, _b = self._post("/internal/agent/updates", {
                "agent_id": agent.agent_id,
                "updates": [{"framework_id": f, "status": st, "latest_state": latest}
                            for f, st, latest in due]})
            if code in (404, 307):
                agent.registered_with = None

    def serve(self) -> None:
        """Start servers, detector and loop; blocks until SIGTERM."""
        for agent in self.agents:
            threading.Thread(target=agent.server.serve_forever, kwargs={"poll_interval": 5.0},
                             daemon=True, name=f"agent-{agent.port}").start()
        self.detector.start()
        done = threading.Event()

        def stop(_sig: int, _frame: object) -> None:
            done.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        threading.Thread(target=self.loop, daemon=True, name="agent-loop").start()
        log.info("agents serving", extra={"ports": ",".join(str(a.port) for a in self.agents)})
        done.wait()
        for agent in self.agents:
            agent.stop_all()
        self.containers.shutdown()
        self.detector.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The agent's flags."""
    parser = argparse.ArgumentParser(prog="python -m actors.local.agent_main")
    parser.add_argument("--zk", required=True, help="zk://host:port/path")
    parser.add_argument("--port", required=True,
                        help="port, or comma-separated ports for several agents in one process")
    parser.add_argument("--resources", default=DEFAULT_RESOURCES)
    parser.add_argument("--attributes", default="", help="name:value;name:value")
    parser.add_argument("--account", default="",
                        help="eos_account attribute, one per port (comma-separated)")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--update-retry", type=float, default=10.0,
                        help="seconds before an unacknowledged status update is resent")
    parser.add_argument("--executor-shutdown-grace", type=float, default=5.0)
    parser.add_argument("--executor-registration-timeout", type=float, default=60.0,
                        help="seconds an executor has to SUBSCRIBE (Mesos: 1 min)")
    parser.add_argument("--executor-heartbeat-seconds", type=float, default=1800.0,
                        help="HEARTBEAT event interval on executor streams (Mesos: a fixed "
                             "30 min, slave/constants.hpp; not a Mesos flag, for tests)")
    container_flags.add_arguments(parser)
    parser.add_argument("--recover", choices=["reconnect", "cleanup"], default="reconnect",
                        help="reconnect: take back the checkpointed state and containers of "
                             "this work dir (Mesos's default); cleanup: start afresh")
    parser.add_argument("--index-base", type=int, default=0)
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    from actors import logfmt

    args = parse_args(argv)
    logfmt.configure(args.log_level)
    logging.getLogger("kazoo").setLevel(logging.WARNING)
    try:
        AgentProcess(args).serve()
    except (OSError, ValueError, RuntimeError) as exc:  # one line each, no traceback
        print(f"mesos agent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
