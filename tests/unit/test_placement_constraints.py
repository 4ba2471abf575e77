"""Marathon-style constraints in placement (pure): every operator, running tasks of the job
counted, other jobs not, and a one-line reason for every bad constraint."""

from __future__ import annotations

import pytest
from placement_helpers import offer, run, running, task, where

from scheduler.constraints import ConstraintError, compile_constraint, compile_constraints


def _racks():
    return [offer("o1", rack="r1"), offer("o2", rack="r1"), offer("o3", rack="r2"),
            offer("o4", rack="r3"), offer("o5", account="w1")]  # o5: no rack attribute


# -- LIKE / UNLIKE -------------------------------------------------------------------------------
def test_like_matches_the_whole_value_and_needs_the_attribute():
    pending = [task(f"t{i}", cpus=4, at=i, constraints=[("rack", "LIKE", "r[12]")])
               for i in range(5)]
    result = run(pending, _racks())
    assert set(where(result).values()) == {"o1", "o2", "o3"}  # not r3, not o5 (no rack)
    assert len(result.unplaced) == 2
    result = run([task("t", constraints=[("rack", "LIKE", "r")])], _racks())  # not a prefix match
    assert result.unplaced == {"t": "constraint LIKE rack 'r': none of 5 eligible offers matches"}


def test_like_on_hostname_and_on_eos_account():
    offers = [offer("o1", account="w1"), offer("o2", account="w2", host="gpu-7")]
    assert where(run([task("t", constraints=[("hostname", "LIKE", "gpu-.*")])], offers)) == {
        "t": "o2"}
    assert where(run([task("t", constraints=[("eos_account", "LIKE", "w1")])], offers)) == {
        "t": "o1"}


def test_unlike_excludes_matches_and_accepts_agents_without_the_attribute():
    pending = [task(f"t{i}", cpus=4, at=i, constraints=[("rack", "UNLIKE", "r1|r2")])
               for i in range(3)]
    result = run(pending, _racks())
    assert set(where(result).values()) == {"o4", "o5"}


# -- UNIQUE --------------------------------------------------------------------------------------
def test_unique_hostname_spreads_the_job():
    offers = [offer("o1", host="h1"), offer("o2", host="h1", agent="a2"), offer("o3", host="h2")]
    pending = [task(f"t{i}", at=i, constraints=[("hostname", "UNIQUE", None)]) for i in range(3)]
    result = run(pending, offers)
    hosts = {"o1": "h1", "o2": "h1", "o3": "h2"}
    assert sorted(hosts[o] for o in where(result).values()) == ["h1", "h2"]
    assert result.unplaced["t2"].startswith(
        "constraint UNIQUE hostname: every eligible offer with room is on a hostname that job "
        "job already uses")


def test_unique_counts_the_jobs_running_tasks_but_not_other_jobs():
    offers = [offer("o1", rack="r1"), offer("o2", rack="r2")]
    held = [running("x", "elsewhere", job="job", rack="r1"),
            running("y", "elsewhere", job="other", rack="r2")]
    result = run([task("t", constraints=[("rack", "UNIQUE", None)])], offers, running_tasks=held)
    assert where(result) == {"t": "o2"}


def test_unique_hostname_of_a_running_task_comes_from_its_attributes_or_its_agents_offer():
    offers = [offer("o1", host="h1", agent="A"), offer("o2", host="h2", agent="B")]
    pending = [task("t", constraints=[("hostname", "UNIQUE", None)])]
    by_attribute = [running("x", "gone", hostname="h2")]
    assert where(run(pending, offers, running_tasks=by_attribute)) == {"t": "o1"}
    by_agent = [running("x", "A")]
    assert where(run(pending, offers, running_tasks=by_agent)) == {"t": "o2"}


def test_unique_needs_the_attribute():
    result = run([task("t", constraints=[("rack", "UNIQUE", None)])], [offer("o1")])
    assert result.unplaced == {"t": "constraint UNIQUE rack: none of 1 eligible offers matches"}


# -- CLUSTER -------------------------------------------------------------------------------------
def test_cluster_with_value_keeps_the_job_there():
    pending = [task(f"t{i}", cpus=4, at=i, constraints=[("rack", "CLUSTER", "r1")])
               for i in range(3)]
    result = run(pending, _racks())
    assert sorted(where(result).values()) == ["o1", "o2"]
    assert result.unplaced["t2"] == (
        "insufficient cpus: needs 4, at most 0 free on 2 eligible offers")


def test_cluster_without_value_follows_the_first_placed_task():
    # The first task goes to the best fit (o3, the smallest); the rest must stay on rack r2.
    offers = [offer("o1", cpus=8, rack="r1"), offer("o2", cpus=8, rack="r1"),
              offer("o3", cpus=2, rack="r2"), offer("o4", cpus=3, rack="r2")]
    pending = [task(f"t{i}", cpus=2, at=i, constraints=[("rack", "CLUSTER", None)])
               for i in range(4)]
    result = run(pending, offers)
    assert where(result) == {"t0": "o3", "t1": "o4"}
    assert result.unplaced["t2"].startswith("insufficient cpus")
    # Another job with the same constraint is free to start elsewhere.
    other = [task("u0", cpus=8, job="other", constraints=[("rack", "CLUSTER", None)])]
    both = where(run(pending + other, offers))
    assert both == {"t0": "o3", "t1": "o4", "u0": "o1"}


