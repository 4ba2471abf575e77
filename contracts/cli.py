"""`clusterjobs contracts build|deploy|delegate`: the jobs and registry contracts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    deploy.set_defaults(func=_deploy)

    delegate = verbs.add_parser(
        "delegate", help="let the contracts pay out of a fund account (dev-key accounts only)")
    _target(delegate)
    delegate.add_argument("--funder", required=True, help="the protocol's fundaccount")
    delegate.set_defaults(func=_delegate)


def _target(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stack", type=Path, default=Path(".stack"),
                       help="folder of a running local stack (default .stack/)")
    where.add_argument("--url", help="nodeos URL instead of the stack's")
    parser.add_argument("--jobs-account", default="jobs", help="default jobs")
    parser.add_argument("--registry-account", default="registry", help="default registry")


def _deployment(args: argparse.Namespace) -> contract_deploy.Deployment:
    url = args.url
    if not url:
        from actors.stack import orchestrator

        info = orchestrator.status(args.stack)
        url = info.get("nodeos")
        if not url:
            raise ContractsError(f"no nodeos in the stack at {args.stack}: run "
                                 f"`clusterjobs stack up --workdir {args.stack}` first")
    return contract_deploy.Deployment(str(url), args.jobs_account, args.registry_account)


def _build(args: argparse.Namespace) -> int:
    for artifact in contract_build.build(args.out):
        print(f"{artifact.name:<9} {artifact.sha256}  {artifact.wasm}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    contract_build.build()
    report = contract_deploy.deploy(_deployment(args))
    json.dump(report, sys.stdout)
    print()
    return 0


def _delegate(args: argparse.Namespace) -> int:
    target = _deployment(args)
    contract_deploy.delegate_fund(target.url, args.funder, target)
    print(f"{args.funder}@active now includes {target.jobs}@eosio.code and "
          f"{target.registry}@eosio.code")
    return 0
