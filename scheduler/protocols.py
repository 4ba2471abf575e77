"""Research protocols as the registry contract records them (read-only chain look-ups).

The registry's ``protocol`` table is scoped by owner and keyed by researcher, so finding a
researcher's protocol means asking every owner scope (few on any real chain)."""

from __future__ import annotations

from dataclasses import dataclass

from actors.stack import devchain


@dataclass(frozen=True)
class Protocol:
    """One row of ``registry::protocol``."""

    owner: str
    researcher: str
    datadir: str
    fundaccount: str
    title: str


def owners(url: str, registry: str = "registry") -> list[str]:
    """Every owner that has a protocol (the scopes of the ``protocol`` table)."""
    found: list[str] = []
    lower = ""
    while True:
        answer = devchain.rpc(url, "/v1/chain/get_table_by_scope",
                              {"code": registry, "table": "protocol", "lower_bound": lower,
                               "limit": 500})
        found += [row["scope"] for row in answer.get("rows", []) if row.get("count", 1) > 0]
        lower = answer.get("more") or ""
        if not lower:
            return found


def protocols_of(url: str, researcher: str, registry: str = "registry") -> list[Protocol]:
    """The protocols of ``researcher`` (one per owner that registered one)."""
    found = []
    for owner in owners(url, registry):
        rows = devchain.rpc(url, "/v1/chain/get_table_rows", {
            "code": registry, "scope": owner, "table": "protocol", "json": True,
            "key_type": "name", "lower_bound": researcher, "upper_bound": researcher,
            "limit": 1}).get("rows") or []
        for row in rows:
            if row.get("researcher") == researcher:
                found.append(Protocol(owner, researcher, str(row["datadir"]),
                                      str(row["fundaccount"]), str(row["title"])))
    return found
