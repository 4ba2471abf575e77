"""HTTP edges shared by master and agent: a JSON request handler, chunked streams, a client."""

from __future__ import annotations

import http.client
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("clusterjobs.mesos.web")


class Server(ThreadingHTTPServer):
    """A threading HTTP server with a deep accept backlog (many agents, bursts of calls)."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], app: object,
                 host: str = "127.0.0.1") -> None:
        self.app = app
        super().__init__((host, port), handler)


class Handler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 with helpers for JSON bodies and answers."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs would hold the body back for up to 40 ms on a kept-alive connection.
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # access logs would drown the real ones

    def read_body(self) -> bytes:
        """The request body (Content-Length only; pymesos never sends chunked requests)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def read_json(self) -> object:
        """The body parsed as JSON; raises ValueError with a readable message."""
        body = self.read_body()
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"Failed to parse body into JSON: {exc}") from None

    def answer(self, status: int, body: bytes = b"", content_type: str = "text/plain",
               headers: dict[str, str] | None = None) -> None:
        """A complete response with Content-Length (so the connection can be reused)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def answer_json(self, status: int, obj: object) -> None:
        """A JSON response."""
        self.answer(status, json.dumps(obj).encode("utf-8"), "application/json")

    def answer_text(self, status: int, text: str) -> None:
        """A one-line text response (Mesos answers errors as plain text)."""
        self.answer(status, text.encode("utf-8"))

    def api_media_error(self) -> tuple[int, str] | None:
        """(status, message) when a v1 API request's Content-Type is not JSON, else None.

        Mesos answers 400 without a Content-Type and 415 for anything but the exact media types
        application/json or application/x-protobuf (this emulator speaks JSON only)."""
        ctype = self.headers.get("Content-Type")
        if ctype is None:
            return 400, "Expecting 'Content-Type' to be present"
        if ctype.strip() != "application/json":
            return 415, ("Expecting 'Content-Type' of application/json or "
                         "application/x-protobuf")
        return None

    def accepts_json(self) -> bool:
        """Whether the Accept header allows application/json (no header allows everything)."""
        accept = self.headers.get("Accept")
        if accept is None or not accept.strip():
            return True
        for item in accept.split(","):
            media, *params = [p.strip() for p in item.split(";")]
            quality = 1.0
            for param in params:
                name, _sep, value = param.partition("=")
                if name.strip() == "q":
                    try:
                        quality = float(value)
                    except ValueError:
                        quality = 0.0
            if quality > 0 and media.lower() in ("application/json", "application/*", "*/*"):
                return True
        return False

    def start_stream(self, headers: dict[str, str]) -> None:
        """Begin a chunked 200 response for an event stream."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        """One HTTP chunk; raises OSError when the peer went away."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self) -> None:
        """The last chunk; the connection closes after it."""
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True


def pump_stream(handler: Handler, events: queue.Queue, heartbeat: bytes | None,
                interval: float) -> None:
    """Write queued RecordIO records until a None arrives or the peer goes away.

    ``heartbeat`` (if given) goes out every ``interval`` seconds whatever else is sent, as the
    Mesos heartbeaters do (a periodic timer, not an idle timer)."""
    next_beat = time.monotonic() + interval
    while True:
        try:
            record = events.get(timeout=max(0.0, next_beat - time.monotonic()))
        except queue.Empty:
            next_beat = time.monotonic() + interval
            if heartbeat is None:
                continue
            record = heartbeat
        if record is None:
            handler.end_stream()
            return
        try:
            handler.write_chunk(record)
        except OSError:
            handler.close_connection = True
            return


class Client:
    """Keep-alive JSON POSTs to one host:port, safe for one thread at a time per instance."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self._conn: http.client.HTTPConnection | None = None
        self.lock = threading.Lock()

    def post(self, path: str, payload: object) -> tuple[int, bytes, dict[str, str]]:
        """POST JSON; (status, body, headers). Retries once on a stale kept-alive socket."""
        data = json.dumps(payload).encode("utf-8")
        with self.lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self.host, self.port,
                                                            timeout=self.timeout)
                try:
                    self._conn.request("POST", path, body=data,
                                       headers={"Content-Type": "application/json"})
                    resp = self._conn.getresponse()
                    body = resp.read()
                    return resp.status, body, {k.lower(): v for k, v in resp.getheaders()}
                except (OSError, http.client.HTTPException):
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    def close(self) -> None:
        """Drop the kept-alive connection."""
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class KeyedWorkers:
    """A few threads draining per-key ordered work: items of one key run in order."""

    def __init__(self, name: str, threads: int = 4) -> None:
        self._queues = [queue.Queue() for _ in range(threads)]
        for index, q in enumerate(self._queues):
            threading.Thread(target=self._run, args=(q,), name=f"{name}-{index}",
                             daemon=True).start()

    def submit(self, key: str, work: Callable[[], None]) -> None:
        """Run ``work`` after earlier work of the same key."""
        self._queues[hash(key) % len(self._queues)].put(work)

    @staticmethod
    def _run(q: queue.Queue) -> None:
        while True:
            work = q.get()
            try:
                work()
            except Exception:  # one failed delivery must not stop the rest
                log.exception("background work failed")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
