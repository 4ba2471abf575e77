"""`clusterjobs contributors`: who contributed what, joined from Mesos and the chain.

The leading master's ``/master/state`` gives the agents, their ``eos_account`` attribute and
their tasks; the jobs contract's ``worker`` and ``dispatcher`` tables give each contributor's
``total_time`` and ``unpaid_time`` per researcher; the registry's ``protocol`` table gives the
rate and token that price the paid time. One row per contributor and researcher (plus one per
agent whose account has no row yet, with ``researcher`` null)::

    {"account", "type": "worker"|"dispatcher", "researcher", "total_us", "unpaid_us",
     "paid": tokens received for the paid time ("3.0000 JOB", null without a protocol),
     "agent_ids", "paid_us", "tasks", "balance"}

``paid`` is the contract's own formula, value(total - unpaid) at the protocol's stored rate:
what the payouts so far transferred, since they telescope to it (contracts/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.pay import time_value
from scheduler.chain import ChainClient, ChainError


@dataclass(frozen=True)
class Pricing:
    """How a researcher's time is paid: the protocol's token and stored rates."""

    token: str
    precision: int
    code: str
    worker_rate: int
    dispatcher_rate: int


def pricing(protocols: Iterable[Mapping[str, Any]]) -> dict[str, Pricing]:
    """researcher → Pricing, from registry ``protocol`` rows (the first protocol found wins
    when a researcher has several owners' protocols)."""
    found: dict[str, Pricing] = {}
    for row in protocols:
        amount, code = str(row["fund"]).split()
        precision = len(amount.split(".")[1]) if "." in amount else 0
        found.setdefault(str(row["researcher"]), Pricing(
            str(row["tokencontract"]), precision, code, int(row["worker_pay_rate"]),
            int(row["dispatcher_pay_rate"])))
    return found


def asset(units: int, precision: int, code: str) -> str:
    """``units`` smallest units as eosio prints an asset ("3.0000 JOB")."""
    if precision == 0:
        return f"{units} {code}"
    whole, frac = divmod(units, 10**precision)
    return f"{whole}.{frac:0{precision}d} {code}"


def join(state: Mapping[str, Any], workers: Mapping[str, list[Mapping[str, Any]]],
         dispatchers: Mapping[str, list[Mapping[str, Any]]],
         prices: Mapping[str, Pricing],
         balances: Mapping[tuple[str, str], str] | None = None) -> list[dict[str, Any]]:
    """The contributors table (pure). ``workers``/``dispatchers``: account → its table rows;
    ``balances``: (account, token contract) → balance text."""
    balances = balances or {}
    agents_of: dict[str, list[str]] = {}
    agent_account: dict[str, str] = {}
    for agent in state.get("slaves", []):
        account = (agent.get("attributes") or {}).get("eos_account")
        if account:
            agents_of.setdefault(str(account), []).append(str(agent["id"]))
            agent_account[str(agent["id"])] = str(account)
    every = list(state.get("completed_tasks") or [])  # the emulator lists them here too
    for framework in list(state.get("frameworks") or []) + list(
            state.get("completed_frameworks") or []):
        if isinstance(framework, Mapping):
            every += list(framework.get("tasks") or []) + list(
                framework.get("completed_tasks") or [])
    tasks: dict[str, int] = {}
    seen: set[str] = set()
    for task in every:
        if not isinstance(task, Mapping) or str(task.get("id")) in seen:
            continue
        seen.add(str(task.get("id")))
        account = agent_account.get(str(task.get("slave_id") or task.get("agent_id")))
        if account:
            tasks[account] = tasks.get(account, 0) + 1
    out: list[dict[str, Any]] = []
    for kind, table in (("worker", workers), ("dispatcher", dispatchers)):
        for account in sorted(table):
            for row in sorted(table[account], key=lambda r: str(r["researcher"])):
                out.append(_row(kind, account, row, prices, balances,
                                agents_of.get(account, []) if kind == "worker" else [],
                                tasks.get(account, 0) if kind == "worker" else 0))
    for account in sorted(set(agents_of) - set(workers)):
        out.append({"account": account, "type": "worker", "researcher": None, "total_us": 0,
                    "unpaid_us": 0, "paid": None, "agent_ids": sorted(agents_of[account]),
                    "paid_us": 0, "tasks": tasks.get(account, 0), "balance": None})
    return out


def _row(kind: str, account: str, row: Mapping[str, Any], prices: Mapping[str, Pricing],
         balances: Mapping[tuple[str, str], str], agent_ids: list[str],
         tasks: int) -> dict[str, Any]:
    total, unpaid = int(row["total_time"]), int(row["unpaid_time"])
    price = prices.get(str(row["researcher"]))
    paid = None
    balance = None
    if price is not None:
        rate = price.worker_rate if kind == "worker" else price.dispatcher_rate
        paid = asset(time_value(total - unpaid, rate), price.precision, price.code)
        balance = balances.get((account, price.token))
    return {"account": account, "type": kind, "researcher": str(row["researcher"]),
            "total_us": total, "unpaid_us": unpaid, "paid": paid,
            "agent_ids": sorted(agent_ids), "paid_us": total - unpaid, "tasks": tasks,
            "balance": balance}


# ------------------------------------------------------------------ edges

def master_state(masters: Iterable[str], timeout: float = 10.0) -> dict[str, Any]:
    """``/master/state`` of the leading master (a non-leader redirects to it, as Mesos does)."""
    errors = []
    for url in masters:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/master/state",
                                        timeout=timeout) as resp:
                state = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        if state.get("leader") and state.get("pid") == state.get("leader"):
            return dict(state)
        errors.append(f"{url}: not the leader")
    raise ChainError("no leading Mesos master answered: " + "; ".join(errors or ["none given"]))


