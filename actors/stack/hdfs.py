"""HDFS for the local stack: one NameNode and one DataNode from the Maven-resolved Hadoop jars.

Both daemons run with ``java -cp CONF:LIB/*`` (no Hadoop distribution, no launcher scripts), so
this module writes everything the scripts would have provided: ``core-site.xml``,
``hdfs-site.xml`` and ``log4j.properties`` in a conf folder first on the classpath, the JPMS
``--add-opens`` options Java 17 needs, and empty ``webapps/*`` folders (the Maven jars leave out
the web UI resources, but Hadoop's HTTP server refuses to start without them; WebHDFS and JMX
are servlets registered in code and do not need them).

Every address is on 127.0.0.1. The DataNode registers as ``127.0.0.1`` so WebHDFS redirects a
write to a loopback URL. The stack counts as up only once a real WebHDFS write succeeded.

The pure part (configuration, command lines, JMX readings) is apart from the process handling
so it can be unit-tested without Java.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from actors.stack.context import StackContext
from actors.stack.errors import StackError

log = logging.getLogger("clusterjobs.stack.hdfs")

NAMENODE_CLASS = "org.apache.hadoop.hdfs.server.namenode.NameNode"
DATANODE_CLASS = "org.apache.hadoop.hdfs.server.datanode.DataNode"

#: Jars without which neither daemon can start (checked up front for a clear error).
REQUIRED_JARS = ("hadoop-common-", "hadoop-hdfs-", "hadoop-hdfs-client-")

#: Packages Hadoop 3.4 reaches into by reflection; Java 17 refuses unless they are opened.
ADD_OPENS = (
    "java.base/java.lang",
    "java.base/java.lang.reflect",
    "java.base/java.io",
    "java.base/java.net",
    "java.base/java.nio",
    "java.base/java.util",
    "java.base/java.util.concurrent",
    "java.base/java.util.concurrent.atomic",
    "java.base/sun.nio.ch",
    "java.base/sun.nio.cs",
    "java.base/sun.security.action",
    "java.base/sun.util.calendar",
)

HEAP = "512m"
FORMAT_TIMEOUT = 120.0
PROBE_PATH = "/.clusterjobs-stack-probe"

FSNAMESYSTEM_STATE = "Hadoop:service=NameNode,name=FSNamesystemState"


# --- pure core -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HdfsPorts:
    """The loopback ports of one NameNode + DataNode pair."""

    namenode_rpc: int
    namenode_http: int
    datanode_data: int
    datanode_http: int
    datanode_ipc: int


def hadoop_lib_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where install.sh puts the Hadoop jars: ``<venv>/share/hadoop/lib``.

    ``CLUSTERJOBS_HADOOP_LIB`` overrides it (e.g. to run against another copy of the jars).
    """
    env = os.environ if environ is None else environ
    override = env.get("CLUSTERJOBS_HADOOP_LIB")
    if override:
        return Path(override)
    return Path(sys.prefix) / "share" / "hadoop" / "lib"


def missing_jars(names: Sequence[str]) -> list[str]:
    """The prefixes of REQUIRED_JARS that no jar in ``names`` matches.

    A prefix such as ``hadoop-hdfs-`` also matches ``hadoop-hdfs-client-...``, so a jar only
    counts when the rest of its name starts with the version (a digit).
    """
    missing = []
    for prefix in REQUIRED_JARS:
        cut = len(prefix)
        if not any(n.startswith(prefix) and n.endswith(".jar") and n[cut : cut + 1].isdigit()
                   for n in names):
            missing.append(f"{prefix}*.jar")
    return missing


