"""A Mesos master: v1 scheduler API over HTTP, leadership through ZooKeeper.

Run: ``python -m actors.local.master --zk zk://127.0.0.1:2181/mesos --port 5050``.
The bookkeeping is in :mod:`actors.local.master_core`; this module is the I/O around it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit

from actors.local import recordio
from actors.local.master_core import MasterCore
from actors.local.master_model import VERSION, CallError, Effect, SubscribeRefused
from actors.local.web import Client, Handler, KeyedWorkers, Server, pump_stream
from actors.local.zk import Candidate, master_info, parse_zk_url

log = logging.getLogger("clusterjobs.mesos.master")

HEARTBEAT = recordio.encode_json({"type": "HEARTBEAT"})
MIN_ALLOCATION_GAP = 0.1  # seconds between two allocation rounds


class Master:
    """The running master: core + lock, event streams, outbound agent calls, election."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.master_id = str(uuid.uuid4())
        self.info = master_info(self.master_id, args.ip, args.port, socket.gethostname(),
                                VERSION)
        self.core = MasterCore(self.master_id, self.info,
                               heartbeat_seconds=args.heartbeat_seconds,
                               agent_timeout=args.agent_timeout,
                               agent_reregister_timeout=args.agent_reregister_timeout,
                               allocation_interval=args.allocation_interval,
                               now=time.monotonic())
        self.lock = threading.RLock()
        self.wakeup = threading.Event()
        self.streams: dict[str, queue.Queue] = {}
        self.leader: dict | None = None
        self.clients: dict[str, Client] = {}
        self.pending: dict[str, list[dict]] = {}  # agent id -> messages not yet posted
        self.workers = KeyedWorkers("master-out", threads=4)
        hosts, path = parse_zk_url(args.zk)
        self.candidate = Candidate(hosts, path, self.info, self._on_leader, self._on_lost,
                                   session_timeout=args.zk_session_timeout)

    # -- election ------------------------------------------------------------------------------
    def _on_leader(self, info: dict | None, me: bool) -> None:
        with self.lock:
            was = self.core.is_elected()
            self.leader = info
            if me and not was:
                # Recover the registry before acting as leader, as Master::_recover() does.
                self.core.elect(time.monotonic(), self.candidate.read_registry())
                log.info("elected leader", extra={"master_id": self.master_id})
            elif was and not me:
                log.error("lost leadership; exiting as a Mesos master does")
                os._exit(1)
        self.wakeup.set()

    def _on_lost(self) -> None:
        if self.core.is_elected():
            log.error("ZooKeeper session lost while leading; exiting")
            os._exit(1)

    def leader_address(self) -> str | None:
        """host:port of the leading master, if known."""
        info = self.leader
        if not info:
            return None
        address = info.get("address") or {}
        return f"{address.get('ip')}:{address.get('port')}"

    # -- effects -------------------------------------------------------------------------------
    def run_effects(self, effects: list[Effect]) -> None:
        """Carry out what the core asked for: only queue puts, so it runs under the lock,
        which keeps events in the order the core made them (SUBSCRIBED before OFFERS)."""
        for effect in effects:
            if effect.kind == "registry":
                # Stored synchronously, under the lock, so the registry never lags behind
                # what agents and frameworks were told (Mesos's registrar).
                try:
                    self.candidate.write_registry(effect.payload)
                except Exception as exc:  # kazoo errors: the registry cannot be kept
                    log.error("registry write failed; exiting as a Mesos master's "
                              "registrar aborts", extra={"error": repr(exc)})
                    os._exit(1)
            elif effect.kind == "event":
                stream = self.streams.get(effect.stream)
                if stream is not None:
                    stream.put(recordio.encode_json(effect.payload))
            elif effect.kind == "close":
                stream = self.streams.get(effect.stream)
                if stream is not None:
                    stream.put(None)
            elif effect.kind == "agent":
                self._send_agent(effect)
        if self.core.wants_allocation:
            self.wakeup.set()

    def _send_agent(self, effect: Effect) -> None:
        """Queue a message for an agent; a burst for one agent goes out as one POST."""
        agent = self.core.agents.get(effect.target)
        if agent is None:
            return
        url = agent.url
        client = self.clients.get(url)
        if client is None:
            client = self.clients.setdefault(url, Client(urlsplit(url).netloc, timeout=5.0))
        pending = self.pending.setdefault(effect.target, [])
        pending.append({"path": effect.path, "payload": effect.payload})
        if len(pending) > 1:
            return  # a flush is already queued and will carry this one too

        def deliver() -> None:
            with self.lock:
                batch = self.pending.pop(effect.target, [])
            if not batch:
                return
            try:
                status, body, _h = client.post("/internal/batch", {"messages": batch})
                if status >= 300:
                    log.warning("agent refused", extra={"agent": effect.target,
                                                        "status": status,
                                                        "body": body[:200]})
            except OSError as exc:
                log.warning("agent unreachable", extra={"agent": effect.target,
                                                        "messages": len(batch), "error": exc})

        self.workers.submit(effect.target, deliver)

    def call(self, fn: object, *args: object) -> object:
        """Run a core method and queue its effects, all under the lock."""
        with self.lock:
            try:
                return fn(*args)  # type: ignore[operator]
            finally:
                effects, self.core.outbox = self.core.outbox, []
                self.run_effects(effects)

    # -- loop ----------------------------------------------------------------------------------
    def allocator(self) -> None:
        """Tick on every wakeup (resources freed, frameworks came) or each interval."""
        while True:
            self.wakeup.wait(self.args.allocation_interval)
            # Batch: resources freed by a burst of updates go out in one round of offers
            # (Mesos batches allocations too), which keeps the master's CPU flat under load.
            time.sleep(MIN_ALLOCATION_GAP)
            self.wakeup.clear()
            if self.core.is_elected():
                self.call(self.core.tick, time.monotonic())

    def serve(self) -> None:
        """Join the election, start the HTTP server and the allocator; blocks."""
        server = Server(self.args.port, MasterHandler, self, host=self.args.ip)
        threading.Thread(target=self.allocator, name="allocator", daemon=True).start()
        self.candidate.start()
        log.info("master serving", extra={"port": self.args.port, "id": self.master_id})

        def stop(_sig: int, _frame: object) -> None:
            self.candidate.stop()
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        server.serve_forever(poll_interval=1.0)


