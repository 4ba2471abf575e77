"""The scheduler's HTTP endpoints: /health, /metrics, /jobs, /jobs/<id>, /accounting (read-only) and
POST /jobs/<id>/cancel (bearer token)."""

from __future__ import annotations

import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("clusterjobs.scheduler.http")


class HttpError(Exception):
    """The HTTP endpoint cannot be served (port taken, bad address)."""


def serve(service, host: str, port: int) -> ThreadingHTTPServer:
    """Start serving ``service`` (a SchedulerService) on a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args) -> None:  # quiet: logfmt lines only for errors
            pass

        def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, value: object) -> None:
            self._send(code, json.dumps(value).encode())

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/health":
                ok = service.healthy()
                self._json(200 if ok else 503, {"healthy": ok, "active": service.active,
                                                "subscribed": service.subscribed,
                                                "framework_id": service.core.framework_id})
            elif path == "/metrics":
                with service.lock:
                    body = service.metrics.render(list(service.core.jobs.values()))
                self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/jobs":
                self._json(200, {"jobs": service.job_summaries()})
            elif path == "/accounting":
                from scheduler import pusher_service

                self._json(200, pusher_service.accounting(service))
            elif path.startswith("/jobs/") and path.count("/") == 2:
                found = service.job_summary(path.split("/")[2])
                if found is None:
                    self._json(404, {"error": f"no job {path.split('/')[2]}"})
                else:
                    self._json(200, found)
            else:
                self._json(404, {"error": f"no such endpoint: {path}"})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            parts = path.split("/")
            if not (len(parts) == 4 and parts[1] == "jobs" and parts[3] == "cancel"):
                self._json(404, {"error": f"no such endpoint: {path}"})
                return
            token = service.options.auth_token
            given = self.headers.get("Authorization", "")
            if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                self._json(401, {"error": "a valid bearer token is needed to cancel"})
                return
            if not service.active:
                self._json(503, {"error": "this scheduler is a standby"})
                return
            state = service.cancel(parts[2])
            if state is None:
                self._json(404, {"error": f"no active job {parts[2]}"})
            else:
                self._json(200, {"id": parts[2], "state": state})

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise HttpError(f"cannot serve HTTP on {host}:{port}: {exc.strerror}") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    log.info("http serving", extra={"address": f"{host}:{server.server_port}"})
    return server
