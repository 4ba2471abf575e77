"""The chain edge: sign and push transactions to nodeos, read its tables and statuses.

One client per nodeos URL and signer. The signer's private key comes from a key file
(``--key-file``) or the environment (``CLUSTERJOBS_CHAIN_KEY``); it lives only in memory, is
never logged, never put in an exception, never written anywhere (``Signer``'s repr hides it).

Every failure is one :class:`ChainError` carrying nodeos's own message and error code, and
whether it is *retriable* (the network, an expired or duplicate transaction, a subjective
resource limit: trying again later may succeed) or a *permanent* rejection (an assertion of
the contract, a missing authority, a bad argument: the same transaction will fail again).

The transaction id is the sha256 of the packed transaction (signatures excluded), so it is
known before sending (:meth:`ChainClient.sign`): the pusher journals it first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("clusterjobs.chain")

#: Environment variable holding the signer's private key(s) (comma-separated for several).
KEY_ENV = "CLUSTERJOBS_CHAIN_KEY"
#: Environment variable naming the nodeos URL when no flag gives it.
NODEOS_ENV = "CLUSTERJOBS_NODEOS"

DUPLICATE = 3040008  # tx_duplicate: nodeos already knows this transaction id
EXPIRED = 3040005  # expired_tx_exception
# Codes after which the same request may succeed later: expiry and reference-block trouble
# (sign again), a duplicate (it is already in), and subjective/transient resource limits.
RETRIABLE_CODES = frozenset({
    3040005,  # expired_tx_exception
    3040007,  # invalid_ref_block_exception
    3040008,  # tx_duplicate
    3080002,  # tx_net_usage_exceeded (account's NET refills)
    3080003,  # block_net_usage_exceeded
    3080004,  # tx_cpu_usage_exceeded (account's CPU refills)
    3080005,  # block_cpu_usage_exceeded
    3080006,  # deadline_exception
    3080007,  # greylist_net_usage_exceeded
    3080008,  # greylist_cpu_usage_exceeded
    3081001,  # leeway_deadline_exception
    3170000,  # producer_exception
    3170001,  # producer_priv_key_not_found
    3170004,  # producer_not_in_schedule... (not producing now)
})

_NAME = re.compile(r"^[a-z1-5.]{0,12}[a-j1-5.]?$")


class ChainError(Exception):
    """A chain request failed. ``str()`` is nodeos's own one-line message.

    ``code`` is nodeos's error code (0 when there is none, e.g. the network), ``name`` its
    error name, ``retriable`` whether the same request may succeed later.
    """

    def __init__(self, message: str, *, code: int = 0, name: str = "",
                 retriable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.retriable = retriable

    @property
    def duplicate(self) -> bool:
        """nodeos already has this transaction (it was sent before and not yet expired)."""
        return self.code == DUPLICATE


def is_account_name(text: str) -> bool:
    """True for a valid Antelope account name (1-12 of a-z, 1-5 and '.', no trailing '.')."""
    return bool(text) and len(text) <= 12 and bool(_NAME.match(text)) and not text.endswith(".")


@dataclass(frozen=True)
class Signer:
    """Who signs: ``account@permission`` authorizes actions; ``keys`` sign (hidden in repr)."""

    account: str
    permission: str = "active"
    keys: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def authority(self) -> dict[str, str]:
        return {"actor": self.account, "permission": self.permission}


def parse_actor(text: str) -> tuple[str, str]:
    """``name`` or ``name@permission`` → (name, permission); ValueError naming the problem."""
    account, _, permission = text.partition("@")
    permission = permission or "active"
    if not is_account_name(account):
        raise ValueError(f"{account!r} is not a valid account name")
    if not is_account_name(permission):
        raise ValueError(f"{permission!r} is not a valid permission name")
    return account, permission


def load_keys(key_file: Path | str | None = None,
              environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The private keys from ``key_file`` (one per line, '#' comments) or ``$CLUSTERJOBS_CHAIN_KEY``
    (comma-separated). Raises ChainError (without the key's text) when none is usable."""
    env = os.environ if environ is None else environ
    if key_file:
        path = Path(key_file)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ChainError(f"key file {path}: {exc.strerror or exc}") from None
        keys = [line.strip() for line in text.splitlines()
                if line.strip() and not line.strip().startswith("#")]
        origin = f"key file {path}"
    else:
        keys = [k.strip() for k in env.get(KEY_ENV, "").split(",") if k.strip()]
        origin = f"${KEY_ENV}"
    if not keys:
        raise ChainError(f"no signing key: give --key-file or set {KEY_ENV}")
    for number, key in enumerate(keys, 1):
        if public_key(key) is None:
            raise ChainError(f"{origin}: key {number} is not a valid private key")
    return tuple(keys)


