#!/usr/bin/env python3
"""Assemble the work-unit base image without a Docker engine: Debian packages (Python 3.11,
a shell, coreutils, gawk and everything they depend on) unpacked into one layer, written as a
`docker save` tarball that Mesos's local image store reads (`--docker_registry DIR` with
`DIR/<name>:<tag>.tar`).

    python deploy/docker/base_image.py --out DIR [--tag clusterjobs-base:bookworm]

The packages come from this machine's apt sources (`apt-get download`); nothing runs inside
the image while it is built (no maintainer scripts), so it needs no root-only step but the
download. Files are stored with owner root and mtime 0, so the same packages give the same
layer digest.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "dash", "coreutils", "gawk")
USER_ID = 10001
PASSWD = f"root:x:0:0:root:/root:/bin/sh\nclusterjobs:x:{USER_ID}:{USER_ID}::/tmp:/bin/sh\n"
GROUP = f"root:x:0:\nclusterjobs:x:{USER_ID}:\n"
PATH = "/usr/local/bin:/usr/bin:/bin"
APT_DEPENDS = ("apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
               "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances")


class ImageBuildError(Exception):
    """A step of the build failed (one line)."""


def closure(packages: tuple[str, ...]) -> list[str]:
    """The packages and their recursive Depends/Pre-Depends, virtual names left out."""
    done = subprocess.run([*APT_DEPENDS, *packages], capture_output=True, text=True)
    if done.returncode != 0:
        raise ImageBuildError(f"apt-cache depends: {done.stderr.strip().splitlines()[-1:]}")
    names = {line.strip() for line in done.stdout.splitlines()
             if line and not line.startswith((" ", "<"))}
    return sorted(names)


def download(names: list[str], folder: Path) -> list[Path]:
    done = subprocess.run(["apt-get", "download", *names], cwd=folder, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise ImageBuildError(f"apt-get download: {done.stderr.strip()[-300:]}")
    debs = sorted(folder.glob("*.deb"))
    if len(debs) != len(names):
        raise ImageBuildError(f"apt-get download: {len(debs)} packages for {len(names)} names")
    return debs


def unpack(debs: list[Path], rootfs: Path) -> None:
    for deb in debs:
        done = subprocess.run(["dpkg-deb", "-x", str(deb), str(rootfs)], capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise ImageBuildError(f"dpkg-deb -x {deb.name}: {done.stderr.strip()}")
    etc = rootfs / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    for name in ("tmp", "proc", "dev", "sys", "mnt/mesos/sandbox"):
        (rootfs / name).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    # The links Debian's maintainer scripts and alternatives would have made.
    for link, target in (("usr/bin/python3", "python3.11"), ("bin/sh", "dash"),
                         ("usr/bin/awk", "gawk")):
        if not (rootfs / link).is_symlink() and not (rootfs / link).exists():
            (rootfs / link).symlink_to(target)


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    return info


def layer_tar(rootfs: Path) -> bytes:
    """The rootfs as one layer tarball, entries sorted, owners and times normalised."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(rootfs.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(rootfs)), recursive=False,
                    filter=_normalise)
    return buffer.getvalue()


def docker_save(layer: bytes, tag: str, packages: list[str]) -> bytes:
    """A `docker save` tarball (manifest.json, the image config, one layer) of ``layer``."""
    repo, _, version = tag.rpartition(":")
    diff_id = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Env": [f"PATH={PATH}"], "Cmd": ["/bin/sh"], "WorkingDir": "/tmp",
                   "User": f"{USER_ID}:{USER_ID}",
                   "Labels": {"org.clusterjobs.packages": " ".join(packages)}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": "1970-01-01T00:00:00Z",
                     "created_by": "deploy/docker/base_image.py (Debian packages)"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_id = hashlib.sha256(config_bytes).hexdigest()
    layer_id = hashlib.sha256(f"{diff_id}\n{config_id}".encode()).hexdigest()
    manifest = [{"Config": f"{config_id}.json", "RepoTags": [tag],
                 "Layers": [f"{layer_id}/layer.tar"]}]
    files = {
        f"{layer_id}/VERSION": b"1.0",
        f"{layer_id}/json": json.dumps({"id": layer_id, "os": "linux"}).encode(),
        f"{layer_id}/layer.tar": layer,
        f"{config_id}.json": config_bytes,
        "manifest.json": json.dumps(manifest).encode(),
        "repositories": json.dumps({repo: {version: layer_id}}).encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(layer_id)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build(out: Path, tag: str) -> Path:
    """Write ``out/<tag>.tar``; returns its path."""
    if tag.count(":") != 1 or "/" in tag or not all(tag.split(":")):
        raise ImageBuildError(f"--tag: expected name:tag without '/', got {tag!r}")
    names = closure(PACKAGES)
    with tempfile.TemporaryDirectory() as work:
        debs_dir, rootfs = Path(work) / "debs", Path(work) / "rootfs"
        debs_dir.mkdir()
        rootfs.mkdir()
        unpack(download(names, debs_dir), rootfs)
        layer = layer_tar(rootfs)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{tag}.tar"
    target.write_bytes(docker_save(layer, tag, names))
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for <name>:<tag>.tar")
    parser.add_argument("--tag", default="clusterjobs-base:bookworm")
    args = parser.parse_args()
    try:
        path = build(args.out, args.tag)
    except ImageBuildError as exc:
        print(f"base_image.py: error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
