"""Pure parts of the agents' containerizer: flags, limits, messages, image commands, the
docker-save layer logic, cgroup file parsing."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from actors.local.containerizer import busybox, images
from actors.local.containerizer import isolation as iso
from actors.local.containerizer.cgroups import _mounts, _own_groups
from actors.local.containerizer.containers import ContainerError, Termination, _volume_mounts


def test_parse_isolation():
    assert iso.parse_isolation("none") == frozenset()
    assert iso.parse_isolation("posix/cpu,posix/mem") == frozenset()
    assert iso.parse_isolation("cgroups/cpu, cgroups/mem") == {"cgroups/cpu", "cgroups/mem"}
    assert "docker/runtime" in iso.parse_isolation(iso.STACK_DEFAULT)
    with pytest.raises(iso.IsolationError, match="unknown isolator 'cgroups/foo'"):
        iso.parse_isolation("cgroups/cpu,cgroups/foo")
    with pytest.raises(iso.IsolationError, match="docker/runtime needs filesystem/linux"):
        iso.parse_isolation("docker/runtime")


def test_image_providers_need_filesystem_linux():
    assert iso.parse_image_providers("docker", frozenset({"filesystem/linux"})) == {"docker"}
    assert iso.parse_image_providers("", frozenset()) == frozenset()
    with pytest.raises(iso.IsolationError, match="filesystem/linux"):
        iso.parse_image_providers("docker", frozenset())
    with pytest.raises(iso.IsolationError, match="'appc'"):
        iso.parse_image_providers("appc", frozenset({"filesystem/linux"}))


def test_limits_follow_mesos_arithmetic():
    limits = iso.Limits.of(0.35, 64, enable_cfs=True)
    assert limits == iso.Limits(cpu_shares=358, cfs_quota_us=35_000, mem_limit_bytes=64 << 20)
    tiny = iso.Limits.of(0.0001, 1, enable_cfs=True)
    assert (tiny.cpu_shares, tiny.cfs_quota_us, tiny.mem_limit_bytes) == (2, 1000, 32 << 20)
    assert iso.Limits.of(1, 64, enable_cfs=False).cfs_quota_us == -1


def test_container_size_adds_the_command_executor_allowance():
    task = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.25}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 10}}]
    assert iso.container_size([None, task], command_executor=True) == (0.35, 96, 10)
    assert iso.container_size([task, task], command_executor=False) == (0.5, 128, 20)


def test_messages():
    assert iso.mesos_bytes(96 << 20) == "96MB"
    assert iso.mesos_bytes(1 << 30) == "1GB"
    assert iso.mesos_bytes(1000) == "1000B"
    assert iso.memory_limitation_message(96 << 20, 96 << 20) == (
        "Memory limit exceeded: Requested: 96MB Maximum Used: 96MB")
    assert iso.disk_limitation_message(1 << 20, 3 << 20) == (
        "Disk usage (3MB) exceeds quota (1MB)")


def test_image_command_rules():
    # A shell command or one with a value runs as given.
    assert iso.image_command(["x"], True, True, ["/ep"], ["c"]) == (None, None)
    assert iso.image_command([], False, True, ["/ep"], ["c"]) == (None, None)
    # No value: Entrypoint, then Cmd only when no arguments were given.
    assert iso.image_command([], False, False, ["/ep", "-a"], ["c1"]) == (["/ep", "-a", "c1"],
                                                                          None)
    assert iso.image_command(["x"], False, False, ["/ep"], ["c1"]) == (["/ep", "x"], None)
    assert iso.image_command([], False, False, [], ["sh", "-c", "true"]) == (
        ["sh", "-c", "true"], None)
    assert iso.image_command(["y"], False, False, [], ["sh", "-c"]) == (["sh", "y"], None)
    assert iso.image_command([], False, False, [], []) == (None, "No executable is found")


def test_termination_wait_status():
    assert Termination(3).wait_status == 3 << 8
    assert Termination(-9).wait_status == 9


def _layer(files: dict[str, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_layers_apply_in_order_with_whiteouts(tmp_path):
    lower = _layer({"etc": None, "etc/a": b"a", "etc/b": b"b", "opt": None, "opt/x": b"x",
                    "keep": b"1"})
    upper = _layer({"etc/.wh.a": b"", "opt/.wh..wh..opq": b"", "opt/y": b"y",
                    "keep": b"2"})
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    for data in (lower, upper):
        with tarfile.open(fileobj=io.BytesIO(data)) as layer:
            images.apply_layer(layer, rootfs)
    assert sorted(p.name for p in (rootfs / "etc").iterdir()) == ["b"]
    assert sorted(p.name for p in (rootfs / "opt").iterdir()) == ["y"]
    assert (rootfs / "keep").read_bytes() == b"2"


def test_busybox_image_round_trip(tmp_path):
    if not busybox.BUSYBOX.is_file():
        pytest.skip("busybox-static is not installed")
    tarball = busybox.build(tmp_path / "registry")
    assert tarball.name == "busybox:latest.tar"
    with tarfile.open(tarball) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == ["busybox:latest"]
    store = images.ImageStore(tmp_path / "registry", tmp_path / "cache")
    rootfs, config, cached = store.get("busybox")
    assert not cached and config.cmd == ("sh",) and config.env == ("PATH=/bin",)
    assert (rootfs / "bin" / "busybox").is_file()
    assert (rootfs / "bin" / "sh").is_symlink()
    assert not (rootfs / "etc" / "os-release").exists()
    assert store.get("busybox:latest")[2] is True
    with pytest.raises(images.ImageError, match="'alpine'"):
        store.get("alpine")


def test_cgroup_discovery_parsing():
    mountinfo = ("30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
                 "31 25 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
                 "32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
    assert _mounts(mountinfo) == {"rw": Path("/sys/fs/cgroup/cpu"),
                                  "cpu": Path("/sys/fs/cgroup/cpu"),
                                  "memory": Path("/sys/fs/cgroup/memory")}
    own = _own_groups("4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/\n")
    assert own == {"memory": "/process_api/abc", "cpu": "/", "cpuacct": "/"}


def test_volume_mounts(tmp_path):
    class Parent:
        sandbox = tmp_path / "parent"

    volume = {"container_path": "work", "source": {
        "type": "SANDBOX_PATH", "sandbox_path": {"type": "PARENT", "path": "shared"}}}
    child = tmp_path / "parent" / "containers" / "c1"
    assert _volume_mounts({"volumes": [volume]}, child, Parent, True, "/mnt/mesos/sandbox") == [
        (str(tmp_path / "parent" / "shared"), "/mnt/mesos/sandbox/work")]
    assert _volume_mounts({"volumes": [volume]}, child, Parent, False, "/x") == [
        (str(tmp_path / "parent" / "shared"), str(child / "work"))]
    with pytest.raises(ContainerError, match="needs a nested container"):
        _volume_mounts({"volumes": [volume]}, child, None, True, "/x")
    escape = {"container_path": "../up", "source": volume["source"]}
    with pytest.raises(ContainerError, match="inside the sandbox"):
        _volume_mounts({"volumes": [escape]}, child, Parent, False, "/x")
