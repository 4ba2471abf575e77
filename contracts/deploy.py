"""Deploy the jobs and registry contracts to a chain and connect them to each other.

Steps, each skipped when the chain already shows its effect (so a second deploy is quick):
create the accounts, set code (unless the code hash is already the built wasm's) and ABI,
add ``<jobs>@eosio.code`` to the jobs account's ``active`` (it sends the inline
``registry::payout``) and ``<registry>@eosio.code`` to the registry's (it pays out of its
escrow with ``eosio.token::transfer``), create ``<jobs>@pusher`` linked to ``newjob``,
``updatedptch`` and ``removejob`` only (the scheduler's key goes there, never into
``active``), ``conntoreg`` and ``conntojobs``, and allow the system token contract
(``allowtoken``).

No fund account delegates its ``active`` any more: a protocol's fund is deposited into the
registry (:func:`deposit`). :func:`delegate_fund` gives the scheduler's key a permission of
the fund account linked to ``jobs::payout`` only; see contracts/README.md.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.stack import devchain
from contracts import build as contract_build
from contracts.errors import ContractsError
from contracts.serialize import name_value

log = logging.getLogger("clusterjobs.contracts")


@dataclass(frozen=True)
class Deployment:
    """Where the contracts live."""

    url: str
    jobs: str = "jobs"
    registry: str = "registry"


def code_permission(authority: dict[str, Any], account: str) -> dict[str, Any] | None:
    """``authority`` (as get_account shows it) with ``account@eosio.code`` added, or None when
    it is already there. Keys and accounts stay sorted, as nodeos requires."""
    accounts = [dict(a) for a in authority.get("accounts", [])]
    wanted = {"actor": account, "permission": "eosio.code"}
    if any(a["permission"] == wanted for a in accounts):
        return None
    accounts.append({"permission": wanted, "weight": int(authority.get("threshold", 1))})
    accounts.sort(key=lambda a: (name_value(a["permission"]["actor"]),
                                 name_value(a["permission"]["permission"])))
    return {
        "threshold": int(authority.get("threshold", 1)),
        "keys": [{"key": k["key"], "weight": int(k["weight"])} for k in authority.get("keys", [])],
        "accounts": accounts,
        "waits": [dict(w) for w in authority.get("waits", [])],
    }


def grant_code(api: Any, url: str, owner: str, contract: str) -> bool:
    """Add ``contract@eosio.code`` to ``owner``'s active permission; True when it changed."""
    info = devchain.rpc(url, "/v1/chain/get_account", {"account_name": owner})
    active = next(p for p in info["permissions"] if p["perm_name"] == "active")
    authority = code_permission(active["required_auth"], contract)
    if authority is None:
        return False
    _push(api, "eosio", "updateauth",
          {"account": owner, "permission": "active", "parent": "owner", "auth": authority},
          {owner: "owner"})
    log.info("granted eosio.code", extra={"account": owner, "contract": contract})
    return True


def require_chain(url: str) -> None:
    """Fail in one line unless a nodeos answers at ``url``."""
    try:
        devchain.rpc(url, "/v1/chain/get_info", timeout=5)
    except devchain.ChainRequestError as exc:
        text = str(exc)
        raise ContractsError(text if text.startswith("cannot reach") else
                             f"no chain at {url}: {text}") from None


def require_account(url: str, account: str) -> None:
    """Fail in one line unless ``account`` exists on the chain at ``url``."""
    try:
        devchain.rpc(url, "/v1/chain/get_account", {"account_name": account})
    except devchain.ChainRequestError as exc:
        if exc.code == devchain.ACCOUNT_QUERY_EXCEPTION:
            raise ContractsError(f"account {account} does not exist on the chain at "
                                 f"{url}") from None
        raise ContractsError(str(exc)) from None


PUSHER_PERMISSION = "pusher"
PUSHER_ACTIONS = ("newjob", "updatedptch", "removejob")
PAYOUT_PERMISSION = "cjpay"


def key_authority(key: str) -> dict[str, Any]:
    """An authority of one public key."""
    return {"threshold": 1, "keys": [{"key": key, "weight": 1}], "accounts": [], "waits": []}


def _permissions(url: str, account: str) -> dict[str, dict]:
    info = devchain.rpc(url, "/v1/chain/get_account", {"account_name": account})
    return {p["perm_name"]: p for p in info["permissions"]}


def ensure_linked_permission(api: Any, url: str, account: str, permission: str, key: str,
                             code: str, actions: tuple[str, ...]) -> bool:
    """Give ``account`` a permission ``permission`` (child of ``active``) holding only ``key``,
    linked to ``code::action`` for each of ``actions``; True when anything changed."""
    current = _permissions(url, account).get(permission)
    changed = False
    wanted = key_authority(key)
    have = current and current["required_auth"]
    if not have or [k["key"] for k in have["keys"]] != [key] or have["accounts"]:
        _push(api, "eosio", "updateauth", {"account": account, "permission": permission,
                                           "parent": "active", "auth": wanted},
              {account: "active"})
        changed = True
    linked = {(link["account"], link["action"])
              for link in (current or {}).get("linked_actions", [])}
    for action in actions:
        if (code, action) not in linked:
            _push(api, "eosio", "linkauth", {"account": account, "code": code, "type": action,
                                             "requirement": permission}, {account: "active"})
            changed = True
    if changed:
        log.info("linked permission", extra={"account": account, "permission": permission,
                                             "code": code, "actions": ",".join(actions)})
    return changed