def gather(client: ChainClient, state: Mapping[str, Any], jobs: str = "jobs",
           registry: str = "registry") -> list[dict[str, Any]]:
    """Read the chain's tables and balances, then :func:`join`. Rows are read raw (nodeos
    exits on a row its current ABI cannot decode, such as one an older contract wrote)."""
    from scheduler.chain_view import ChainView, ChainViewError
    from scheduler.payout_service import read_contributors, read_protocols

    view = ChainView(client.url, registry=registry, jobs=jobs)
    try:
        workers = read_contributors(view, "worker")
        dispatchers = read_contributors(view, "dispatcher")
        protocols = read_protocols(view)
    except ChainViewError as exc:
        raise ChainError(str(exc)) from None
    prices = pricing(protocols)
    balances: dict[tuple[str, str], str] = {}
    for table in (workers, dispatchers):
        for account, rows in table.items():
            for row in rows:
                price = prices.get(str(row["researcher"]))
                if price is None or (account, price.token) in balances:
                    continue
                found = [b for b in client.balances(account, price.token)
                         if b.endswith(" " + price.code)]
                balances[(account, price.token)] = found[0] if found else asset(
                    0, price.precision, price.code)
    return join(state, workers, dispatchers, prices, balances)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `contributors` to the `clusterjobs` command."""
    from scheduler import chain_cli

    parser = commands.add_parser(
        "contributors", help="contributors' time and pay, from Mesos and the chain",
        description="Per contributor and researcher: total, unpaid and paid time, tokens.")
    chain_cli.add_target(parser)
    parser.add_argument("--master", action="append",
                        help="a Mesos master URL, repeatable (default: the stack's masters)")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from scheduler import chain_cli

    url, _ = chain_cli.nodeos_url(args)
    masters = args.master or _stack_masters(args.stack)
    table = gather(ChainClient(url), master_state(masters), args.jobs_account,
                   args.registry_account)
    if args.json:
        json.dump(table, sys.stdout)
        print()
        return 0
    print(render(table))
    return 0


def _stack_masters(stack: Path) -> list[str]:
    from actors.stack import orchestrator
    from actors.stack.errors import StackError

    try:
        info = orchestrator.status(stack)
    except StackError as exc:
        raise ChainError(f"no --master given and no stack at {stack}: {exc}") from None
    return [str(m) for m in info.get("mesos_masters") or []]


def render(table: list[dict[str, Any]]) -> str:
    """The table for a terminal."""
    head = ("account", "type", "researcher", "total s", "unpaid s", "paid", "balance", "agents",
            "tasks")
    lines = [head]
    for r in table:
        lines.append((r["account"], r["type"], r["researcher"] or "-",
                      f"{r['total_us'] / 1e6:.6f}", f"{r['unpaid_us'] / 1e6:.6f}",
                      r["paid"] or "-", r["balance"] or "-", ",".join(r["agent_ids"]) or "-",
                      str(r["tasks"])))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)
