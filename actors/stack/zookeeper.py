"""ZooKeeper from Debian's package, one server in standalone mode.

Started with ``java`` directly rather than Debian's zkServer.sh: that script's fixed classpath
has no SLF4J binding, so the server would log nothing at all (a failed start would leave an
empty log). slf4j-simple (Debian's libslf4j-java, a dependency of the package) logs to stderr,
which is the service log.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from actors.stack.context import StackContext
from actors.stack.errors import StackError

ZK_JAR = Path("/usr/share/java/zookeeper.jar")  # its manifest's Class-Path names its deps
SLF4J_SIMPLE = Path("/usr/share/java/slf4j-simple.jar")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def _ruok(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"ruok")
        return sock.recv(4) == b"imok"


def start(ctx: StackContext) -> dict[str, object]:
    """Start ZooKeeper on a free loopback port; endpoint ``zookeeper`` is "host:port"."""
    if not ZK_JAR.exists():
        raise StackError(f"ZooKeeper is not installed ({ZK_JAR} missing; "
                         "run deploy/local/install.sh or apt-get install zookeeper)")
    java = shutil.which("java")
    if java is None:
        raise StackError("Java is not installed (no java on PATH; run deploy/local/install.sh "
                         "or apt-get install openjdk-17-jdk-headless)")
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
    argv = [
        java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ",
        "-cp", f"{ZK_JAR}:{SLF4J_SIMPLE}", MAIN_CLASS, str(cfg),
    ]
    proc = ctx.spawn("zookeeper", argv)
    ctx.wait_until("zookeeper", lambda: _ruok(port), proc, what=f"on port {port}")
    return {"zookeeper": f"127.0.0.1:{port}"}