def test_cluster_without_value_follows_running_tasks():
    held = [running("x", "elsewhere", rack="r3")]
    pending = [task("t", constraints=[("rack", "CLUSTER", None)])]
    assert where(run(pending, _racks(), running_tasks=held)) == {"t": "o4"}
    elsewhere = [running("x", "elsewhere", rack="r9")]
    assert run(pending, _racks(), running_tasks=elsewhere).unplaced == {
        "t": "constraint CLUSTER rack (the job's 'r9'): none of 5 eligible offers matches"}
    split = [*held, running("y", "elsewhere", rack="r1")]
    result = run(pending, _racks(), running_tasks=split)
    assert result.unplaced == {"t": "constraint CLUSTER rack: tasks of job job already run on "
                                    "several values (r1, r3)"}


# -- MAX_PER -------------------------------------------------------------------------------------
def test_max_per_limits_tasks_per_value_including_running():
    offers = [offer("o1", cpus=8, rack="r1"), offer("o2", cpus=8, rack="r2")]
    held = [running("x", "elsewhere", rack="r1")]
    pending = [task(f"t{i}", at=i, constraints=[("rack", "MAX_PER", "2")]) for i in range(5)]
    result = run(pending, offers, running_tasks=held)
    assert sorted(where(result).values()) == ["o1", "o2", "o2"]
    assert result.unplaced["t3"] == ("constraint MAX_PER rack 2: every eligible offer with room "
                                     "is on a rack that already has 2 tasks of job job")


def test_several_constraints_together():
    offers = _racks()
    constraints = [("rack", "LIKE", "r.*"), ("rack", "UNIQUE", None),
                   ("hostname", "UNLIKE", "h-o1")]
    pending = [task(f"t{i}", at=i, constraints=constraints) for i in range(4)]
    result = run(pending, offers)
    assert sorted(where(result).values()) == ["o2", "o3", "o4"]
    assert list(result.unplaced) == ["t3"]


# -- bad constraints -----------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "problem"), [
    (("rack", "NEAR", "x"), "unknown operator (expected one of LIKE, UNLIKE, UNIQUE, CLUSTER, "
                            "MAX_PER)"),
    (("rack", "LIKE", None), "LIKE needs a regex value"),
    (("rack", "UNLIKE", "("), "bad regex: missing ), unterminated subpattern at position 0"),
    (("rack", "MAX_PER", "x"), "MAX_PER needs a whole number >= 1 as value"),
    (("rack", "MAX_PER", "0"), "MAX_PER needs a whole number >= 1 as value"),
    (("rack", "MAX_PER", None), "MAX_PER needs a whole number >= 1 as value"),
    (("rack", "UNIQUE", "r1"), "UNIQUE takes no value"),
    (("", "UNIQUE", None), "field must be a non-empty string"),
    (("rack", "LIKE", 3), "value must be a string or null"),
])
def test_bad_constraint_gets_a_reason_and_others_still_place(raw, problem):
    result = run([task("bad", constraints=[raw]), task("good", job="other")], [offer("o1")])
    assert where(result) == {"good": "o1"}
    assert result.unplaced["bad"].startswith("constraint ")
    assert result.unplaced["bad"].endswith(": " + problem)
    with pytest.raises(ConstraintError, match="constraint"):
        compile_constraint(raw)


def test_malformed_constraint_lists():
    for raw in [("rack",), ("a", "b", "c", "d"), "rack:UNIQUE"]:
        with pytest.raises(ConstraintError, match="expected"):
            compile_constraints([raw])
    with pytest.raises(ConstraintError, match="expected a list"):
        compile_constraints("rack")
    result = run([task("bad", constraints=[("rack",)])], [offer("o1")])
    assert result.unplaced["bad"] == "constraint 'rack': expected [field, operator, value]"


def test_empty_value_means_none_and_two_element_form():
    assert compile_constraint(("rack", "UNIQUE", "")).value is None
    assert compile_constraint(["rack", "CLUSTER"]).value is None


def test_constraints_given_as_json_lists_work_like_tuples():
    as_lists = [task(f"t{i}", at=i, constraints=[["rack", "UNIQUE", None]]) for i in range(3)]
    as_lists = [t.__class__(t.task_id, t.job_id, t.researcher, t.priority, t.resources,
                            [list(c) for c in t.constraints], t.submitted_at) for t in as_lists]
    as_tuples = [task(f"t{i}", at=i, constraints=[("rack", "UNIQUE", None)]) for i in range(3)]
    assert run(as_lists, _racks()) == run(as_tuples, _racks())
    assert len(run(as_lists, _racks()).launches) == 3


def test_reason_is_resources_when_offers_refused_by_unique_have_since_filled_up():
    # o-b is refused for job j (host h1 taken by j0), then job k fills o-c and o-b: j2 waits
    # for room, not for the constraint.
    offers = [offer("o-a", cpus=1, host="h1"), offer("o-b", cpus=2, host="h1"),
              offer("o-c", cpus=3, host="h2")]
    unique = [("hostname", "UNIQUE", None)]
    pending = [task("j0", at=0, job="j", constraints=unique),
               task("j1", at=1, job="j", constraints=unique),
               task("k0", at=2, job="k", cpus=2), task("k1", at=3, job="k", cpus=2),
               task("j2", at=4, job="j", constraints=unique)]
    result = run(pending, offers)
    assert where(result) == {"j0": "o-a", "j1": "o-c", "k0": "o-c", "k1": "o-b"}
    assert result.unplaced == {
        "j2": "insufficient cpus: needs 1, at most 0 free on 3 eligible offers"}
    # Without k1, o-b keeps room but its host is taken: the constraint is the reason.
    result = run([t for t in pending if t.task_id != "k1"], offers)
    assert result.unplaced["j2"].startswith("constraint UNIQUE hostname")
