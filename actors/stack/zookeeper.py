"""ZooKeeper from Debian's package, one server in standalone mode."""

from __future__ import annotations

import socket
from pathlib import Path

from actors.stack.context import StackContext
from actors.stack.errors import StackError

ZK_SERVER = Path("/usr/share/zookeeper/bin/zkServer.sh")


def _ruok(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"ruok")
        return sock.recv(4) == b"imok"


def start(ctx: StackContext) -> dict[str, object]:
    """Start ZooKeeper on a free loopback port; endpoint ``zookeeper`` is "host:port"."""
    if not ZK_SERVER.exists():
        raise StackError(f"ZooKeeper is not installed ({ZK_SERVER} missing; "
                         "run deploy/local/install.sh or apt-get install zookeeper)")
    home = ctx.service_dir("zookeeper")
    data = home / "data"
    data.mkdir(exist_ok=True)
    port = ctx.port()
    cfg = home / "zoo.cfg"
    cfg.write_text(
        "tickTime=500\n"
        "initLimit=10\nsyncLimit=5\n"
        f"dataDir={data}\n"
        f"clientPort={port}\n"
        "clientPortAddress=127.0.0.1\n"
        "admin.enableServer=false\n"
        "4lw.commands.whitelist=ruok,srvr,mntr,stat\n"
        # Short session bounds so session-expiry tests (kazoo's expire_session) are quick.
        "minSessionTimeout=1000\nmaxSessionTimeout=60000\n"
    )
    env = {"ZOO_LOG_DIR": str(home), "ZOO_LOG4J_PROP": "INFO,CONSOLE",
           "SERVER_JVMFLAGS": "-Xmx256m"}
    proc = ctx.spawn("zookeeper", [str(ZK_SERVER), "start-foreground", str(cfg)], env=env)
    ctx.wait_until("zookeeper", lambda: _ruok(port), proc, what=f"on port {port}")
    return {"zookeeper": f"127.0.0.1:{port}"}
