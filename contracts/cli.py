"""`clusterjobs contracts build|deploy|delegate`: the jobs and registry contracts."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path

from actors import names
from actors.stack import devchain
from contracts import build as contract_build
from contracts import deploy as contract_deploy
from contracts.errors import ContractsError

OPERATOR_ERRORS: tuple[type[BaseException], ...] = (ContractsError,)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the `contracts` verbs to the `clusterjobs` command."""
    parser = commands.add_parser("contracts", help="build and deploy the jobs/registry contracts")
    verbs = parser.add_subparsers(dest="verb", required=True)

    build = verbs.add_parser("build", help="compile both contracts to contracts/build/")
    build.add_argument("--out", type=Path, default=contract_build.BUILD_DIR,
                       help="output folder (default contracts/build/)")
    build.set_defaults(func=_build)

    deploy = verbs.add_parser("deploy", help="create the accounts, set code and ABI, connect")
    _target(deploy)
    deploy.add_argument("--pusher-key", default=devchain.DEV_PUBLIC_KEY,
                        help="public key of <jobs>@pusher, the scheduler's permission linked "
                             "to newjob, updatedptch and removejob (default the dev key)")
    deploy.set_defaults(func=_deploy)

    delegate = verbs.add_parser(
        "delegate", help="give a key the fund account's permission cjpay, linked to "
                         "jobs::payout only (dev-key fund accounts only)")
    _target(delegate)
    delegate.add_argument("--funder", required=True, type=names.account_name_arg,
                          help="the protocol's fundaccount: an existing account whose key is "
                               "the dev key")
    delegate.add_argument("--key", default=devchain.DEV_PUBLIC_KEY,
                          help="public key of the scheduler (default the dev key)")
    delegate.set_defaults(func=_delegate)

    deposit = verbs.add_parser(
        "deposit", help="deposit a protocol's fund into the registry's escrow (a token "
                        "transfer whose memo is the researcher; dev-key fund accounts only)")
    _target(deposit)
    deposit.add_argument("--funder", required=True, type=names.account_name_arg,
                         help="the protocol's fundaccount")
    deposit.add_argument("--researcher", required=True, type=names.account_name_arg,
                         help="the protocol's researcher")
    deposit.add_argument("--quantity", required=True, help="e.g. '100.0000 JOB'")
    deposit.add_argument("--token", default=devchain.TOKEN_CONTRACT,
                         help=f"the protocol's token contract (default {devchain.TOKEN_CONTRACT})")
    deposit.set_defaults(func=_deposit)


def _target(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stack", type=Path, default=Path(".stack"),
                       help="folder of a running local stack (default .stack/)")
    where.add_argument("--url", type=_http_url,
                       help="nodeos URL (http://host:port) instead of the stack's")
    parser.add_argument("--jobs-account", default="jobs", type=names.account_name_arg,
                        help="account that holds the jobs contract (default jobs)")
    parser.add_argument("--registry-account", default="registry", type=names.account_name_arg,
                        help="account that holds the registry contract (default registry)")


def _http_url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s)://host:port URL: {text!r}")
    return text


def _deployment(args: argparse.Namespace) -> contract_deploy.Deployment:
    url = args.url
    if not url:
        from actors.stack import orchestrator

        info = orchestrator.status(args.stack)
        url = info.get("nodeos")
        if not url:
            raise ContractsError(f"no nodeos in the stack at {args.stack}: run "
                                 f"`clusterjobs stack up --workdir {args.stack}` first")
    contract_deploy.require_chain(str(url))
    return contract_deploy.Deployment(str(url), args.jobs_account, args.registry_account)


def _build(args: argparse.Namespace) -> int:
    for artifact in contract_build.build(args.out):
        print(f"{artifact.name:<9} {artifact.sha256}  {artifact.wasm}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    target = _deployment(args)  # a wrong target fails before anything is built
    contract_build.build()
    report = contract_deploy.deploy(target, pusher_key=args.pusher_key)
    json.dump(report, sys.stdout)
    print()
    return 0


def _delegate(args: argparse.Namespace) -> int:
    target = _deployment(args)
    contract_deploy.delegate_fund(target.url, args.funder, target, key=args.key)
    print(f"{args.funder}@{contract_deploy.PAYOUT_PERMISSION} holds {args.key} and is linked "
          f"to {target.jobs}::payout only")
    return 0


def _deposit(args: argparse.Namespace) -> int:
    target = _deployment(args)
    contract_deploy.deposit(target.url, args.funder, args.researcher, args.quantity, target,
                            token=args.token)
    print(f"deposited {args.quantity} from {args.funder} into the protocol of "
          f"{args.researcher} on {target.registry}")
    return 0
