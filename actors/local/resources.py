"""Resource arithmetic over Mesos ``Resource`` JSON (scalars and port ranges), role ``*`` only.

A :class:`Resources` value is immutable; ``+``/``-`` return new values, and ``contains`` tells
whether a request fits. Conversion to and from the v1 JSON shape is here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

EPSILON = 1e-6  # scalar comparisons: Mesos keeps three decimal digits of fixed point

Range = tuple[int, int]


class ResourceError(ValueError):
    """A resource description that cannot be understood."""


def _normalize(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Sort and merge overlapping or adjacent inclusive ranges."""
    out: list[list[int]] = []
    for begin, end in sorted(ranges):
        if begin > end:
            raise ResourceError(f"range {begin}-{end} is empty")
        if out and begin <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([begin, end])
    return tuple((a, b) for a, b in out)


def _subtract_ranges(have: tuple[Range, ...], take: tuple[Range, ...]) -> tuple[Range, ...]:
    result = list(have)
    for tb, te in take:
        nxt: list[Range] = []
        for hb, he in result:
            if te < hb or tb > he:
                nxt.append((hb, he))
                continue
            if hb < tb:
                nxt.append((hb, tb - 1))
            if te < he:
                nxt.append((te + 1, he))
        result = nxt
    return _normalize(result)


def _ranges_contain(have: tuple[Range, ...], want: tuple[Range, ...]) -> bool:
    return all(any(hb <= wb and we <= he for hb, he in have) for wb, we in want)


@dataclass(frozen=True)
class Resources:
    """Scalars by name (cpus, mem, disk, gpus, ...) plus range resources by name (ports)."""

    scalars: Mapping[str, float] = field(default_factory=dict)
    ranges: Mapping[str, tuple[Range, ...]] = field(default_factory=dict)

    # -- parsing ------------------------------------------------------------------------------
    @classmethod
    def parse_flag(cls, text: str) -> Resources:
        """Parse the agent flag form ``cpus:4;mem:4096;ports:[31000-32000]``."""
        scalars: dict[str, float] = {}
        ranges: dict[str, tuple[Range, ...]] = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            name, sep, value = part.partition(":")
            if not sep or not name:
                raise ResourceError(f"resource {part!r} is not name:value")
            value = value.strip()
            if value.startswith("["):
                if not value.endswith("]"):
                    raise ResourceError(f"resource {part!r}: unclosed range list")
                spans = []
                for span in filter(None, (s.strip() for s in value[1:-1].split(","))):
                    lo, dash, hi = span.partition("-")
                    try:
                        spans.append((int(lo), int(hi if dash else lo)))
                    except ValueError:
                        raise ResourceError(f"resource {part!r}: bad range {span!r}") from None
                ranges[name] = _normalize(spans)
            else:
                try:
                    amount = float(value)
                except ValueError:
                    raise ResourceError(f"resource {part!r}: not a number") from None
                if amount < 0:
                    raise ResourceError(f"resource {part!r} is negative")
                scalars[name] = amount
        return cls(scalars, ranges)

    @classmethod
    def from_json(cls, items: object) -> Resources:
        """Parse a list of v1 ``Resource`` objects; raises ResourceError on anything odd."""
        if not isinstance(items, list):
            raise ResourceError("resources must be a list")
        scalars: dict[str, float] = {}
        ranges: dict[str, list[Range]] = {}
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ResourceError("each resource needs a name")
            name = item["name"]
            kind = item.get("type", "SCALAR")
            if kind == "SCALAR":
                value = (item.get("scalar") or {}).get("value")
                if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                    raise ResourceError(f"resource {name}: scalar value must be >= 0")
                if value != value or value == float("inf"):
                    raise ResourceError(f"resource {name}: scalar value must be finite")
                scalars[name] = scalars.get(name, 0.0) + float(value)
            elif kind == "RANGES":
                spans = (item.get("ranges") or {}).get("range") or []
                for span in spans:
                    try:
                        ranges.setdefault(name, []).append((int(span["begin"]), int(span["end"])))
                    except (KeyError, TypeError, ValueError):
                        raise ResourceError(f"resource {name}: bad range {span!r}") from None
            else:
                raise ResourceError(f"resource {name}: type {kind!r} is not supported")
        return cls(scalars, {k: _normalize(v) for k, v in ranges.items()})

    def to_json(self) -> list[dict]:
        """The v1 ``Resource`` list (role ``*``), scalars rounded to Mesos's 3 decimals."""
        out: list[dict] = []
        for name, value in sorted(self.scalars.items()):
            if value > EPSILON:
                out.append({"name": name, "type": "SCALAR", "role": "*",
                            "scalar": {"value": round(value, 3)}})
        for name, spans in sorted(self.ranges.items()):
            if spans:
                out.append({"name": name, "type": "RANGES", "role": "*",
                            "ranges": {"range": [{"begin": b, "end": e} for b, e in spans]}})
        return out

    def summary(self) -> dict[str, object]:
        """The /state form: ``{"cpus": 4.0, "mem": 4096.0, "ports": "[31000-32000]"}``."""
        out: dict[str, object] = {k: round(v, 3) for k, v in self.scalars.items()}
        for name, spans in self.ranges.items():
            out[name] = "[" + ", ".join(f"{b}-{e}" for b, e in spans) + "]"
        return out

    # -- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other: Resources) -> Resources:
        scalars = dict(self.scalars)
        for name, value in other.scalars.items():
            scalars[name] = scalars.get(name, 0.0) + value
        ranges = dict(self.ranges)
        for name, spans in other.ranges.items():
            ranges[name] = _normalize(ranges.get(name, ()) + spans)
        return Resources(scalars, ranges)

    def __sub__(self, other: Resources) -> Resources:
        """Remove ``other`` (callers check ``contains`` first; scalars never go below 0)."""
        scalars = dict(self.scalars)
        for name, value in other.scalars.items():
            left = scalars.get(name, 0.0) - value
            scalars[name] = 0.0 if left < EPSILON else left
        ranges = dict(self.ranges)
        for name, spans in other.ranges.items():
            ranges[name] = _subtract_ranges(ranges.get(name, ()), spans)
        return Resources(scalars, ranges)

    def contains(self, other: Resources) -> bool:
        """True when every amount and range of ``other`` is available here."""
        for name, value in other.scalars.items():
            if value > self.scalars.get(name, 0.0) + EPSILON:
                return False
        return all(_ranges_contain(self.ranges.get(name, ()), spans)
                   for name, spans in other.ranges.items())

    def empty(self) -> bool:
        """True when nothing is left worth offering."""
        return (all(v <= EPSILON for v in self.scalars.values())
                and not any(self.ranges.values()))

    def get(self, name: str) -> float:
        """A scalar amount (0 when absent)."""
        return self.scalars.get(name, 0.0)
