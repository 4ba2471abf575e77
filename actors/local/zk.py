"""Mesos-style leader election and detection through ZooKeeper (kazoo).

Each master creates an ephemeral sequential znode ``<path>/json.info_NNNNNNNNNN`` holding its
MasterInfo JSON; the lowest sequence number leads. Detectors (agents, pymesos) watch the
children of the path and read the lowest one.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
from collections.abc import Callable

from kazoo.client import KazooClient, KazooState
from kazoo.recipe.watchers import ChildrenWatch

log = logging.getLogger("clusterjobs.mesos.zk")

PREFIX = "json.info_"
# Mesos keeps its registry in a replicated log whose ZooKeeper coordination lives in
# ``<path>/log_replicas``, which detectors (pymesos's too) skip; the emulator stores its
# registry (JSON) in that znode.
REGISTRY_NODE = "log_replicas"


class ZkUrlError(ValueError):
    """A master URL that is not ``zk://host:port[,host:port]/path``."""


def parse_zk_url(url: str) -> tuple[str, str]:
    """``zk://h:p,h2:p2/mesos`` -> ("h:p,h2:p2", "/mesos")."""
    if not url.startswith("zk://"):
        raise ZkUrlError(f"not a zk:// URL: {url!r}")
    rest = url[len("zk://"):]
    hosts, slash, path = rest.partition("/")
    if not hosts or not slash or not path.strip("/"):
        raise ZkUrlError(f"zk URL needs hosts and a path: {url!r}")
    return hosts, "/" + path.strip("/")


def lowest(children: list[str]) -> str | None:
    """The leading child: lowest sequence among ``json.info_*`` nodes."""
    nodes = [c for c in children if c.startswith(PREFIX)]
    return min(nodes, key=lambda c: c[len(PREFIX):]) if nodes else None


def master_info(master_id: str, ip: str, port: int, hostname: str, version: str) -> dict:
    """MasterInfo as Mesos writes it (``ip`` is the IPv4 address as a network-order uint32)."""
    packed = struct.unpack("<I", socket.inet_aton(ip))[0]
    return {"id": master_id, "ip": packed, "port": port, "pid": f"master@{ip}:{port}",
            "hostname": hostname, "version": version,
            "address": {"hostname": hostname, "ip": ip, "port": port}}


class Detector:
    """Watches the path and calls ``on_leader(info or None)`` whenever the leader changes."""

    def __init__(self, hosts: str, path: str, on_leader: Callable[[dict | None], None],
                 client: KazooClient | None = None) -> None:
        self.path = path
        self.zk = client or KazooClient(hosts=hosts, timeout=10.0)
        self._own_client = client is None
        self._on_leader = on_leader
        self._current: str | None = None

    def start(self) -> None:
        """Connect (if the client is ours) and begin watching."""
        if self._own_client:
            self.zk.start(timeout=15)
        self.zk.ensure_path(self.path)
        ChildrenWatch(self.zk, self.path, self._children)

    def _children(self, children: list[str]) -> bool:
        leader = lowest(children)
        if leader == self._current:
            return True
        self._current = leader
        if leader is None:
            self._on_leader(None)
            return True
        try:
            data, _stat = self.zk.get(f"{self.path}/{leader}")
            self._on_leader(json.loads(data.decode("utf-8")))
        except Exception:  # a node that vanished: the next watch fires
            log.warning("leader znode unreadable", extra={"znode": leader})
            self._current = None
            self._on_leader(None)
        return True

    def stop(self) -> None:
        """Stop watching (and close the client if it is ours)."""
        if self._own_client:
            self.zk.stop()
            self.zk.close()


class Candidate:
    """A master's place in the election: its znode, plus a detector telling who leads."""

    def __init__(self, hosts: str, path: str, info: dict,
                 on_leader: Callable[[dict | None, bool], None],
                 on_session_lost: Callable[[], None], session_timeout: float = 10.0) -> None:
        # The session timeout bounds how long a crashed leader's znode outlives it.
        self.zk = KazooClient(hosts=hosts, timeout=session_timeout)
        self.path = path
        self.info = info
        self.znode: str | None = None
        self._on_leader = on_leader
        self._on_session_lost = on_session_lost
        self._detector = Detector(hosts, path, self._leader, client=self.zk)

    def start(self) -> None:
        """Join the election."""
        self.zk.start(timeout=15)
        self.zk.add_listener(self._state)
        self.zk.ensure_path(self.path)
        self.znode = self.zk.create(f"{self.path}/{PREFIX}",
                                    json.dumps(self.info).encode("utf-8"),
                                    ephemeral=True, sequence=True)
        log.info("joined election", extra={"znode": self.znode})
        self._detector.start()

    def read_registry(self) -> dict | None:
        """The registry the last leader stored, or None if there is none (or unreadable)."""
        node = f"{self.path}/{REGISTRY_NODE}"
        if self.zk.exists(node) is None:
            return None
        data, _stat = self.zk.get(node)
        try:
            doc = json.loads(data.decode("utf-8"))
        except ValueError:
            log.warning("registry unreadable; starting empty", extra={"znode": node})
            return None
        return doc if isinstance(doc, dict) else None

    def write_registry(self, doc: dict) -> None:
        """Store the registry (the leader calls this whenever the agents it admits change)."""
        node = f"{self.path}/{REGISTRY_NODE}"
        data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        if self.zk.exists(node) is None:
            self.zk.create(node, data, makepath=True)
        else:
            self.zk.set(node, data)

    def _leader(self, info: dict | None) -> None:
        me = info is not None and info.get("id") == self.info["id"]
        self._on_leader(info, me)

    def _state(self, state: str) -> None:
        if state == KazooState.LOST:
            # Our ephemeral znode is gone: like a Mesos master we cannot lead any more.
            self._on_session_lost()

    def stop(self) -> None:
        """Leave the election (the znode disappears with the session)."""
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:  # shutting down anyway
            pass
