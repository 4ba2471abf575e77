"""The Mesos exporter: Prometheus scrapes `/probe?target=HOST:PORT&role=master|agent` and gets
that Mesos process's `/metrics/snapshot` in the Prometheus format (the multi-target pattern of
Prometheus's blackbox exporter: one exporter for every master and agent, the target chosen by
Prometheus's relabelling, see deploy/prometheus/prometheus.yml). `/metrics` is the exporter's
own metrics; `/health` answers 200.

    clusterjobs mesos-exporter [--host 0.0.0.0] [--port 9105] [--timeout 5]

It only reads: every probe is one GET of `http://TARGET/metrics/snapshot`.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from actors.observe.mesos_metrics import ROLES, convert_snapshot, render

log = logging.getLogger("clusterjobs.mesos_exporter")
TARGET = re.compile(r"^(https?://)?[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


class ExporterError(Exception):
    """A bad flag of the exporter (one line for the operator)."""


class ProbeError(ValueError):
    """A bad probe request: the HTTP answer is 400 with this one line."""


def parse_probe(query: str) -> tuple[str, str]:
    """(snapshot URL, role) from a probe's query string; raises ProbeError."""
    params = parse_qs(query)
    target = (params.get("target") or [""])[0]
    role = (params.get("role") or ["master"])[0]
    if not target:
        raise ProbeError("target: missing (expected host:port)")
    if not TARGET.match(target):
        raise ProbeError(f"target: expected host:port, got {target!r}")
    if role not in ROLES:
        raise ProbeError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    base = target if target.startswith(("http://", "https://")) else f"http://{target}"
    return f"{base.rstrip('/')}/metrics/snapshot", role


class Exporter:
    """Fetches snapshots and keeps the exporter's own counters."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.registry = CollectorRegistry()
        self.probes = Counter("mesos_exporter_probes", "Probes answered", ["role"],
                              registry=self.registry)
        self.failures = Counter("mesos_exporter_probe_failures",
                                "Probes whose snapshot could not be fetched or read", ["role"],
                                registry=self.registry)
        self.seconds = Histogram("mesos_exporter_probe_seconds", "Time to answer one probe",
                                 ["role"], registry=self.registry)

    def probe(self, url: str, role: str) -> str:
        """The exposition text for one target; `mesos_up 0` when it does not answer."""
        start = time.monotonic()
        samples, up = [], False
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as answer:
                snapshot = json.loads(answer.read())
            if not isinstance(snapshot, dict):
                raise ValueError("snapshot is not a JSON object")
            samples, up = convert_snapshot(snapshot, role), True
        except (OSError, ValueError, urllib.error.URLError) as exc:
            self.failures.labels(role).inc()
            log.warning("probe failed", extra={"url": url, "error": str(exc)})
        seconds = time.monotonic() - start
        self.probes.labels(role).inc()
        self.seconds.labels(role).observe(seconds)
        return render(samples, up, role, seconds)

    def own_metrics(self) -> bytes:
        return generate_latest(self.registry)


def serve(exporter: Exporter, host: str, port: int) -> ThreadingHTTPServer:
    """Start the HTTP server in a daemon thread; returns it (``server_address`` has the port)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args) -> None:  # logfmt lines only, for failures
            pass

        def _send(self, code: int, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/probe":
                try:
                    url, role = parse_probe(parts.query)
                except ProbeError as exc:
                    self._send(400, f"{exc}\n".encode(), "text/plain; charset=utf-8")
                    return
                self._send(200, exporter.probe(url, role).encode(), CONTENT_TYPE_LATEST)
            elif parts.path == "/metrics":
                self._send(200, exporter.own_metrics(), CONTENT_TYPE_LATEST)
            elif parts.path == "/health":
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
            else:
                self._send(404, f"no such endpoint: {parts.path}\n".encode(),
                           "text/plain; charset=utf-8")

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="mesos-exporter", daemon=True).start()
    return server


def add_parser(commands) -> None:
    run = commands.add_parser("mesos-exporter",
                              help="serve Mesos /metrics/snapshot in the Prometheus format")
    run.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=9105, help="listen port (default 9105)")
    run.add_argument("--timeout", type=float, default=5.0,
                     help="seconds to wait for a snapshot (default 5)")
    run.set_defaults(func=run_exporter)


def run_exporter(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ExporterError(f"--port: expected 0-65535, got {args.port}")
    if args.timeout <= 0:
        raise ExporterError(f"--timeout: must be greater than 0, got {args.timeout}")
    try:
        server = serve(Exporter(args.timeout), args.host, args.port)
    except OSError as exc:
        raise ExporterError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    host, port = server.server_address[:2]
    log.info("mesos exporter up", extra={"url": f"http://{host}:{port}"})
    stop = threading.Event()
    try:
        stop.wait()
    finally:
        server.shutdown()
    return 0