def site_properties(home: Path, ports: HdfsPorts) -> tuple[dict[str, str], dict[str, str]]:
    """The (core-site, hdfs-site) properties of a single-node loopback HDFS under ``home``."""
    loop = "127.0.0.1"
    core = {
        "fs.defaultFS": f"hdfs://{loop}:{ports.namenode_rpc}",
        # The default is /tmp/hadoop-${user.name}: shared by every stack on the machine.
        "hadoop.tmp.dir": str(home / "tmp"),
        # The DataNode starts with the NameNode: retry refused connections every 200 ms for
        # up to 30 s (past that it sleeps 5 s between attempts, slowing start-up).
        "ipc.client.connect.retry.interval": "200",
        "ipc.client.connect.max.retries": "150",
    }
    hdfs = {
        "dfs.namenode.rpc-address": f"{loop}:{ports.namenode_rpc}",
        "dfs.namenode.rpc-bind-host": loop,
        "dfs.namenode.http-address": f"{loop}:{ports.namenode_http}",
        "dfs.namenode.http-bind-host": loop,
        "dfs.namenode.name.dir": str(home / "name"),
        "dfs.datanode.data.dir": str(home / "data"),
        "dfs.datanode.address": f"{loop}:{ports.datanode_data}",
        # WebHDFS answers a write with a redirect to this address: it must be reachable.
        "dfs.datanode.http.address": f"{loop}:{ports.datanode_http}",
        "dfs.datanode.ipc.address": f"{loop}:{ports.datanode_ipc}",
        # The DataNode registers under this name, and the NameNode puts it in redirects.
        "dfs.datanode.hostname": loop,
        "dfs.replication": "1",
        "dfs.webhdfs.enabled": "true",
        # The local stack has no users: every caller may do everything.
        "dfs.permissions.enabled": "false",
        # Start fast: leave safe mode at once, notice the DataNode within a second.
        "dfs.namenode.safemode.extension": "0",
        "dfs.namenode.safemode.min.datanodes": "0",
        "dfs.heartbeat.interval": "1",
        "dfs.namenode.heartbeat.recheck-interval": "10000",
        "dfs.blockreport.initialDelay": "0",
        # HTTP only, and no HTTPS listener on a default port that may be taken.
        "dfs.http.policy": "HTTP_ONLY",
        "dfs.namenode.https-address": f"{loop}:0",
        "dfs.datanode.https.address": f"{loop}:0",
        "dfs.namenode.handler.count": "8",
        "dfs.datanode.handler.count": "4",
        # A WebHDFS write ends with the DataNode's client closing the file, which the
        # NameNode refuses until the DataNode's block report reached it (a few ms later);
        # the client then sleeps 400 ms before asking again, doubling each time: 0.4 s added
        # to every small non-empty file written. Ask again after 20 ms instead, with 10
        # attempts (20 ms to 10 s, 20 s in all: more patient than the default 12.4 s).
        "dfs.client.block.write.locateFollowingBlock.initial.delay.ms": "20",
        "dfs.client.block.write.locateFollowingBlock.retries": "10",
    }
    return core, hdfs


