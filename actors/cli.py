"""The `clusterjobs` command: a thin dispatcher over each role's own sub-commands."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from actors import logfmt
from actors.stack.errors import StackError

# Error types whose message is meant for the operator: printed as one line, no traceback.
# Each role module adds its own by exporting ``OPERATOR_ERRORS`` (see _role_errors).
OPERATOR_ERRORS: tuple[type[BaseException], ...] = (StackError,)

DESCRIPTION = """\
Run researchers' batch work on contributed machines (Apache Mesos) and pay the contributors
on an Antelope chain. `clusterjobs stack up` starts a local stack of real services (ZooKeeper,
HDFS, nodeos, Prometheus, the Mesos emulator); `clusterjobs contracts deploy` puts the jobs
and registry contracts on its chain. Each command has its own --help."""

EXIT_OPERATOR_ERROR = 1
EXIT_USAGE = 2


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP: the running command unwinds and cleans up as on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class OneLineParser(argparse.ArgumentParser):
    """argparse with usage errors as one line on stderr (exit 2) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        verb = self.prog.removeprefix("clusterjobs").strip()
        where = f"{verb}: " if verb else ""
        print(f"clusterjobs: error: {where}{message} (see: {self.prog} --help)",
              file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The full command tree; each role adds its own verbs."""
    from actors.stack import cli as stack_cli

    parser = OneLineParser(prog="clusterjobs", description=DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="least severe log lines written to stderr, as logfmt "
                             "(default info)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stack_cli.add_parser(commands)
    for module in _optional_roles():
        module.add_parser(commands)
    return parser


def leaf_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every runnable verb of ``parser`` by its full name (e.g. ``stack up``)."""
    found: dict[str, argparse.ArgumentParser] = {}
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {parser.prog.removeprefix("clusterjobs").strip(): parser}
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):  # aliases map to one parser
            found.update(leaf_parsers(child))
    return found


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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    # A second signal (Ctrl-C pressed again, a supervisor repeating SIGTERM) must not cut the
    # clean-up the first one started short: that would leave processes running.
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logfmt.configure(args.log_level)
    errors = OPERATOR_ERRORS + tuple(_role_errors())
    # `kill`, a closed terminal or a supervisor stop must clean up exactly like Ctrl-C does.
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)
    try:
        return int(args.func(args) or 0)
    except errors as exc:
        print(f"clusterjobs: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_OPERATOR_ERROR
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        print(f"clusterjobs: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum


def _one_line(exc: BaseException) -> str:
    """The error's message on one line (a multi-line message would read as several errors)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _role_errors() -> list[type[BaseException]]:
    """Each role module may export ``OPERATOR_ERRORS``: its errors meant for the operator."""
    found: list[type[BaseException]] = []
    for module in _optional_roles():
        found += list(getattr(module, "OPERATOR_ERRORS", ()))
    return found


if __name__ == "__main__":
    sys.exit(main())
