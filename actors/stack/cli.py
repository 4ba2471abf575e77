"""`clusterjobs stack up|status|down`: the local stack of real services."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from actors.stack import orchestrator
from actors.stack.context import StackOptions
from actors.stack.health import check_all

DEFAULT_WORKDIR = Path(".stack")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("stack", help="the local stack of real services")
    verbs = parser.add_subparsers(dest="verb", required=True)

    up = verbs.add_parser("up", help="start ZooKeeper, HDFS, nodeos, Prometheus and Mesos")
    _workdir(up)
    up.add_argument("--masters", type=_positive, default=1, help="Mesos masters (default 1)")
    up.add_argument("--agents", type=_positive, default=3, help="Mesos agents (default 3)")
    up.add_argument("--agent-accounts", default="",
                    help="comma-separated eos_account attribute per agent "
                         "(default worker1..workerN)")
    up.add_argument("--timeout", type=_positive, default=180,
                    help="seconds each service may take to answer (default 180)")
    up.add_argument("--no-sample", action="store_true",
                    help="do not deploy the contracts and the sample protocol of alice")
    up.set_defaults(func=_up)

    status = verbs.add_parser("status", help="endpoints and health")
    _workdir(status)
    status.add_argument("--json", action="store_true", help="one JSON object on stdout")
    status.add_argument("--probe", action="store_true",
                        help="ask each service a real question and add the answers as `health`")
    status.set_defaults(func=_status)

    down = verbs.add_parser("down", help="stop every process `up` started")
    _workdir(down)
    down.set_defaults(func=_down)


def _workdir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="folder for state, data and logs (default .stack/)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _up(args: argparse.Namespace) -> int:
    accounts = tuple(a.strip() for a in args.agent_accounts.split(",") if a.strip())
    if accounts and len(accounts) != args.agents:
        raise SystemExit(f"clusterjobs: error: --agent-accounts names {len(accounts)} "
                         f"accounts for {args.agents} agents")
    options = StackOptions(masters=args.masters, agents=args.agents,
                           agent_accounts=accounts, start_timeout=float(args.timeout),
                           sample=not args.no_sample)
    print(f"starting the stack in {args.workdir} ...", file=sys.stderr)
    state, started = orchestrator.up(args.workdir, options)
    if not started:
        print(f"the stack in {args.workdir} is already running; nothing changed",
              file=sys.stderr)
    else:
        for name, seconds in state["startup_seconds"].items():
            print(f"  {name:<11} up in {seconds:6.2f} s", file=sys.stderr)
    _print_endpoints(orchestrator.status(args.workdir))
    return 0


def _status(args: argparse.Namespace) -> int:
    info = orchestrator.status(args.workdir)
    if args.probe:
        info["health"] = check_all(info)
        if any(answer.startswith("FAILED") for answer in info["health"].values()):
            info["healthy"] = False
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_endpoints(info)
    return 0 if info["healthy"] else 3


def _down(args: argparse.Namespace) -> int:
    stopped = orchestrator.down(args.workdir)
    print(f"stopped {len(stopped)} processes: {' '.join(stopped) or '-'}", file=sys.stderr)
    return 0


def _print_endpoints(info: dict) -> None:
    skip = {"startup_seconds", "down", "healthy", "workdir", "health"}
    for key, value in info.items():
        if key not in skip:
            print(f"{key:<14} {value}")
    for name, answer in info.get("health", {}).items():
        print(f"{'health.' + name:<18} {answer}")
    failing = info["down"] + [n for n, a in info.get("health", {}).items()
                              if a.startswith("FAILED")]
    state = "healthy" if info["healthy"] else f"UNHEALTHY: {', '.join(failing)}"
    print(f"{'state':<14} {state}")
