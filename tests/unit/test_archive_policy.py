"""Which job rows the scheduler archives (scheduler/archive_policy.py): paid and past the
credit window, oldest first, per researcher."""

from __future__ import annotations

from scheduler.archive_policy import JobRow, Removal, removable

WINDOW = 1_000


def rows(*specs: tuple[str, int, int]) -> list[JobRow]:
    """(researcher, time, credited_at) in credit order; every row has an identity."""
    return [JobRow(i, r, t, 100 + i, at) for i, (r, t, at) in enumerate(specs)]


def test_only_rows_whose_time_is_paid_go() -> None:
    job = rows(("alice", 10, 0), ("alice", 20, 0), ("alice", 30, 0))
    # 35 us unpaid: the last row (30) and 5 us of the middle one are unpaid.
    assert removable("w", job, {"alice": 35}, 5_000, WINDOW, 10) == [Removal("alice", "w", 10)]
    assert removable("w", job, {"alice": 30}, 5_000, WINDOW, 10) == [
        Removal("alice", "w", 10), Removal("alice", "w", 20)]
    assert len(removable("w", job, {"alice": 0}, 5_000, WINDOW, 10)) == 3


def test_rows_within_the_window_stay() -> None:
    job = rows(("alice", 10, 100), ("alice", 20, 900), ("alice", 30, 2_000))
    assert removable("w", job, {"alice": 0}, 1_850, WINDOW, 10) == [Removal("alice", "w", 10)]
    assert len(removable("w", job, {"alice": 0}, 3_000, WINDOW, 10)) == 3
    no_identity = [JobRow(0, "alice", 10, 0, 2_000)]
    assert removable("w", no_identity, {"alice": 0}, 2_000, WINDOW, 10) == [
        Removal("alice", "w", 10)]


def test_researchers_are_apart_and_unknown_ones_keep_their_rows() -> None:
    job = rows(("alice", 10, 0), ("bob", 20, 0), ("alice", 30, 0), ("carol", 5, 0))
    found = removable("w", job, {"alice": 30, "bob": 0}, 5_000, WINDOW, 10)
    assert found == [Removal("alice", "w", 10), Removal("bob", "w", 20)]


def test_the_limit_and_the_row_order() -> None:
    job = list(reversed(rows(*[("alice", 7, 0)] * 5)))  # as read, any order
    assert removable("w", job, {"alice": 0}, 5_000, WINDOW, 3) == [Removal("alice", "w", 7)] * 3
    assert Removal("alice", "w", 7).data == {"researcher": "alice", "worker": "w", "time": 7}
