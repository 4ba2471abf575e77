"""`clusterjobs image build-busybox DIR`: images for the local agents' containerizer."""

from __future__ import annotations

import argparse
from pathlib import Path

from actors.local.containerizer import busybox


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the `image` verbs to the `clusterjobs` command."""
    image = commands.add_parser("image", help="container images for the local Mesos agents")
    verbs = image.add_subparsers(dest="verb", required=True)
    build = verbs.add_parser(
        "build-busybox", help="write busybox:latest.tar (docker save layout) into DIR",
        description="Build a one-layer image of Debian's busybox-static as a `docker save` "
                    "tarball DIR/busybox:latest.tar, for an agent's --docker_registry DIR.")
    build.add_argument("dir", type=Path, help="the registry folder (created if missing)")
    build.add_argument("--tag", default="busybox:latest", help="repo:tag (default %(default)s)")
    build.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    if ":" not in args.tag or "/" in args.tag:
        raise SystemExit(f"clusterjobs: error: --tag must be repo:tag, not {args.tag!r}")
    try:
        path = busybox.build(args.dir, args.tag)
    except busybox.BusyboxMissing as exc:
        raise SystemExit(f"clusterjobs: error: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"clusterjobs: error: cannot write into {args.dir}: "
                         f"{exc.strerror}") from None
    print(path)
    return 0