def public_key(private_key: str) -> str | None:
    """The public key of ``private_key``, None when it is not a private key."""
    from pyeoskit.chainnative import ChainNative

    try:
        return str(ChainNative.get_public_key(private_key))
    except Exception:  # pyeoskit raises a bare Exception carrying no key text we print
        return None


def parse_time(text: str) -> float:
    """nodeos's UTC timestamps ("2026-11-26T11:41:24.000") → Unix seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Action:
    """One action: ``contract::name(data)`` authorized by ``authorization`` (actor, permission)."""

    contract: str
    name: str
    data: dict[str, Any]
    authorization: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SignedTransaction:
    """A signed transaction ready to send; ``id`` is known before sending."""

    id: str
    expiration: int  # Unix seconds
    body: dict[str, Any]  # push_transaction's request: signatures, compression, packed_trx


def transaction_id(packed_trx_hex: str) -> str:
    """The id nodeos gives a transaction: sha256 of its packed form."""
    return hashlib.sha256(bytes.fromhex(packed_trx_hex)).hexdigest()


def _classify(path: str, status: int | None, payload: object, text: str) -> ChainError:
    """A ChainError from nodeos's answer (or the lack of one)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        # No nodeos error object: a proxy, an overloaded or restarting node, a wrong URL.
        retriable = status is None or status >= 500 or status == 429
        return ChainError(f"{path}: HTTP {status}: {' '.join(text.split())[:300]}",
                          retriable=retriable)
    code = int(error.get("code") or 0)
    details = error.get("details") or []
    if details and isinstance(details[0], dict) and details[0].get("message"):
        message = " ".join(str(details[0]["message"]).split())
    else:
        message = str(error.get("what") or "unknown error")
    return ChainError(message, code=code, name=str(error.get("name") or ""),
                      retriable=code in RETRIABLE_CODES)


