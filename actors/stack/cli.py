"""`clusterjobs stack up|status|down`: the local stack of real services."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from actors import names
from actors.local.containerizer.isolation import IsolationError, parse_isolation
from actors.stack import capacity, orchestrator
from actors.stack.context import DEFAULT_START_TIMEOUT, STACK_ISOLATION, StackOptions
from actors.stack.errors import StackError
from actors.stack.health import check_all

DEFAULT_WORKDIR = Path(".stack")
DEFAULT_MASTERS = 1
DEFAULT_AGENTS = 3


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the `stack` verbs to the `clusterjobs` command."""
    parser = commands.add_parser("stack", help="the local stack of real services")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    up = verbs.add_parser("up", help="start ZooKeeper, HDFS, nodeos, Prometheus and Mesos")
    _workdir(up)
    up.add_argument("--masters", type=_positive,
                    help=f"Mesos masters (default {DEFAULT_MASTERS}; at most what the machine "
                         "holds)")
    up.add_argument("--agents", type=_positive,
                    help=f"Mesos agents (default {DEFAULT_AGENTS}; at most "
                         f"{capacity.AGENTS_PER_CORE} per core and what the memory holds)")
    up.add_argument("--agent-accounts", type=_accounts,
                    help="comma-separated Antelope account per agent, its eos_account "
                         "attribute (default worker1..workerN)")
    up.add_argument("--timeout", type=_positive, default=int(DEFAULT_START_TIMEOUT),
                    help="seconds each service may take to answer (default "
                         f"{DEFAULT_START_TIMEOUT:.0f})")
    up.add_argument("--no-sample", action="store_true",
                    help="do not deploy the contracts and the sample protocol of alice")
    up.add_argument("--isolation", type=_isolation, default=STACK_ISOLATION,
                    help="the agents' isolators, Mesos names, comma-separated, or `none` "
                         f"for plain processes (default {STACK_ISOLATION})")
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


def _accounts(text: str) -> tuple[str, ...]:
    try:
        return names.account_names(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _isolation(text: str) -> str:
    try:
        parse_isolation(text)
    except IsolationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _up(args: argparse.Namespace) -> int:
    masters = args.masters or DEFAULT_MASTERS
    agents = args.agents or (len(args.agent_accounts) if args.agent_accounts
                             else DEFAULT_AGENTS)
    accounts = args.agent_accounts or ()
    if accounts and len(accounts) != agents:
        raise StackError(f"--agent-accounts names {len(accounts)} accounts for {agents} agents")
    problem = capacity.size_problem(capacity.this_machine(), masters, agents)
    if problem:
        raise StackError(problem)
    workdir = args.workdir.resolve()
    # An unreadable state is reported before anything is created or started.
    before = orchestrator.read_state(workdir) if workdir.is_dir() else None
    workdir = orchestrator.prepare_workdir(workdir)
    if before is not None and orchestrator.is_up(before):
        _refuse_other_sizes(workdir, before, args)
    options = StackOptions(masters=masters, agents=agents, agent_accounts=accounts,
                           start_timeout=float(args.timeout), sample=not args.no_sample,
                           isolation=args.isolation)
    print(f"starting the stack in {workdir} ...", file=sys.stderr)
    state, started = orchestrator.up(workdir, options)
    if not started:
        print(f"the stack in {workdir} is already running; nothing changed", file=sys.stderr)
    else:
        for name, seconds in state["startup_seconds"].items():
            print(f"  {name:<11} up in {seconds:6.2f} s", file=sys.stderr)
        if before is not None:
            _say_what_changed(before, state)
    _print_endpoints(orchestrator.status(workdir))
    return 0


def _sizes(state: dict) -> dict[str, object]:
    """The sizes a running stack was started with (older states: from its endpoints)."""
    recorded = state.get("options") or {}
    endpoints = state.get("endpoints", {})
    return {
        "masters": recorded.get("masters", len(endpoints.get("mesos_masters", []))),
        "agents": recorded.get("agents", len(endpoints.get("mesos_agents", []))),
        "agent_accounts": tuple(recorded.get("agent_accounts", ())),
    }


def _refuse_other_sizes(workdir: Path, state: dict, args: argparse.Namespace) -> None:
    running = _sizes(state)
    asked = {"masters": args.masters, "agents": args.agents,
             "agent_accounts": args.agent_accounts}
    differ = [k for k, v in asked.items() if v is not None and v != running[k]]
    if differ:
        flags = " ".join(f"--{k.replace('_', '-')} {_plain(asked[k])}" for k in differ)
        raise StackError(
            f"the stack in {workdir} is running with {running['masters']} master(s) and "
            f"{running['agents']} agent(s)"
            + (f" (accounts {_plain(running['agent_accounts'])})"
               if "agent_accounts" in differ else "")
            + f"; to change that: clusterjobs stack down --workdir {workdir} && "
            f"clusterjobs stack up --workdir {workdir} {flags}")


def _say_what_changed(before: dict, state: dict) -> None:
    old, new = before.get("endpoints", {}), state["endpoints"]
    changed = [k for k in new if k in old and old[k] != new[k]]
    if changed:
        print(f"the stack in {state['workdir']} was partly down and has been restarted; "
              f"these endpoints changed: "
              + "; ".join(f"{k} {_plain(old[k])} -> {_plain(new[k])}" for k in changed),
              file=sys.stderr)


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
    result = orchestrator.take_down(args.workdir)
    listed = " ".join(result.names) or "-"
    if result.unreadable is not None:
        print(f"stack.json in {args.workdir.resolve()} was unreadable ({result.unreadable}); "
              f"stopped the {len(result.names)} processes it still names or that log to its "
              f"logs/ folder: {listed}; the file is kept as {result.kept_as}", file=sys.stderr)
    else:
        print(f"stopped {len(result.names)} processes: {listed}", file=sys.stderr)
    return 0


def _plain(value: object, nested: bool = False) -> str:
    """A value as an operator reads it: lists comma-separated, mappings as ``key=value``
    separated by semicolons (a mapping inside one as ``key -> value``), never a Python repr."""
    if isinstance(value, dict):
        if nested:
            return ", ".join(f"{k} -> {_plain(v, True)}" for k, v in value.items()) or "-"
        return "; ".join(f"{k}={_plain(v, True)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ",".join(_plain(v, True) for v in value) or "-"
    return str(value)


def _print_endpoints(info: dict) -> None:
    skip = {"startup_seconds", "down", "healthy", "workdir", "health"}
    for key, value in info.items():
        if key not in skip:
            print(f"{key:<14} {_plain(value)}")
    for name, answer in info.get("health", {}).items():
        print(f"{'health.' + name:<18} {answer}")
    failing = info["down"] + [n for n, a in info.get("health", {}).items()
                              if a.startswith("FAILED")]
    failing = list(dict.fromkeys(failing))  # a service both down and failing is named once
    state = "healthy" if info["healthy"] else f"UNHEALTHY: {', '.join(failing)}"
    print(f"{'state':<14} {state}")
