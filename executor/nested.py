"""Nested containers through the agent's v1 operator API (``POST <agent>/api/v1``), the way
Mesos's default executor runs a task group: ``LAUNCH_CONTAINER`` of an image with the task's
folder of the executor's sandbox mounted as a ``SANDBOX_PATH`` volume of type ``PARENT``, then
``WAIT_CONTAINER``; ``KILL_CONTAINER`` to stop it."""

from __future__ import annotations

import json
import shlex
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping

#: Where the task's folder appears inside the nested container's sandbox.
WORK_PATH = "work"


class NestedContainerError(Exception):
    """The agent refused or failed a nested-container call; one line. ``unsupported`` is
    True when the agent has no such call at all (no operator API endpoint, or the call type
    unknown to it), as opposed to a call it refused."""

    def __init__(self, message: str, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


def is_unsupported(status: int, text: str) -> bool:
    """Whether an error answer means the agent lacks the call (not that it refused it)."""
    return status in (404, 405, 501) or "unsupported call type" in text.lower() or (
        status == 400 and "unknown" in text.lower() and "type" in text.lower())


def launch_body(parent_id: str, container_id: str, image: str, command: tuple[str, ...] | str,
                env: Mapping[str, str], parent_path: str) -> dict:
    """The LAUNCH_CONTAINER call: the image, the command run in the mounted task folder with
    stdout and stderr to files there, and the volume."""
    program = command if isinstance(command, str) else shlex.join(command)
    script = (f'cd "$MESOS_SANDBOX/{WORK_PATH}" && exec >stdout 2>stderr && '
              f"exec /bin/sh -c {shlex.quote(program)}")
    return {
        "type": "LAUNCH_CONTAINER",
        "launch_container": {
            "container_id": {"value": container_id, "parent": {"value": parent_id}},
            "command": {"shell": True, "value": script, "environment": {"variables": [
                {"name": k, "value": v} for k, v in sorted(env.items())]}},
            "container": {
                "type": "MESOS",
                "mesos": {"image": {"type": "DOCKER", "docker": {"name": image}}},
                "volumes": [{"mode": "RW", "container_path": WORK_PATH, "source": {
                    "type": "SANDBOX_PATH",
                    "sandbox_path": {"type": "PARENT", "path": parent_path}}}],
            },
        },
    }


class AgentOperator:
    """The agent's operator API at ``endpoint`` (``host:port`` as in MESOS_AGENT_ENDPOINT)."""

    def __init__(self, endpoint: str, timeout: float = 30.0) -> None:
        base = endpoint if "://" in endpoint else f"http://{endpoint}"
        self.url = base.rstrip("/") + "/api/v1"
        self.timeout = timeout

    def call(self, body: dict, timeout: float | None = None) -> dict:
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            reason = " ".join(exc.read().decode(errors="replace").split())[:200]
            raise NestedContainerError(f"{body['type']}: HTTP {exc.code} {reason}".strip(),
                                       is_unsupported(exc.code, reason)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise NestedContainerError(f"{body['type']}: cannot reach {self.url}: {exc}") \
                from None
        return json.loads(text) if text.strip() else {}

    def launch(self, parent_id: str, image: str, command: tuple[str, ...] | str,
               env: Mapping[str, str], parent_path: str) -> dict:
        """Launch a nested container; returns its ContainerID."""
        container_id = str(uuid.uuid4())
        self.call(launch_body(parent_id, container_id, image, command, env, parent_path))
        return {"value": container_id, "parent": {"value": parent_id}}

    def wait(self, container_id: dict) -> int:
        """Block until the container ends; returns its wait status (as waitpid's)."""
        answer = self.call({"type": "WAIT_CONTAINER",
                            "wait_container": {"container_id": container_id}},
                           timeout=365 * 86400)
        status = (answer.get("wait_container") or {}).get("exit_status")
        if not isinstance(status, int):
            raise NestedContainerError("WAIT_CONTAINER: the agent gave no exit_status")
        return status

    def kill(self, container_id: dict, signal: int) -> None:
        self.call({"type": "KILL_CONTAINER",
                   "kill_container": {"container_id": container_id, "signal": signal}})
