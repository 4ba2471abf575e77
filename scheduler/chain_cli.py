"""`clusterjobs chain VERB`: one operator verb per action of the jobs and registry contracts.

    clusterjobs chain regworker WORKER RESEARCHER [--account jobs] [--key-file F] [--json]

Arguments are the action's, in the ABI's order. The signer defaults to the account the
contract requires (``jobs`` for the jobs operator's actions, the owner for ``delprotocol``,
the funder for ``payout``, owner + fund account + researcher for ``addprotocol``);
``--account NAME[@PERMISSION]`` (repeatable) replaces it. Keys come from ``--key-file`` (one
private key per line) or ``$CLUSTERJOBS_CHAIN_KEY``; on a local stack (``--stack``) the dev
chain's well-known key is used when neither is given. A rejection prints the chain's own
message as ``clusterjobs: error: ...`` and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler import chain
from scheduler.chain import ChainClient, ChainError, Signer

OPERATOR_ERRORS: tuple[type[BaseException], ...] = (ChainError,)

_ASSET = re.compile(r"^\d+(\.\d+)? [A-Z]{1,7}$")


def _name(text: str) -> str:
    if not chain.is_account_name(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid account name "
                                         "(1-12 of a-z, 1-5 and '.')")
    return text


def _time(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of µs") from None
    if not 0 < value < 2**62:
        raise argparse.ArgumentTypeError(f"{text} is not between 1 and 2^62-1 µs")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1_000_000:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text} is not a rate between 0 and 1000000")
    return value


def _asset(text: str) -> str:
    if not _ASSET.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount like '1000.0000 JOB'")
    return text


def _kind(text: str) -> str:
    if text not in ("worker", "dispatcher"):
        raise argparse.ArgumentTypeError(f"{text!r} is not 'worker' or 'dispatcher'")
    return text


def _text(text: str) -> str:
    return text


_TYPES: dict[str, Callable[[str], Any]] = {
    "name": _name, "uint64": _time, "float32": _rate, "asset": _asset, "kind": _kind,
    "string": _text,
}


@dataclass(frozen=True)
class Verb:
    """An action: its contract (``jobs`` or ``registry``), fields and default signers."""

    contract: str
    fields: tuple[tuple[str, str, str], ...]  # (field, type, help)
    signers: tuple[str, ...]  # field names whose value signs, or "@contract" for the contract
    help: str


_W = ("worker", "name", "the worker's account (an agent's eos_account)")
_D = ("dispatcher", "name", "the dispatcher's account (a Mesos master's)")
_R = ("researcher", "name", "the researcher's account")
_O = ("owner", "name", "the protocol owner's account")

VERBS: dict[str, Verb] = {
    "conntoreg": Verb("jobs", (("registry_contract", "name", "the registry contract account"),),
                      ("@contract",), "connect the jobs contract to the registry"),
    "regworker": Verb("jobs", (_W, _R), ("@contract",), "register a worker for a researcher"),
    "delworker": Verb("jobs", (_W, _R), ("@contract",),
                      "deregister a worker (refused while it has unpaid time)"),
    "regdisptch": Verb("jobs", (_D, _R), ("@contract",),
                       "register a dispatcher for a researcher"),
    "deldisptch": Verb("jobs", (_D, _R), ("@contract",),
                       "deregister a dispatcher (refused while it has unpaid time)"),
    "addprotocol": Verb("registry", (
        ("title", "string", "the protocol's title"), _O, _R,
        ("datadir", "string", "the protocol's HDFS folder, e.g. /protocols/alice"),
        ("fundaccount", "name", "the account that funds the protocol"),
        ("fund", "asset", "the protocol's budget, e.g. '1000.0000 JOB'"),
        ("tokencontract", "name", "the token contract, e.g. eosio.token"),
        ("dispatcher_pay_rate", "float32", "tokens per second of dispatcher time"),
        ("worker_pay_rate", "float32", "tokens per second of worker time"),
    ), ("owner", "fundaccount", "researcher"), "add a protocol (signed by its three parties)"),
    "delprotocol": Verb("registry", (_O, _R), ("owner",), "delete a protocol"),
    "payout": Verb("jobs", (_O, ("funder", "name", "the protocol's fund account"), _R,
                            ("contributor", "name", "the worker or dispatcher to pay"),
                            ("type", "kind", "worker or dispatcher")),
                   ("funder",), "pay a contributor's unpaid time"),
    "removejob": Verb("jobs", (_R, _W, ("time", "uint64", "the job row's time (µs)")),
                      ("@contract",), "archive the oldest job row of that time"),
    "allowtoken": Verb("jobs", (("tokencontract", "name", "the token contract to allow"),),
                       ("@contract",), "allow protocols funded on a token contract"),
    "denytoken": Verb("jobs", (("tokencontract", "name", "the token contract to deny"),),
                      ("@contract",), "stop new protocols on a token contract"),
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `chain VERB` and `contributors` to the `clusterjobs` command."""
    parser = commands.add_parser("chain", help="push one jobs/registry action",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    for name, verb in VERBS.items():
        sub = verbs.add_parser(name, help=verb.help,
                               description=f"{verb.contract}::{name}: {verb.help}.")
        for field_name, kind, text in verb.fields:
            sub.add_argument(field_name, type=_TYPES[kind], help=text)
        add_target(sub)
        sub.add_argument("--account", action="append", metavar="NAME[@PERMISSION]",
                         help="signing authority, repeatable (default: "
                              + (", ".join(s.replace("@contract", f"the {verb.contract} account")
                                           for s in verb.signers)) + ")")
        sub.add_argument("--key-file", type=Path,
                         help=f"file with the signing private key(s), one per line "
                              f"(default ${chain.KEY_ENV})")
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        sub.set_defaults(func=_run, chain_verb=name)

    from scheduler import contributors

    contributors.add_parser(commands)


def add_target(parser: argparse.ArgumentParser) -> None:
    """--nodeos / --stack and the contract accounts."""
    parser.add_argument("--nodeos", default=os.environ.get(chain.NODEOS_ENV),
                        help=f"nodeos URL (default ${chain.NODEOS_ENV}, else the stack's)")
    parser.add_argument("--stack", type=Path, default=Path(".stack"),
                        help="folder of a running local stack (default .stack/)")
    parser.add_argument("--jobs-account", type=_name, default="jobs",
                        help="account holding the jobs contract (default jobs)")
    parser.add_argument("--registry-account", type=_name, default="registry",
                        help="account holding the registry contract (default registry)")


def nodeos_url(args: argparse.Namespace) -> tuple[str, bool]:
    """(nodeos URL, whether it is a local stack's dev chain)."""
    if args.nodeos:
        return str(args.nodeos), False
    from actors.stack import orchestrator
    from actors.stack.errors import StackError

    try:
        info = orchestrator.status(args.stack)
    except StackError as exc:
        raise ChainError(f"no --nodeos given and no stack at {args.stack}: {exc}") from None
    if not info.get("nodeos"):
        raise ChainError(f"no --nodeos given and no nodeos in the stack at {args.stack}")
    return str(info["nodeos"]), True


def _authorization(verb: Verb, data: dict[str, Any], contract: str,
                   accounts: list[str] | None) -> list[tuple[str, str]]:
    if accounts:
        try:
            return [chain.parse_actor(a) for a in accounts]
        except ValueError as exc:
            raise ChainError(f"--account: {exc}") from None
    found: list[tuple[str, str]] = []
    for signer in verb.signers:
        actor = contract if signer == "@contract" else str(data[signer])
        if (actor, "active") not in found:
            found.append((actor, "active"))
    return found


def _keys(args: argparse.Namespace, dev_chain: bool) -> tuple[str, ...]:
    if args.key_file or os.environ.get(chain.KEY_ENV) or not dev_chain:
        return chain.load_keys(args.key_file)
    from actors.stack import devchain

    return (devchain.DEV_PRIVATE_KEY,)  # the local stack's accounts all use the dev key


def _run(args: argparse.Namespace) -> int:
    verb = VERBS[args.chain_verb]
    contract = args.jobs_account if verb.contract == "jobs" else args.registry_account
    data = {f: getattr(args, f) for f, _, _ in verb.fields}
    authorization = _authorization(verb, data, contract, args.account)
    url, dev_chain = nodeos_url(args)
    keys = _keys(args, dev_chain)
    client = ChainClient(url, Signer(authorization[0][0], authorization[0][1], keys))
    action = client.action(contract, args.chain_verb, data, authorization)
    try:
        answer = client.push([action])
    except ChainError as exc:
        outcome = "failed" if exc.retriable else "rejected"
        raise ChainError(f"{contract}::{args.chain_verb} {outcome}: {exc}", code=exc.code,
                         name=exc.name, retriable=exc.retriable) from None
    block = (answer.get("processed") or {}).get("block_num")
    result = {"contract": contract, "action": args.chain_verb, "data": data,
              "authorization": [f"{a}@{p}" for a, p in authorization],
              "transaction_id": answer.get("transaction_id"), "block_num": block}
    if args.json:
        json.dump(result, sys.stdout)
        print()
    else:
        print(f"{contract}::{args.chain_verb} done: transaction {result['transaction_id']} "
              f"in block {block}")
    return 0