def delegate_fund(url: str, funder: str, target: Deployment,
                  key: str = devchain.DEV_PUBLIC_KEY) -> bool:
    """Give ``key`` (the scheduler's) the permission ``<funder>@cjpay``, linked to
    ``<jobs>::payout`` only: it can trigger payouts of what is owed and nothing else. Signed
    with ``funder``'s active key (dev-key accounts only). True when anything changed."""
    for account in (funder, target.jobs):
        require_account(url, account)
    api = devchain.connect(url)
    try:
        return ensure_linked_permission(api, url, funder, PAYOUT_PERMISSION, key, target.jobs,
                                        ("payout",))
    except devchain.ChainRequestError as exc:
        raise ContractsError(str(exc)) from None


def deposit(url: str, funder: str, researcher: str, quantity: str,
            target: Deployment, token: str = devchain.TOKEN_CONTRACT) -> Any:
    """Deposit ``quantity`` from ``funder`` into the escrow of ``researcher``'s protocol: a
    token transfer to the registry whose memo is the researcher."""
    for account in (funder, target.registry):
        require_account(url, account)
    api = devchain.connect(url)
    return _push(api, token, "transfer", {"from": funder, "to": target.registry,
                                          "quantity": quantity, "memo": researcher},
                 {funder: "active"})


def _push(api: Any, contract: str, action: str, args: dict, auth: dict[str, str]) -> Any:
    try:
        return api.push_action(contract, action, args, auth)
    except Exception as exc:  # pyeoskit raises bare ChainException/Exception
        raise ContractsError(f"{contract}::{action} failed: "
                             f"{devchain.error_message(exc)}") from None


def _set_code(api: Any, url: str, account: str, wasm: Path, abi: Path) -> bool:
    code = wasm.read_bytes()
    if devchain.code_hash(url, account) == hashlib.sha256(code).hexdigest():
        # Same code: refresh only the ABI, when it differs (pyeoskit's deploy_abi is broken in
        # 1.1.12, and an identical setabi in the same second is a duplicate transaction).
        packed = api.pack_abi(api.chain_index, abi.read_text())
        raw = devchain.rpc(url, "/v1/chain/get_raw_abi", {"account_name": account})
        if base64.b64decode(raw.get("abi") or "") == packed:
            return False
        _push(api, "eosio", "setabi", {"account": account, "abi": packed.hex()},
              {account: "active"})
        api.set_abi(account, abi.read_text())
        return False
    try:
        devchain.deploy_contract(account, wasm, abi)
    except Exception as exc:
        raise ContractsError(f"setcode on {account} failed: "
                             f"{devchain.error_message(exc)}") from None
    return True


def deploy(target: Deployment, build_dir: Path = contract_build.BUILD_DIR,
           pusher_key: str = devchain.DEV_PUBLIC_KEY) -> dict[str, Any]:
    """Build if needed, then deploy and connect both contracts; ``pusher_key`` (the
    scheduler's public key) gets ``<jobs>@pusher``. Returns what was done."""
    wasm = {name: build_dir / f"{name}.wasm" for name in contract_build.CONTRACTS}
    if not all(p.exists() for p in wasm.values()):
        contract_build.build(build_dir)
    try:
        api = devchain.connect(target.url)
        accounts = {"jobs": target.jobs, "registry": target.registry}
        report: dict[str, Any] = {"url": target.url, **accounts, "created": [], "code_set": []}
        for name, account in accounts.items():
            if devchain.ensure_account(account):
                report["created"].append(account)
            if _set_code(api, target.url, account, wasm[name], build_dir / f"{name}.abi"):
                report["code_set"].append(account)
        report["eosio_code"] = grant_code(api, target.url, target.jobs, target.jobs)
        report["registry_eosio_code"] = grant_code(api, target.url, target.registry,
                                                   target.registry)
        report["pusher"] = ensure_linked_permission(api, target.url, target.jobs,
                                                    PUSHER_PERMISSION, pusher_key, target.jobs,
                                                    PUSHER_ACTIONS)
        reg = devchain.rpc(target.url, "/v1/chain/get_table_rows",
                           {"code": target.jobs, "scope": target.jobs, "table": "reg",
                            "json": True})["rows"]
        if not reg or reg[0]["registry_contract"] != target.registry:
            _push(api, target.jobs, "conntoreg", {"registry_contract": target.registry},
                  {target.jobs: "active"})
        config = devchain.rpc(target.url, "/v1/chain/get_table_rows",
                              {"code": target.registry, "scope": target.registry,
                               "table": "config", "json": True})["rows"]
        if not config or config[0]["jobs_contract"] != target.jobs:
            _push(api, target.registry, "conntojobs", {"jobs_contract": target.jobs},
                  {target.registry: "active"})
        tokens = devchain.rpc(target.url, "/v1/chain/get_table_rows",
                              {"code": target.jobs, "scope": target.jobs, "table": "token",
                               "json": True, "limit": 100})["rows"]
        report["token_allowed"] = devchain.TOKEN_CONTRACT not in {t["contract"] for t in tokens}
        if report["token_allowed"]:
            _push(api, target.jobs, "allowtoken", {"tokencontract": devchain.TOKEN_CONTRACT},
                  {target.jobs: "active"})
    except devchain.ChainRequestError as exc:
        raise ContractsError(str(exc)) from None
    log.info("contracts deployed", extra={"jobs": target.jobs, "registry": target.registry,
                                          "accounts_created": ",".join(report["created"]),
                                          "code_set": ",".join(report["code_set"])})
    return report
