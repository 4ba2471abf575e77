"""A one-layer ``docker save`` image of Debian's ``busybox-static``, for tests and the demo.

``build(folder)`` writes ``folder/busybox:latest.tar``: a layer with /bin/busybox and one
symlink per applet, empty /tmp, /etc/passwd and /etc/group, the image config (Env PATH,
Cmd ["sh"]) and ``manifest.json``, as ``docker save`` lays them out.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
EPOCH = 0  # fixed mtimes: the same binary always gives the same image


class BusyboxMissing(RuntimeError):
    """Debian's busybox-static is not installed."""


def _add(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, mode: int = 0o644,
         kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.linkname = kind, mode, EPOCH, link
    info.size = len(data) if data is not None else 0
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def _tar(build) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        build(tar)
    return buffer.getvalue()


def build(folder: Path, tag: str = "busybox:latest") -> Path:
    """Write the image tarball into ``folder``; returns its path."""
    if not BUSYBOX.is_file():
        raise BusyboxMissing(f"{BUSYBOX} is missing: install Debian's busybox-static")
    binary = BUSYBOX.read_bytes()
    listing = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()

    def layer_files(tar: tarfile.TarFile) -> None:
        for folder_name in ("bin", "etc", "tmp", "mnt", "proc", "dev"):
            _add(tar, folder_name, kind=tarfile.DIRTYPE, mode=0o1777 if folder_name == "tmp"
                 else 0o755)
        _add(tar, "bin/busybox", data=binary, mode=0o755)
        for applet in sorted(set(listing) - {"busybox"}):
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tar, "etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/group", data=b"root:x:0:\n")

    layer = _tar(layer_files)
    layer_id = hashlib.sha256(layer).hexdigest()
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": ""},
              "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]}}
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    repo, _sep, version = tag.partition(":")
    manifest = [{"Config": config_name, "RepoTags": [tag],
                 "Layers": [f"{layer_id}/layer.tar"]}]

    def image_files(tar: tarfile.TarFile) -> None:
        _add(tar, layer_id, kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, f"{layer_id}/VERSION", data=b"1.0")
        _add(tar, f"{layer_id}/layer.tar", data=layer)
        _add(tar, config_name, data=config_bytes)
        _add(tar, "manifest.json", data=json.dumps(manifest).encode())
        _add(tar, "repositories", data=json.dumps({repo: {version: layer_id}}).encode())

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{tag}.tar"
    partial = folder / f".{tag}.tar.partial"
    partial.write_bytes(_tar(image_files))
    partial.rename(target)
    return target
