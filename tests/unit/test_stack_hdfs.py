"""The pure part of the stack's HDFS service: configuration, command lines, JMX readings,
and the one-line errors when Java or the jars are missing (raised before anything starts)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from actors.stack import hdfs
from actors.stack.context import StackContext
from actors.stack.errors import StackError

PORTS = hdfs.HdfsPorts(namenode_rpc=9001, namenode_http=9002, datanode_data=9003,
                       datanode_http=9004, datanode_ipc=9005)
JARS = ["hadoop-common-3.4.1.jar", "hadoop-hdfs-3.4.1.jar", "hadoop-hdfs-client-3.4.1.jar",
        "guava-27.0-jre.jar"]


def test_missing_jars_none_when_all_present() -> None:
    assert hdfs.missing_jars(JARS) == []


def test_missing_jars_client_jar_does_not_stand_in_for_hdfs_jar() -> None:
    assert hdfs.missing_jars(["hadoop-hdfs-client-3.4.1.jar"]) == [
        "hadoop-common-*.jar", "hadoop-hdfs-*.jar"]


def test_site_properties_everything_on_loopback(tmp_path: Path) -> None:
    core, site = hdfs.site_properties(tmp_path, PORTS)
    assert core["fs.defaultFS"] == "hdfs://127.0.0.1:9001"
    assert site["dfs.namenode.http-address"] == "127.0.0.1:9002"
    assert site["dfs.datanode.address"] == "127.0.0.1:9003"
    assert site["dfs.datanode.http.address"] == "127.0.0.1:9004"  # WebHDFS redirects here
    assert site["dfs.datanode.ipc.address"] == "127.0.0.1:9005"
    assert site["dfs.datanode.hostname"] == "127.0.0.1"
    addresses = [v for k, v in site.items() if k.endswith("address")]
    assert all(a.startswith("127.0.0.1:") for a in addresses)


def test_site_properties_single_node_open_and_under_home(tmp_path: Path) -> None:
    core, site = hdfs.site_properties(tmp_path, PORTS)
    assert site["dfs.replication"] == "1"
    assert site["dfs.permissions.enabled"] == "false"
    assert site["dfs.webhdfs.enabled"] == "true"
    assert site["dfs.namenode.safemode.extension"] == "0"
    for key in ("dfs.namenode.name.dir", "dfs.datanode.data.dir"):
        assert Path(site[key]).parent == tmp_path
    assert Path(core["hadoop.tmp.dir"]).parent == tmp_path


def test_render_configuration_round_trips_and_escapes() -> None:
    props = {"a.b": "1", "odd": "x<y & z>\"w\""}
    root = ET.fromstring(hdfs.render_configuration(props))
    assert root.tag == "configuration"
    found = {p.findtext("name"): p.findtext("value") for p in root.iter("property")}
    assert found == props


def test_java_argv_layout(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    argv = hdfs.java_argv("/usr/bin/java", [str(conf), "/lib/*"], hdfs.NAMENODE_CLASS,
                          ["-format", "-force"], home=tmp_path, conf=conf)
    assert argv[0] == "/usr/bin/java"
    assert "-Xmx512m" in argv
    for package in ("java.base/java.lang", "java.base/java.nio", "java.base/sun.nio.ch",
                    "java.base/java.util"):
        assert f"--add-opens={package}=ALL-UNNAMED" in argv
    cp = argv[argv.index("-cp") + 1]
    assert cp.split(":")[0] == str(conf)  # our site files win over the jars' defaults
    assert argv[-3:] == [hdfs.NAMENODE_CLASS, "-format", "-force"]
    # every JVM option comes before the main class, or java would pass it to main()
    assert all(not a.startswith("-X") and not a.startswith("--add")
               for a in argv[argv.index(hdfs.NAMENODE_CLASS):])


@pytest.mark.parametrize(("state", "live", "ready"), [
    ("safeMode", 1, False),
    ("Operational", 0, False),
    ("Operational", 1, True),
    ("Operational", 3, True),
])
def test_ready_for_writes(state: str, live: int, ready: bool) -> None:
    jmx = {"beans": [{"name": hdfs.FSNAMESYSTEM_STATE, "FSState": state,
                      "NumLiveDataNodes": live}]}
    assert hdfs.ready_for_writes(jmx) is ready


def test_namesystem_state_rejects_empty_answer() -> None:
    with pytest.raises(ValueError):
        hdfs.namesystem_state({"beans": []})


def test_lib_dir_override() -> None:
    assert hdfs.hadoop_lib_dir({"CLUSTERJOBS_HADOOP_LIB": "/opt/h"}) == Path("/opt/h")
    assert hdfs.hadoop_lib_dir({}).parts[-3:] == ("share", "hadoop", "lib")


def test_start_without_jars_is_one_clear_line(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-lib"
    empty.mkdir()
    monkeypatch.setenv("CLUSTERJOBS_HADOOP_LIB", str(empty))
    ctx = StackContext(workdir=tmp_path / "stack")
    with pytest.raises(StackError) as info:
        hdfs.start(ctx)
    message = str(info.value)
    assert "\n" not in message
    assert str(empty) in message and "deploy/local/install.sh" in message
    assert ctx.records == []  # nothing was started


def test_start_without_java_is_one_clear_line(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder with no java in it
    ctx = StackContext(workdir=tmp_path / "stack")
    with pytest.raises(StackError, match=re.compile(r"^Java is not installed.*install")):
        hdfs.start(ctx)
    assert ctx.records == []