class MasterHandler(Handler):
    """The master's HTTP endpoints."""

    @property
    def master(self) -> Master:
        return self.server.app  # type: ignore[return-value]

    def _redirect(self, path: str) -> bool:
        """Answer 307 (or 503 without a leader) unless this master leads; True if answered."""
        master = self.master
        if master.core.is_elected():
            return False
        leader = master.leader_address()
        if leader is None:
            self.answer_text(503, "No leader elected")
        else:
            self.answer(307, b"", headers={"Location": f"//{leader}{path}"})
        return True

    def do_GET(self) -> None:
        master = self.master
        path = urlsplit(self.path).path
        if path == "/health":
            self.answer(200)
        elif path == "/version":
            self.answer_json(200, {"version": VERSION, "build_user": "clusterjobs",
                                   "git_tag": VERSION})
        elif path == "/master/redirect":
            leader = master.leader_address()
            if leader is None:
                self.answer_text(503, "No leader elected")
            else:
                self.answer(307, b"", headers={"Location": f"//{leader}"})
        elif path in ("/master/state", "/state", "/master/state.json"):
            if self._redirect(path):
                return  # Mesos redirects /master/state to the leader (503 without one)
            with master.lock:
                doc = master.core.state_json(master.leader)
            self.answer_json(200, doc)
        elif path in ("/metrics/snapshot", "/master/metrics/snapshot"):
            with master.lock:
                doc = master.core.metrics(time.monotonic())
            self.answer_json(200, doc)
        elif path == "/api/v1/scheduler":
            if not self._redirect(path):
                # Mesos: 405 for anything but POST (after the leader redirect).
                self.answer(405, b"", headers={"Allow": "POST"})
        else:
            self.answer_text(404, f"no such endpoint {path}")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        try:
            if path == "/api/v1/scheduler":
                self._scheduler()
            elif path.startswith("/internal/agent/"):
                self._agent(path)
            else:
                self.read_body()
                self.answer_text(404, f"no such endpoint {path}")
        except CallError as exc:
            self.answer_text(exc.status, exc.message)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A message of a shape the core did not expect: the caller's fault, not a crash.
            log.warning("malformed request", extra={"path": path, "error": repr(exc)})
            self.answer_text(400, f"malformed request: {exc!r}")

    def _scheduler(self) -> None:
        master = self.master
        body = self.read_body()
        if self._redirect("/api/v1/scheduler"):
            return
        media_error = self.api_media_error()
        if media_error is not None:
            raise CallError(*media_error)
        try:
            call = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CallError(400, f"Failed to parse body into JSON: {exc}") from None
        if isinstance(call, dict) and call.get("type") == "SUBSCRIBE":
            if not self.accepts_json():
                # Mesos would stream protobuf if that is accepted; this emulator speaks JSON.
                raise CallError(406, "Expecting 'Accept' to allow 'application/x-protobuf' or "
                                     "'application/json'")
            if self.headers.get("Mesos-Stream-Id") is not None:
                raise CallError(400, "Subscribe calls should not include the "
                                     "'Mesos-Stream-Id' header")
            self._subscribe(call)
            return
        master.call(master.core.handle_call, call, self.headers.get("Mesos-Stream-Id"),
                    time.monotonic())
        self.answer(202)

    def _subscribe(self, call: dict) -> None:
        master = self.master
        stream_id = str(uuid.uuid4())
        events: queue.Queue = queue.Queue()
        master.streams[stream_id] = events
        try:
            fw = master.call(master.core.subscribe, call, stream_id, time.monotonic())
        except SubscribeRefused as exc:
            master.streams.pop(stream_id, None)
            # Mesos has already answered 200 with the stream when it refuses here.
            self.start_stream({"Mesos-Stream-Id": stream_id})
            self.write_chunk(recordio.encode_json({"type": "ERROR",
                                                   "error": {"message": exc.message}}))
            self.end_stream()
            return
        except CallError:
            master.streams.pop(stream_id, None)
            raise
        fw_id = fw.id  # type: ignore[attr-defined]
        log.info("framework subscribed", extra={"framework_id": fw_id, "stream": stream_id})
        try:
            self.start_stream({"Mesos-Stream-Id": stream_id})
            pump_stream(self, events, HEARTBEAT, master.args.heartbeat_seconds)
        except OSError:
            pass
        finally:
            self.close_connection = True
            master.call(master.core.disconnect, fw_id, stream_id, time.monotonic())
            master.streams.pop(stream_id, None)
            log.info("framework stream closed", extra={"framework_id": fw_id})

    def _agent(self, path: str) -> None:
        master = self.master
        try:
            msg = self.read_json()
        except ValueError as exc:
            raise CallError(400, str(exc)) from None
        if self._redirect(path):
            return
        if not isinstance(msg, dict):
            raise CallError(400, "expecting a JSON object")
        now = time.monotonic()
        core = master.core
        if path == "/internal/agent/register":
            self.answer_json(200, master.call(core.register_agent, msg, now))
            log.info("agent registered", extra={"agent_id": msg["agent_info"]["id"]["value"]})
        elif path == "/internal/agent/ping":
            known = master.call(core.agent_ping, str(msg.get("agent_id")), now)
            self.answer(200 if known else 404)
        elif path == "/internal/agent/updates":
            agent_id = str(msg.get("agent_id"))
            known = True
            with master.lock:  # one lock round for the whole batch
                for item in msg.get("updates", []):
                    known = master.call(core.agent_update, agent_id,
                                        str(item.get("framework_id")), item["status"],
                                        str(item.get("latest_state"))) and known
            self.answer(202 if known else 404)
        elif path == "/internal/agent/executor_exited":
            master.call(core.executor_exited, str(msg.get("agent_id")),
                        str(msg.get("framework_id")), str(msg.get("executor_id")),
                        msg.get("status"))
            self.answer(202)
        elif path == "/internal/agent/message":
            master.call(core.executor_message, str(msg.get("agent_id")),
                        str(msg.get("framework_id")), str(msg.get("executor_id")),
                        str(msg.get("data", "")))
            self.answer(202)
        else:
            self.answer_text(404, f"no such endpoint {path}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The master's flags (named after the Mesos master's where one exists)."""
    parser = argparse.ArgumentParser(prog="python -m actors.local.master")
    parser.add_argument("--zk", required=True, help="zk://host:port/path")
    parser.add_argument("--ip", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5050)
    parser.add_argument("--heartbeat-seconds", type=float, default=15.0,
                        help="HEARTBEAT event interval on scheduler streams (Mesos: 15 s)")
    parser.add_argument("--agent-timeout", type=float, default=75.0,
                        help="seconds without an agent ping before it is removed "
                             "(Mesos: agent_ping_timeout x max_agent_ping_timeouts = 75 s)")
    parser.add_argument("--agent-reregister-timeout", "--reregister-window", type=float,
                        default=600.0,
                        help="seconds agents recovered from the registry have to re-register "
                             "after an election before they are marked unreachable (Mesos "
                             "--agent_reregister_timeout: 10 mins, also its minimum); "
                             "--reregister-window is the old name")
    parser.add_argument("--allocation-interval", type=float, default=1.0)
    parser.add_argument("--zk-session-timeout", type=float, default=10.0,
                        help="ZooKeeper session timeout in seconds (Mesos: 10 s)")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    from actors import logfmt

    args = parse_args(argv)
    logfmt.configure(args.log_level)
    logging.getLogger("kazoo").setLevel(logging.WARNING)
    try:
        Master(args).serve()
    except Exception as exc:  # one line for the operator
        print(f"mesos master: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
