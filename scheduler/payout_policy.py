"""When to pay contributors (pure): every N seconds, or as soon as a contributor's unpaid time
for a researcher passes a threshold. The edge (scheduler/payout_service.py) reads the chain's
rows, asks :func:`due`, and pushes ``jobs::payout(owner, funder, researcher, contributor, type)``
signed by the funder's delegated permission (``funder@cjpay``, linked to ``jobs::payout`` only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from contracts.pay import compute_pay


@dataclass(frozen=True)
class Policy:
    """``every_s``: pay each contributor at most this often (0: never by time);
    ``threshold_us``: pay at once when unpaid time reaches it (0: never by amount)."""

    every_s: float = 0.0
    threshold_us: int = 0

    def __post_init__(self) -> None:
        if self.every_s < 0 or self.threshold_us < 0:
            raise ValueError("payout interval and threshold must not be negative")

    @property
    def enabled(self) -> bool:
        return self.every_s > 0 or self.threshold_us > 0


@dataclass(frozen=True)
class Owed:
    """A contributor's row for a researcher (the jobs contract's worker/dispatcher table)."""

    kind: str  # "worker" or "dispatcher"
    account: str
    researcher: str
    total_us: int
    unpaid_us: int


@dataclass(frozen=True)
class Terms:
    """The researcher's protocol: who pays, and the stored rates (see contracts/pay.py)."""

    owner: str
    funder: str
    worker_rate: int
    dispatcher_rate: int
    precision: int = 4  # of the protocol's token (its fund's symbol)
    symbol: str = ""


@dataclass(frozen=True)
class Payout:
    owner: str
    funder: str
    researcher: str
    contributor: str
    kind: str
    amount: int  # smallest token units the contract will transfer
    precision: int = 4
    symbol: str = ""

    @property
    def tokens(self) -> float:
        """The amount in whole tokens (for metrics)."""
        return self.amount / 10**self.precision

    @property
    def data(self) -> dict[str, str]:
        """jobs::payout's arguments."""
        return {"owner": self.owner, "funder": self.funder, "researcher": self.researcher,
                "contributor": self.contributor, "type": self.kind}


def due(policy: Policy, owed: Iterable[Owed], terms: Mapping[str, Terms],
        last_paid: Mapping[tuple[str, str, str], float], now: float) -> list[Payout]:
    """The payouts to push at ``now``. ``last_paid``: (kind, account, researcher) → when it was
    last paid (absent: never). Rows worth less than one token unit wait for more time (the
    contract would settle them for nothing), as do researchers without a protocol."""
    if not policy.enabled:
        return []
    found = []
    for row in owed:
        protocol = terms.get(row.researcher)
        if row.unpaid_us <= 0 or protocol is None:
            continue
        rate = protocol.worker_rate if row.kind == "worker" else protocol.dispatcher_rate
        amount = compute_pay(row.total_us, row.unpaid_us, rate)
        if amount <= 0:
            continue
        by_amount = policy.threshold_us > 0 and row.unpaid_us >= policy.threshold_us
        last = last_paid.get((row.kind, row.account, row.researcher))
        by_time = policy.every_s > 0 and (last is None or now - last >= policy.every_s)
        if by_amount or by_time:
            found.append(Payout(protocol.owner, protocol.funder, row.researcher, row.account,
                                row.kind, amount, protocol.precision, protocol.symbol))
    return found
