"""The actors' compose files (actors/dispatchers, workers, storage): each validates against the
compose-spec JSON schema shipped in deploy/compose/, and the three agree with each other (images
pinned, one Mesos version, ZooKeeper and HDFS ports the same wherever they are named, every named
volume declared and used, no host port published twice, builds pointing at real Dockerfiles)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("dispatchers", "workers", "storage")
SCHEMA = json.loads((ROOT / "deploy" / "compose" / "compose-spec.json").read_text())
DEFAULT = re.compile(r"\$\{(\w+)(?::?[-?])([^}]*)\}")


def load(role: str) -> dict:
    return yaml.safe_load((ROOT / "actors" / role / "docker-compose.yml").read_text())


def expand(text: str) -> str:
    """Compose's ${VAR:-default} interpolation with every variable unset (defaults taken)."""
    return DEFAULT.sub(lambda m: m.group(2), text)


def schema_problems(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]


@pytest.mark.parametrize("role", ROLES)
def test_compose_file_validates_against_the_compose_spec(role: str) -> None:
    assert schema_problems(load(role)) == []


@pytest.mark.parametrize("role", ROLES)
def test_each_role_has_a_readme(role: str) -> None:
    text = (ROOT / "actors" / role / "README.md").read_text()
    assert "docker compose" in text and "join" in text.lower()


def test_the_schema_catches_a_misspelt_key_and_a_bad_shape() -> None:
    bad = {"services": {"a": {"image": "x:1.0", "volumes": "data:/data"},
                        "b": {"imagee": "x:1.0"}}}
    problems = "\n".join(schema_problems(bad))
    assert "'imagee' does not match" in problems
    assert "services/a/volumes: 'data:/data' is not of type 'array'" in problems


def services() -> dict[str, dict]:
    out: dict[str, dict] = {}
    for role in ROLES:
        for name, service in load(role)["services"].items():
            assert name not in out, f"service {name} is defined twice"
            out[name] = {**service, "_role": role}
    return out


def published(service: dict) -> list[tuple[int, int]]:
    pairs = []
    for item in service.get("ports", []):
        host, _, container = expand(str(item)).rpartition(":")
        pairs.append((int(host), int(container)))
    return pairs


def env(service: dict) -> dict[str, str]:
    return {k: expand(str(v)) for k, v in (service.get("environment") or {}).items()}


def test_images_are_pinned_and_mesos_versions_agree() -> None:
    all_services = services()
    for name, service in all_services.items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)+[\w.-]*", image), f"{name}: {image} unpinned"
    master = all_services["mesos-master"]["image"].rsplit(":", 1)[1]
    agent = all_services["mesos-agent"]["image"].rsplit(":", 1)[1]
    assert master == agent
    namenode = all_services["namenode"]["image"]
    assert all_services["datanode"]["image"] == namenode


def test_no_host_port_is_published_twice() -> None:
    seen: dict[int, str] = {}
    for name, service in services().items():
        for host, _ in published(service):
            assert host not in seen, f"host port {host}: {seen.get(host)} and {name}"
            seen[host] = name


def test_zookeeper_port_is_the_one_every_zk_url_names() -> None:
    all_services = services()
    zk_port = dict((c, h) for h, c in published(all_services["zookeeper"]))[2181]
    urls = []
    for service in all_services.values():
        command = service.get("command") or []
        texts = [*env(service).values(), *(expand(str(arg)) for arg in command)]
        urls += [t for t in texts if t.startswith("zk://")]
    assert len(urls) >= 4  # master, agent, marathon --master and --zk
    for url in urls:
        hosts = url[len("zk://"):].split("/", 1)[0].split(",")
        assert all(h.endswith(f":{zk_port}") for h in hosts), url
    assert env(all_services["mesos-agent"])["MESOS_MASTER"].endswith("/mesos")
    assert env(all_services["mesos-master"])["MESOS_ZK"].endswith("/mesos")


def test_mesos_and_hdfs_ports_match_their_configuration() -> None:
    all_services = services()
    for name in ("mesos-master", "mesos-agent"):
        port = int(env(all_services[name])["MESOS_PORT"])
        assert (port, port) in published(all_services[name]), name
    namenode, datanode = env(all_services["namenode"]), env(all_services["datanode"])
    http = int(namenode["HDFS-SITE.XML_dfs.namenode.http-address"].rsplit(":", 1)[1])
    rpc = int(namenode["HDFS-SITE.XML_dfs.namenode.rpc-address"].rsplit(":", 1)[1])
    assert {(http, http), (rpc, rpc)} <= set(published(all_services["namenode"]))
    assert namenode["CORE-SITE.XML_fs.defaultFS"].endswith(f":{rpc}")
    assert datanode["CORE-SITE.XML_fs.defaultFS"] == namenode["CORE-SITE.XML_fs.defaultFS"]
    # WebHDFS redirects reads and writes to the DataNode's HTTP port: it must be reachable.
    dn_http = int(datanode["HDFS-SITE.XML_dfs.datanode.http.address"].rsplit(":", 1)[1])
    assert (dn_http, dn_http) in published(all_services["datanode"])


def test_agent_carries_its_eos_account_and_isolation() -> None:
    agent = env(services()["mesos-agent"])
    assert "eos_account:" in agent["MESOS_ATTRIBUTES"]
    assert "${EOS_ACCOUNT:?" in load("workers")["services"]["mesos-agent"]["environment"][
        "MESOS_ATTRIBUTES"], "a worker without its account must refuse to start"
    isolation = agent["MESOS_ISOLATION"].split(",")
    assert {"cgroups/cpu", "cgroups/mem", "namespaces/pid"} <= set(isolation)


@pytest.mark.parametrize("role", ROLES)
def test_named_volumes_are_declared_and_used(role: str) -> None:
    document = load(role)
    declared = set(document.get("volumes") or {})
    used = set()
    for service in document["services"].values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith(("/", ".")):
                used.add(source)
    assert used == declared


def test_builds_name_real_dockerfiles_and_the_marathon_image() -> None:
    images = {}
    for role in ROLES:
        for service in load(role)["services"].values():
            build = service.get("build")
            if build:
                context = (ROOT / "actors" / role / build["context"]).resolve()
                assert (context / build["dockerfile"]).is_file()
                assert context == ROOT
                images[build["dockerfile"]] = service["image"]
    app = json.loads((ROOT / "deploy" / "marathon" / "clusterjobs.json").read_text())
    assert images["deploy/docker/scheduler.Dockerfile"] == app["container"]["docker"]["image"]
    assert "deploy/docker/executor.Dockerfile" in images