def render_configuration(properties: Mapping[str, str]) -> str:
    """A Hadoop ``*-site.xml`` document holding ``properties``."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<configuration>"]
    for name, value in properties.items():
        lines.append(
            f"  <property><name>{escape(name)}</name><value>{escape(value)}</value></property>"
        )
    lines.append("</configuration>")
    return "\n".join(lines) + "\n"


LOG4J_PROPERTIES = """\
# Everything to stderr, which the stack appends to logs/<daemon>.log.
log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
# Per-request and per-block chatter that drowns what matters.
log4j.logger.org.apache.hadoop.hdfs.StateChange=WARN
log4j.logger.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=WARN
log4j.logger.org.apache.hadoop.hdfs.server.datanode.DataNode.clienttrace=WARN
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
"""


#: java.util.logging (used by Jersey only): its start-up warnings about resource methods are
#: harmless and fill a screen; keep real errors.
JUL_PROPERTIES = """\
handlers=java.util.logging.ConsoleHandler
.level=INFO
com.sun.jersey.level=SEVERE
"""


def java_argv(
    java: str,
    classpath: Sequence[str],
    main_class: str,
    args: Sequence[str] = (),
    *,
    home: Path,
    conf: Path,
    heap: str = HEAP,
) -> list[str]:
    """The ``java`` command line of one Hadoop daemon (or of the one-shot format)."""
    argv = [java, f"-Xmx{heap}"]
    # Short-lived test daemons: the C1 compiler alone and the serial collector start faster
    # and leave more of the 2 shared cores to the other services.
    argv += ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    for package in ADD_OPENS:
        argv.append(f"--add-opens={package}=ALL-UNNAMED")
    argv += [
        "-Djava.net.preferIPv4Stack=true",
        f"-Dhadoop.home.dir={home}",
        f"-Dhadoop.log.dir={home / 'logs'}",
        f"-Dlog4j.configuration=file:{conf / 'log4j.properties'}",
        f"-Djava.util.logging.config.file={conf / 'logging.properties'}",
        "-cp",
        os.pathsep.join(classpath),
        main_class,
        *args,
    ]
    return argv


def namesystem_state(jmx: Mapping[str, object]) -> tuple[str, int]:
    """(FSState, NumLiveDataNodes) from the NameNode's FSNamesystemState JMX answer."""
    beans = jmx.get("beans")
    if not isinstance(beans, list) or not beans or not isinstance(beans[0], dict):
        raise ValueError("no FSNamesystemState bean in the JMX answer")
    bean = beans[0]
    return str(bean.get("FSState", "")), int(bean.get("NumLiveDataNodes", 0))


def ready_for_writes(jmx: Mapping[str, object]) -> bool:
    """True when the NameNode is out of safe mode and counts at least one live DataNode."""
    state, live = namesystem_state(jmx)
    return state == "Operational" and live >= 1


# --- I/O edge --------------------------------------------------------------------------------


def _find_java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise StackError("Java is not installed (no java on PATH or in JAVA_HOME; "
                         "run deploy/local/install.sh or apt-get install openjdk-17-jdk-headless)")
    return found


def _check_jars(lib: Path) -> None:
    names = [p.name for p in lib.glob("*.jar")] if lib.is_dir() else []
    missing = missing_jars(names)
    if missing:
        raise StackError(f"Hadoop jars missing in {lib} ({', '.join(missing)}); "
                         "run deploy/local/install.sh")


def _write_conf(home: Path, ports: HdfsPorts) -> Path:
    conf = home / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    core, hdfs = site_properties(home, ports)
    (conf / "core-site.xml").write_text(render_configuration(core))
    (conf / "hdfs-site.xml").write_text(render_configuration(hdfs))
    (conf / "log4j.properties").write_text(LOG4J_PROPERTIES)
    (conf / "logging.properties").write_text(JUL_PROPERTIES)
    # HttpServer2 looks these up on the classpath; empty is enough for WebHDFS and /jmx.
    for app in ("hdfs", "datanode", "static"):
        (conf / "webapps" / app).mkdir(parents=True, exist_ok=True)
    return conf


def _fresh_storage(home: Path) -> None:
    """Drop the data of an earlier stack in this folder: a reformatted NameNode gets a new
    cluster id, and a DataNode holding the old one would refuse to register."""
    for name in ("name", "data", "tmp"):
        shutil.rmtree(home / name, ignore_errors=True)
    (home / "logs").mkdir(exist_ok=True)


def _format(ctx: StackContext, argv: list[str]) -> None:
    """Format the NameNode's storage: a one-shot run whose output goes into its log."""
    log_path = ctx.log_path("hdfs-namenode")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        out.write(b"=== clusterjobs: namenode -format ===\n")
        out.flush()
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=FORMAT_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise StackError(f"hdfs: NameNode format took over {FORMAT_TIMEOUT:.0f} s",
                             log_path) from None
        out.write(b"=== clusterjobs: namenode daemon ===\n")
    if done.returncode != 0:
        raise StackError(f"hdfs: NameNode format failed with code {done.returncode}", log_path)


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.loads(resp.read())


