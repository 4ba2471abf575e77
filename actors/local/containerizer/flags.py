"""The agent's containerizer flags, in Mesos's names (``--isolation``, ``--cgroups_root``,
``--cgroups_enable_cfs``, ``--image_providers``, ``--docker_registry``,
``--sandbox_directory``, ``--container_disk_watch_interval``,
``--enforce_container_disk_quota``), and the containerizer they configure."""

from __future__ import annotations

import argparse
from pathlib import Path

from actors.local.containerizer import isolation as iso
from actors.local.containerizer.cgroups import CgroupError
from actors.local.containerizer.containers import ContainerConfig, ContainerError, Containerizer

#: What :func:`containerizer` raises for a flag the machine cannot honour (one line each).
CONFIG_ERRORS = (iso.IsolationError, ContainerError, CgroupError)


def _both(parser: argparse.ArgumentParser, name: str, **kwargs: object) -> None:
    """A flag under Mesos's underscore name and its dashed spelling."""
    parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name,
                        **kwargs)  # type: ignore[arg-type]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the containerizer flags to the agent's parser."""
    _both(parser, "isolation", default="posix/cpu,posix/mem",
          help="isolators, comma-separated (Mesos names; `none` = plain processes): "
               f"{iso.STACK_DEFAULT}")
    _both(parser, "cgroups_root", default="mesos",
          help="folder of this agent's groups in each cgroup hierarchy")
    _both(parser, "cgroups_enable_cfs", action="store_true",
          help="hard-limit CPU with cpu.cfs_quota_us (Mesos: off by default)")
    _both(parser, "image_providers", default="", help="`docker` to run images")
    _both(parser, "docker_registry", default="",
          help="folder of `docker save` tarballs named <repo>:<tag>.tar")
    _both(parser, "sandbox_directory", default=iso.DEFAULT_SANDBOX_DIRECTORY,
          help="where the sandbox is mounted in a container with an image")
    _both(parser, "container_disk_watch_interval", type=float, default=15.0,
          help="seconds between disk/du checks of each sandbox")
    _both(parser, "enforce_container_disk_quota", action="store_true",
          help="disk/du destroys a container whose sandbox exceeds its disk")


def config_of(args: argparse.Namespace) -> ContainerConfig:
    """The containerizer's configuration from the parsed flags (raises one-line errors)."""
    isolation = iso.parse_isolation(args.isolation)
    providers = iso.parse_image_providers(args.image_providers, isolation)
    registry = Path(args.docker_registry).resolve() if args.docker_registry else None
    if registry is not None and not registry.is_dir():
        raise iso.IsolationError(f"--docker_registry {args.docker_registry} is not a folder")
    if not args.sandbox_directory.startswith("/"):
        raise iso.IsolationError("--sandbox_directory must be an absolute path")
    return ContainerConfig(isolation=isolation, cgroups_root=args.cgroups_root,
                           enable_cfs=args.cgroups_enable_cfs, image_providers=providers,
                           docker_registry=registry,
                           sandbox_directory=args.sandbox_directory.rstrip("/") or "/",
                           disk_watch_seconds=args.container_disk_watch_interval,
                           enforce_disk_quota=args.enforce_container_disk_quota)


def containerizer(args: argparse.Namespace) -> Containerizer:
    """Check the machine allows every asked-for isolator and build the containerizer.

    A refused isolator stops the agent with one line naming it, as Mesos refuses to start."""
    config = config_of(args)
    try:
        Containerizer.check_host(config)
        # The first agent's folder: agent processes of one stack share --work-dir.
        first_port = str(args.port).split(",")[0].strip()
        found = Containerizer(config, Path(args.work_dir).resolve() / f"agent-{first_port}")
    except CgroupError as exc:
        wanted = sorted(config.isolation & {iso.CGROUPS_CPU, iso.CGROUPS_MEM})
        raise ContainerError(f"isolator {','.join(wanted)} is not available on this "
                             f"machine: {exc}") from None
    return found
