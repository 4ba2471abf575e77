"""Docker images from a local registry folder (Mesos's ``--docker_registry`` local puller).

The folder holds ``docker save`` tarballs named ``<repo>:<tag>.tar``. An image is unpacked
once into the agent's image cache (layers applied in order, whiteouts honoured) and each
container gets its own copy of the rootfs (Mesos's copy backend).
"""

from __future__ import annotations

import json
import shutil
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class ImageError(RuntimeError):
    """An image that cannot be found or unpacked (message names it)."""


@dataclass(frozen=True)
class ImageConfig:
    """What Mesos's docker/runtime isolator takes from an image's config."""

    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    working_dir: str = ""

    @classmethod
    def from_json(cls, doc: dict) -> ImageConfig:
        config = doc.get("config") or doc.get("container_config") or {}
        return cls(tuple(config.get("Env") or ()), tuple(config.get("Cmd") or ()),
                   tuple(config.get("Entrypoint") or ()), config.get("WorkingDir") or "")


def reference(name: str) -> str:
    """``busybox`` -> ``busybox:latest`` (the tarball's base name); keeps a given tag."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def apply_layer(layer: tarfile.TarFile, rootfs: Path) -> None:
    """Apply one layer on ``rootfs``: whiteouts remove what lower layers put there."""
    members = []
    for member in layer.getmembers():
        pure = PurePosixPath(member.name)
        if pure.name == OPAQUE:
            folder = rootfs / pure.parent
            if folder.is_dir():
                for child in folder.iterdir():
                    _remove(child)
        elif pure.name.startswith(WHITEOUT):
            _remove(rootfs / pure.parent / pure.name[len(WHITEOUT):])
        else:
            target = rootfs / pure
            # A layer replacing a folder by a file (or the reverse) replaces it whole.
            if target.exists() and (target.is_dir() != member.isdir() or target.is_symlink()):
                _remove(target)
            members.append(member)
    layer.extractall(rootfs, members=members, filter="tar")


def unpack(tarball: Path, dest: Path) -> ImageConfig:
    """Unpack a ``docker save`` tarball into ``dest``/rootfs; returns its config."""
    rootfs = dest / "rootfs"
    rootfs.mkdir(parents=True)
    with tarfile.open(tarball) as outer:
        try:
            manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
            entry = manifest[0]
            config = json.load(outer.extractfile(entry["Config"]))  # type: ignore[arg-type]
            for name in entry["Layers"]:
                with tarfile.open(fileobj=outer.extractfile(name)) as layer:
                    apply_layer(layer, rootfs)
        except (KeyError, IndexError, TypeError, ValueError, tarfile.TarError) as exc:
            raise ImageError(f"{tarball.name} is not a docker save tarball: {exc}") from None
    (dest / "config.json").write_text(json.dumps(config))
    return ImageConfig.from_json(config)


@dataclass
class ImageStore:
    """The agent's image cache: ``<cache>/<repo>:<tag>/{rootfs,config.json}``."""

    registry: Path | None
    cache: Path
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def get(self, name: str) -> tuple[Path, ImageConfig, bool]:
        """(cached rootfs, config, was cached) of image ``name``; pulls it the first time."""
        ref = reference(name)
        if self.registry is None:
            raise ImageError(f"Failed to find image '{name}': the agent has no "
                             "--docker_registry")
        with self._guard:
            lock = self._locks.setdefault(ref, threading.Lock())
        with lock:
            dest = self.cache / ref
            if (dest / "config.json").exists():
                doc = json.loads((dest / "config.json").read_text())
                return dest / "rootfs", ImageConfig.from_json(doc), True
            tarball = self.registry / f"{ref}.tar"
            if not tarball.is_file():
                raise ImageError(f"Failed to find image '{name}': no {tarball}")
            partial = self.cache / f".{ref}.partial"
            if partial.exists():
                shutil.rmtree(partial)
            config = unpack(tarball, partial)
            partial.rename(dest)
            return dest / "rootfs", config, False

    @staticmethod
    def copy_rootfs(cached: Path, target: Path) -> None:
        """A container's own copy of an image's rootfs (Mesos's copy backend)."""
        shutil.copytree(cached, target, symlinks=True)
