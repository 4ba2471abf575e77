"""deploy/docker/base_image.py assembles the work-unit base image from Debian packages as a
`docker save` tarball: its manifest, config and layer agree, the same packages give the same
layer, and the unpacked layer runs Python 3.11, a shell and awk as the non-root user (chroot)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "docker" / "base_image.py"
TAG = "clusterjobs-base:test"


def build(out: Path) -> Path:
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--tag", TAG],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path == out / f"{TAG}.tar"
    return path


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("image"))


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_docker_save_layout_is_consistent(image: Path) -> None:
    files = members(image)
    [manifest] = json.loads(files["manifest.json"])
    assert manifest["RepoTags"] == [TAG]
    config = json.loads(files[manifest["Config"]])
    [layer_name] = manifest["Layers"]
    layer = files[layer_name]
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]
    assert manifest["Config"] == hashlib.sha256(files[manifest["Config"]]).hexdigest() + ".json"
    assert config["config"]["User"] == "10001:10001"
    assert json.loads(files["repositories"]) == {"clusterjobs-base": {"test": layer_name[:64]}}


def test_same_packages_same_layer(image: Path, tmp_path: Path) -> None:
    again = build(tmp_path)
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(
        image.read_bytes()).digest()


def test_the_layer_runs_python_shell_and_awk(image: Path, tmp_path: Path) -> None:
    files = members(image)
    [manifest] = json.loads(files["manifest.json"])
    layer = tmp_path / "layer.tar"
    layer.write_bytes(files[manifest["Layers"][0]])
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    subprocess.run(["tar", "-xf", str(layer), "-C", str(rootfs)], check=True)
    done = subprocess.run(
        ["chroot", "--userspec=10001:10001", str(rootfs), "/bin/sh", "-c",
         "cd /tmp && python3 -c 'import json, sys; print(json.dumps(sys.version_info[:2]))' "
         "&& echo pi | awk '{print toupper($0)}' && id -u"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[3,", "11]", "PI", "10001"]


def test_bad_tag_is_one_line() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", "/nonexistent", "--tag",
                           "a/b:c"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == "base_image.py: error: --tag: expected name:tag without '/', " \
                          "got 'a/b:c'\n"