def _request(method: str, url: str, data: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/octet-stream")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read()


def probe_write(webhdfs: str, path: str = PROBE_PATH) -> bool:
    """Write, read back and delete a small file through WebHDFS; True when all of it worked.

    Uses ``noredirect=true`` so the two steps of a WebHDFS create are explicit: the NameNode
    names a DataNode URL, the data goes there.
    """
    base = f"{webhdfs}/webhdfs/v1{path}"
    payload = b"clusterjobs stack probe\n"
    _, body = _request("PUT", f"{base}?op=CREATE&overwrite=true&noredirect=true")
    location = json.loads(body)["Location"]
    status, _ = _request("PUT", location, data=payload)
    if status != 201:
        return False
    _, read_back = _request("GET", f"{base}?op=OPEN")
    _request("DELETE", f"{base}?op=DELETE")
    return read_back == payload


def _distinct_ports(ctx: StackContext, count: int) -> list[int]:
    """``count`` free ports, no two alike (the OS may hand back a port it just gave)."""
    found: list[int] = []
    while len(found) < count:
        port = ctx.port()
        if port not in found:
            found.append(port)
    return found


def _wait_all(ctx: StackContext, name: str, ready: Callable[[], bool],
              daemons: Mapping[str, subprocess.Popen], what: str) -> None:
    """``ctx.wait_until`` on daemon ``name`` that also fails fast when any other daemon dies."""
    others = {n: p for n, p in daemons.items() if n != name}
    ctx.wait_until(name, lambda: any(p.poll() is not None for p in others.values()) or ready(),
                   daemons[name], what=what)
    for other, proc in others.items():
        if proc.poll() is not None:
            raise StackError(f"{other} exited with code {proc.returncode} while starting",
                             ctx.log_path(other))


def start(ctx: StackContext) -> dict[str, object]:
    """Start a NameNode and a DataNode on loopback; ready once a WebHDFS write succeeds.

    Endpoints: ``webhdfs`` (the NameNode's HTTP base URL) and ``hdfs`` (its RPC URI).
    """
    java = _find_java()
    lib = hadoop_lib_dir()
    _check_jars(lib)
    home = ctx.service_dir("hdfs")
    _fresh_storage(home)
    ports = HdfsPorts(*_distinct_ports(ctx, 5))
    conf = _write_conf(home, ports)
    classpath = [str(conf), str(lib / "*")]

    def argv(main_class: str, *args: str) -> list[str]:
        return java_argv(java, classpath, main_class, args, home=home, conf=conf)

    began = time.monotonic()
    _format(ctx, argv(NAMENODE_CLASS, "-format", "-force", "-nonInteractive"))
    formatted = time.monotonic()
    namenode = ctx.spawn("hdfs-namenode", argv(NAMENODE_CLASS))
    # The DataNode retries its NameNode connection, so both JVMs can warm up side by side.
    # (Starting it before the format as well gained nothing measurable on 2 cores.)
    datanode = ctx.spawn("hdfs-datanode", argv(DATANODE_CLASS))

    webhdfs = f"http://127.0.0.1:{ports.namenode_http}"
    daemons = {"hdfs-namenode": namenode, "hdfs-datanode": datanode}
    ctx.wait_http("hdfs-namenode", f"{webhdfs}/webhdfs/v1/?op=GETFILESTATUS", namenode)
    jmx_url = f"{webhdfs}/jmx?qry={FSNAMESYSTEM_STATE}"
    _wait_all(ctx, "hdfs-namenode", lambda: ready_for_writes(_get_json(jmx_url)), daemons,
              "out of safe mode with a live DataNode")
    # A live DataNode may still lack a storage report; only a real write proves readiness.
    _wait_all(ctx, "hdfs-datanode", lambda: probe_write(webhdfs), daemons,
              "to accept a WebHDFS write")
    log.info("hdfs up", extra={"webhdfs": webhdfs, "rpc_port": ports.namenode_rpc,
                               "format_seconds": round(formatted - began, 2),
                               "seconds": round(time.monotonic() - began, 2)})
    return {"webhdfs": webhdfs, "hdfs": f"hdfs://127.0.0.1:{ports.namenode_rpc}"}
