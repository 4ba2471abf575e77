"""The `clusterjobs` command: a thin dispatcher over each role's own sub-commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from actors import logfmt
from actors.stack.errors import StackError

# Error types whose message is meant for the operator: printed as one line, no traceback.
OPERATOR_ERRORS: tuple[type[BaseException], ...] = (StackError,)


def build_parser() -> argparse.ArgumentParser:
    """The full command tree; each role adds its own verbs."""
    from actors.stack import cli as stack_cli

    parser = argparse.ArgumentParser(prog="clusterjobs", description=__doc__)
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True)
    stack_cli.add_parser(commands)
    for module in _optional_roles():
        module.add_parser(commands)
    return parser


def _optional_roles() -> list:
    """Roles that add verbs; imported here so `clusterjobs --help` lists them all."""
    import importlib

    found = []
    for name in ("contracts.cli", "scheduler.cli", "scheduler.chain_cli", "scheduler.service_cli",
                 "executor.cli", "actors.local.cli", "actors.observe.cli"):
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            # Only "this role has no CLI yet" is skipped; a failing import inside it is shown.
            if not (exc.name and (name == exc.name or name.startswith(exc.name + "."))):
                raise
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logfmt.configure(args.log_level)
    errors = OPERATOR_ERRORS + tuple(_role_errors())
    try:
        return int(args.func(args) or 0)
    except errors as exc:
        print(f"clusterjobs: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clusterjobs: interrupted", file=sys.stderr)
        return 130


def _role_errors() -> list[type[BaseException]]:
    """Each role module may export ``OPERATOR_ERRORS``: its errors meant for the operator."""
    found: list[type[BaseException]] = []
    for module in _optional_roles():
        found += list(getattr(module, "OPERATOR_ERRORS", ()))
    return found


if __name__ == "__main__":
    sys.exit(main())
