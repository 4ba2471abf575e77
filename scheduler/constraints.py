"""Marathon-style placement constraints, compiled once and checked by :mod:`scheduler.placement`.

A constraint is ``[field, operator, value]`` from a job spec. ``field`` names an agent attribute
(``eos_account``, ``rack``, ...) or ``hostname`` (the agent's host name). The operators, as
Marathon defines them:

- ``LIKE regex``: the field's value matches the regex (whole value); an agent without the field
  does not match.
- ``UNLIKE regex``: the field's value does not match the regex; an agent without the field
  matches (the only operator for which a missing field is fine, as in Marathon).
- ``UNIQUE``: no two tasks of the job on the same value of the field.
- ``CLUSTER value``: only agents whose field equals ``value``; ``CLUSTER`` without a value: all
  tasks of the job on one value of the field, the value of its first placed task.
- ``MAX_PER n``: at most ``n`` tasks of the job per value of the field.

Everything here is pure; a bad constraint raises :class:`ConstraintError` with a one-line reason
that placement reports for the task instead of placing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPERATORS = ("LIKE", "UNLIKE", "UNIQUE", "CLUSTER", "MAX_PER")
HOSTNAME = "hostname"


class ConstraintError(ValueError):
    """A constraint that cannot be evaluated; ``str(err)`` is one line naming it."""


@dataclass(frozen=True)
class Constraint:
    """One checked constraint. ``pattern`` is set for LIKE/UNLIKE; ``limit`` for UNIQUE (1)
    and MAX_PER (n): at most that many of the job's tasks per value of the field."""

    field: str
    operator: str
    value: str | None
    pattern: re.Pattern[str] | None = None
    limit: int | None = None
    pinned: bool = False  # a CLUSTER whose value the job's placed tasks decided

    @property
    def counted(self) -> bool:
        """UNIQUE or MAX_PER: the answer depends on how many of the job's tasks are where."""
        return self.limit is not None

    def describe(self) -> str:
        """``OPERATOR field [value]`` for reasons."""
        text = f"{self.operator} {self.field}"
        if self.pinned:
            return f"{text} (the job's {self.value!r})"
        return text if self.value is None else f"{text} {self.value!r}"


def _describe_raw(raw: object) -> str:
    if isinstance(raw, tuple | list) and raw and all(isinstance(p, str | None) for p in raw):
        return " ".join(repr(p) if p is not None else "null" for p in raw)
    return repr(raw)


def compile_constraint(raw: object) -> Constraint:
    """Check one ``(field, operator, value)`` triple; raises ConstraintError on a bad one."""
    if not isinstance(raw, tuple | list) or len(raw) not in (2, 3):
        raise ConstraintError(f"constraint {_describe_raw(raw)}: expected [field, operator, value]")
    field, operator = raw[0], raw[1]
    value = raw[2] if len(raw) == 3 else None
    where = f"constraint {_describe_raw(raw)}"
    if not isinstance(field, str) or not field:
        raise ConstraintError(f"{where}: field must be a non-empty string")
    if operator not in OPERATORS:
        raise ConstraintError(f"{where}: unknown operator (expected one of {', '.join(OPERATORS)})")
    if value is not None and not isinstance(value, str):
        raise ConstraintError(f"{where}: value must be a string or null")
    if value == "":
        value = None
    if operator in ("LIKE", "UNLIKE"):
        if value is None:
            raise ConstraintError(f"{where}: {operator} needs a regex value")
        try:
            pattern = re.compile(value)
        except re.error as err:
            raise ConstraintError(f"{where}: bad regex: {err}") from None
        return Constraint(field, operator, value, pattern=pattern)
    if operator == "UNIQUE":
        if value is not None:
            raise ConstraintError(f"{where}: UNIQUE takes no value")
        return Constraint(field, operator, None, limit=1)
    if operator == "MAX_PER":
        if value is None or not value.isdigit() or int(value) < 1:
            raise ConstraintError(f"{where}: MAX_PER needs a whole number >= 1 as value")
        return Constraint(field, operator, value, limit=int(value))
    return Constraint(field, operator, value)


def compile_constraints(raw: tuple | list) -> tuple[Constraint, ...]:
    """All constraints of a spec, checked; raises ConstraintError naming the first bad one."""
    if not isinstance(raw, tuple | list):
        raise ConstraintError(f"constraints {raw!r}: expected a list of [field, operator, value]")
    return tuple(compile_constraint(item) for item in raw)


def field_value(field: str, hostname: str, attributes: object) -> str | None:
    """The value of ``field`` on an agent: its hostname, or the attribute (None when absent)."""
    if field == HOSTNAME:
        return hostname
    value = attributes.get(field)  # type: ignore[attr-defined]
    return None if value is None else str(value)


def static_match(constraint: Constraint, value: str | None) -> bool:
    """Whether an agent whose field has ``value`` can take the task, ignoring other tasks.

    UNIQUE, MAX_PER and CLUSTER without value only require the field to be present here; the
    rest (the job's other tasks) is :func:`dynamic_match` and, for CLUSTER, placement pinning
    the job to the value of its first task.
    """
    op = constraint.operator
    if value is None:
        return op == "UNLIKE"
    if op == "LIKE":
        return constraint.pattern.fullmatch(value) is not None  # type: ignore[union-attr]
    if op == "UNLIKE":
        return constraint.pattern.fullmatch(value) is None  # type: ignore[union-attr]
    if op == "CLUSTER" and constraint.value is not None:
        return value == constraint.value
    return True


def dynamic_match(constraint: Constraint, value: str, counts: dict[str, int]) -> bool:
    """UNIQUE / MAX_PER on an agent whose field has ``value``; ``counts`` maps each value of
    the field to the number of the job's tasks (running or placed in this call) on it."""
    return counts.get(value, 0) < constraint.limit  # type: ignore[operator]


def dynamic_reason(constraint: Constraint, job_id: str, counts: dict[str, int]) -> str:
    """Why ``constraint`` leaves the job no offer (one line): UNIQUE or MAX_PER refused
    every offer with room, or the job's tasks already sit on several values of a CLUSTER
    field."""
    op, field = constraint.operator, constraint.field
    if op == "UNIQUE":
        return (f"constraint UNIQUE {field}: every eligible offer with room is on a {field} "
                f"that job {job_id} already uses ({len(counts)} in use)")
    if op == "MAX_PER":
        return (f"constraint MAX_PER {field} {constraint.limit}: every eligible offer with room "
                f"is on a {field} that already has {constraint.limit} tasks of job {job_id}")
    return (f"constraint CLUSTER {field}: tasks of job {job_id} already run on several "
            f"values ({', '.join(sorted(counts))})")
