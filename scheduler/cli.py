"""`clusterjobs submit`: validate a job spec locally and upload it to the protocol's incoming
folder in HDFS. (The scheduler's own verbs live in their own module.)"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from actors.stack import devchain
from executor.hdfs import Hdfs, HdfsError
from scheduler import protocols
from scheduler.spec import JobSpec, SpecError, new_job_id, parse_spec

EXIT_BAD_SPEC = 2


class SubmitError(Exception):
    """`submit` cannot go on; the message is one line for the operator."""


OPERATOR_ERRORS: tuple[type[BaseException], ...] = (SubmitError, HdfsError)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the `submit` verb to the `clusterjobs` command."""
    submit = commands.add_parser(
        "submit", help="validate a job spec and upload it to its protocol's incoming folder",
        description="Validate SPEC locally (exit 2 on a bad spec, nothing uploaded), check that "
                    "the researcher has a protocol in the registry contract and that the inputs "
                    "exist, upload the spec to <datadir>/jobs/incoming/<job-id>.json and print "
                    "the job id as the last line.")
    submit.add_argument("spec", type=Path, help="the job spec (JSON); - for stdin")
    where = submit.add_argument_group("where (default: the local stack in .stack/)")
    where.add_argument("--stack", type=Path, default=None,
                       help="folder of a running local stack (default .stack/)")
    where.add_argument("--webhdfs", help="WebHDFS URL, e.g. http://namenode:9870")
    where.add_argument("--nodeos", help="nodeos URL, e.g. http://127.0.0.1:8888")
    submit.add_argument("--registry-account", default="registry",
                        help="the registry contract's account (default registry)")
    submit.add_argument("--owner", help="the protocol's owner, when several owners have a "
                                        "protocol for the researcher")
    submit.add_argument("--hdfs-user", help="HDFS user to write as (default: the researcher)")
    submit.set_defaults(func=_submit)


def _submit(args: argparse.Namespace) -> int:
    data = _read(args.spec)
    try:
        spec = parse_spec(data)
    except SpecError as err:
        return _bad_spec(args.spec, err)
    webhdfs, nodeos = _endpoints(args)
    protocol = _protocol(nodeos, spec.researcher, args.registry_account, args.owner)
    try:
        spec = parse_spec(data, datadir=protocol.datadir)
    except SpecError as err:
        return _bad_spec(args.spec, err)
    fs = Hdfs(webhdfs, args.hdfs_user or spec.researcher)
    _check_inputs(fs, spec)
    job_id = new_job_id(spec.name, time.time())
    target = f"{protocol.datadir}/jobs/incoming/{job_id}.json"
    fs.makedirs(f"{protocol.datadir}/jobs/incoming")
    fs.write_bytes(target, (json.dumps(spec.to_json(), indent=2) + "\n").encode())
    print(f"submitted {args.spec} as {target}", file=sys.stderr)
    print(job_id)
    return 0


def _bad_spec(path: Path, err: SpecError) -> int:
    print(f"clusterjobs: error: {path}: {err}", file=sys.stderr)
    return EXIT_BAD_SPEC


def _read(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SubmitError(f"cannot read {path}: {exc.strerror}") from None


def _endpoints(args: argparse.Namespace) -> tuple[str, str]:
    if args.webhdfs or args.nodeos:
        if args.stack is not None:
            raise SubmitError("give either --stack or --webhdfs and --nodeos, not both")
        if not (args.webhdfs and args.nodeos):
            raise SubmitError("--webhdfs and --nodeos go together")
        return args.webhdfs, args.nodeos
    from actors.stack import orchestrator
    from actors.stack.errors import StackError

    stack = args.stack or Path(".stack")
    try:
        info = orchestrator.status(stack)
    except StackError as exc:
        raise SubmitError(str(exc)) from None
    if not info.get("webhdfs") or not info.get("nodeos"):
        raise SubmitError(f"the stack in {stack} has no HDFS or nodeos")
    return str(info["webhdfs"]), str(info["nodeos"])


def _protocol(nodeos: str, researcher: str, registry: str,
              owner: str | None) -> protocols.Protocol:
    try:
        found = protocols.protocols_of(nodeos, researcher, registry)
    except devchain.ChainRequestError as exc:
        raise SubmitError(f"cannot read the registry contract {registry!r} at {nodeos}: "
                          f"{exc}") from None
    if owner is not None:
        found = [p for p in found if p.owner == owner]
    if not found:
        of = f" of owner {owner}" if owner else ""
        raise SubmitError(f"researcher {researcher!r} has no protocol{of} in the registry "
                          f"contract {registry!r}")
    if len({p.datadir for p in found}) > 1:
        owners = ", ".join(sorted(p.owner for p in found))
        raise SubmitError(f"researcher {researcher!r} has protocols of several owners "
                          f"({owners}) with different datadirs: choose one with --owner")
    return found[0]


def _check_inputs(fs: Hdfs, spec: JobSpec) -> None:
    for index, item in enumerate(spec.inputs):
        info = fs.status(item.hdfs)
        if info is None:
            raise SubmitError(f"inputs[{index}]: {item.hdfs} does not exist in HDFS")
        if info.get("type") != "FILE":
            raise SubmitError(f"inputs[{index}]: {item.hdfs} is a folder, not a file")