class ChainClient:
    """nodeos at ``url``, signing as ``signer`` (optional for reads)."""

    def __init__(self, url: str, signer: Signer | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.signer = signer
        self.timeout = timeout
        self._api: Any = None  # pyeoskit's client: its own ABI cache and packing context
        self._chain_id: str | None = None
        self._abis: set[str] = set()  # contracts whose ABI pyeoskit has (fetched by us)

    def forget_abis(self) -> None:
        """Fetch the ABIs again before the next signature (after a contract's redeploy)."""
        self._abis.clear()

    # -------------------------------------------------------------- reads

    def rpc(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST ``body`` to ``url + path``; the decoded answer, or ChainError."""
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body or {}).encode(),
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                payload = json.loads(text)
            except ValueError:
                payload = None
            raise _classify(path, exc.code, payload, text) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ChainError(f"cannot reach nodeos at {self.url}: {reason}",
                             retriable=True) from None

    def info(self) -> dict[str, Any]:
        """get_info: head and last irreversible block, chain id."""
        return dict(self.rpc("/v1/chain/get_info"))

    def transaction_status(self, tx_id: str) -> dict[str, Any]:
        """get_transaction_status (nodeos with --transaction-finality-status-max-storage-size-gb):
        ``state`` is LOCALLY_APPLIED, IN_BLOCK, IRREVERSIBLE, FORKED_OUT, FAILED or UNKNOWN."""
        return dict(self.rpc("/v1/chain/get_transaction_status", {"id": tx_id}))

    def block(self, number: int) -> dict[str, Any]:
        """get_block by number."""
        return dict(self.rpc("/v1/chain/get_block", {"block_num_or_id": number}))

    def account(self, name: str) -> dict[str, Any]:
        """get_account (permissions, ram_usage, ...)."""
        return dict(self.rpc("/v1/chain/get_account", {"account_name": name}))

    def rows(self, code: str, scope: str, table: str, limit: int = 500) -> list[dict[str, Any]]:
        """Every row of ``code``'s ``table`` in ``scope``, all pages."""
        found: list[dict[str, Any]] = []
        lower = ""
        while True:
            answer = self.rpc("/v1/chain/get_table_rows",
                              {"code": code, "scope": scope, "table": table, "json": True,
                               "limit": limit, "lower_bound": lower})
            found += answer["rows"]
            if not answer.get("more"):
                return found
            lower = str(answer.get("next_key") or "")
            if not lower:
                return found

    def scopes(self, code: str, table: str) -> list[str]:
        """The scopes in which ``code``'s ``table`` has rows."""
        found: list[str] = []
        lower = ""
        while True:
            answer = self.rpc("/v1/chain/get_table_by_scope",
                              {"code": code, "table": table, "limit": 500, "lower_bound": lower})
            found += [str(r["scope"]) for r in answer["rows"]]
            lower = str(answer.get("more") or "")
            if not lower:
                return found

    def balances(self, account: str, token: str) -> list[str]:
        """``account``'s balances on ``token`` ("12.5000 JOB", ...)."""
        return [str(x) for x in self.rpc("/v1/chain/get_currency_balance",
                                         {"code": token, "account": account})]

    def action_fields(self, contract: str, action: str) -> list[str]:
        """The field names of ``contract::action`` in the chain's ABI ([] if no such action)."""
        abi = self.rpc("/v1/chain/get_abi", {"account_name": contract}).get("abi") or {}
        types = {a["name"]: a["type"] for a in abi.get("actions", [])}
        structs = {s["name"]: s for s in abi.get("structs", [])}
        struct = structs.get(types.get(action, ""))
        return [f["name"] for f in struct["fields"]] if struct else []

    # -------------------------------------------------------------- writes

    def sign(self, actions: Sequence[Action], expiration: int,
             ref_block_id: str | None = None) -> SignedTransaction:
        """Pack and sign ``actions`` as one transaction expiring at ``expiration`` (Unix s).

        ``ref_block_id`` (TaPoS) defaults to the last irreversible block. Raises ChainError
        (e.g. an argument the ABI cannot pack), never with the key in it.
        """
        if self.signer is None or not self.signer.keys:
            raise ChainError("no signing key: give --key-file or set " + KEY_ENV)
        from pyeoskit.transaction import Transaction

        api = self._pyeoskit()
        if ref_block_id is None or self._chain_id is None:
            info = self.info()
            self._chain_id = str(info["chain_id"])
            ref_block_id = ref_block_id or str(info["last_irreversible_block_id"])
        for contract in sorted({a.contract for a in actions} - self._abis):
            abi = self.rpc("/v1/chain/get_abi", {"account_name": contract}).get("abi")
            if not abi:
                raise ChainError(f"account {contract} has no contract (no ABI)")
            api.set_abi(contract, json.dumps(abi))
            self._abis.add(contract)
        tx = None
        try:
            tx = Transaction(api.chain_index, int(expiration), ref_block_id, self._chain_id)
            for action in actions:
                auth = [{actor: permission} for actor, permission in action.authorization]
                tx.add_action(action.contract, action.name, json.dumps(action.data),
                              json.dumps(auth))
            for key in self.signer.keys:
                tx.sign_by_private_key(key)
            body = tx.pack(False, True)
        except ChainError:
            raise
        except Exception as exc:  # pyeoskit: bare Exception with the packer's reason
            raise ChainError(f"cannot build the transaction: {' '.join(str(exc).split())}"
                             ) from None
        finally:
            if tx is not None:
                tx.free()
        return SignedTransaction(transaction_id(body["packed_trx"]), int(expiration), body)

    def send(self, tx: SignedTransaction) -> dict[str, Any]:
        """push_transaction; nodeos's answer (``transaction_id``, ``processed``)."""
        return dict(self.rpc("/v1/chain/push_transaction", tx.body))

    def push(self, actions: Sequence[Action], ttl: int = 60) -> dict[str, Any]:
        """Sign and send ``actions`` in one transaction expiring in ``ttl`` seconds."""
        info = self.info()
        self._chain_id = str(info["chain_id"])
        head = parse_time(str(info["head_block_time"]))
        tx = self.sign(actions, int(head) + ttl, str(info["last_irreversible_block_id"]))
        return self.send(tx)

    def action(self, contract: str, name: str, data: dict[str, Any],
               authorization: Iterable[tuple[str, str]] | None = None) -> Action:
        """An action authorized by ``authorization`` (default: the signer)."""
        if authorization is None:
            if self.signer is None:
                raise ChainError("no signer account")
            authorization = [(self.signer.account, self.signer.permission)]
        return Action(contract, name, data, tuple(authorization))

    def _pyeoskit(self) -> Any:
        if self._api is None:
            from pyeoskit.chainapi_sync import ChainApi

            # pyeoskit logs at INFO on every request; it never sees our keys but is noisy.
            logging.getLogger("pyeoskit").setLevel(logging.WARNING)
            self._api = ChainApi(self.url)
        return self._api
