"""Placement rules (pure, no services): eligibility, executor cost, best fit, priority/FIFO,
dominant resource fairness, launch limit, reasons and determinism."""

from __future__ import annotations

import random

import pytest
from placement_helpers import EXECUTOR, offer, run, running, task, where

from scheduler.placement import Resources


# -- Resources helpers ---------------------------------------------------------------------------
def test_resources_helpers():
    small, big = Resources(1, 100, 10), Resources(2, 300, 10)
    assert small.fits(big) and not big.fits(small)
    assert big.minus(small) == Resources(1, 200, 0)
    assert small.plus(small) == Resources(2, 200, 20)
    assert Resources(0.1, 0, 0).plus(Resources(0.2, 0, 0)).fits(Resources(0.3, 0, 0))  # float dust
    assert big.dominant_share(Resources(4, 600, 0)) == 0.5  # disk total 0: skipped


# -- eligibility ---------------------------------------------------------------------------------
def test_only_registered_workers_get_work():
    offers = [offer("o1", account="w1"), offer("o2", account="w2"), offer("o3", account=None)]
    result = run([task(f"t{i}") for i in range(3)], offers,
                 eligible={"alice": frozenset({"w2"})})
    assert set(where(result).values()) == {"o2"}
    assert result.unused_offers == ("o1", "o3")


def test_eligible_accounts_may_be_any_collection():
    offers = [offer("o1", account="w1"), offer("o2", account="w2")]
    for accounts in ({"w2"}, ["w2"], ("w2",)):
        assert where(run([task("t")], offers, eligible={"alice": accounts})) == {"t": "o2"}


def test_unregistered_researcher_gets_a_reason():
    offers = [offer("o1", account="w1"), offer("o2", account="w2"), offer("o3", account="w3")]
    result = run([task("t1", researcher="bob")], offers,
                 eligible={"alice": frozenset({"w1", "w2", "w3"}), "bob": frozenset({"w9"})})
    assert result.launches == ()
    assert result.unplaced == {
        "t1": "no eligible agent: researcher bob has no registered worker among 3 offers"}
    result = run([task("t1", researcher="dave"), task("t2", researcher="erin")], offers,
                 eligible={"erin": frozenset()})
    assert result.unplaced["t1"].startswith("no eligible agent: researcher dave ")
    assert result.unplaced["t2"].startswith("no eligible agent: researcher erin ")


# -- resources and the executor ------------------------------------------------------------------
def test_insufficient_resources_reason_names_the_resource():
    result = run([task("t1", cpus=1, mem=5000)], [offer("o1", mem=2000), offer("o2", mem=3000)])
    assert result.unplaced == {
        "t1": "insufficient mem: needs 5000, at most 3000 free on 2 eligible offers"}
    result = run([task("t1", cpus=3, mem=3000)],
                 [offer("o1", cpus=4, mem=2000), offer("o2", cpus=2, mem=4000)])
    assert result.unplaced["t1"].startswith("insufficient resources: none of 2 eligible offers")


def test_first_task_on_an_agent_pays_the_executor_once():
    offers = [offer("o1", cpus=2.1, mem=264, executor=False)]
    pending = [task("t1", cpus=1, mem=100, at=1), task("t2", cpus=1, mem=100, at=2),
               task("t3", cpus=0.01, mem=1, at=3)]
    result = run(pending, offers, executor=EXECUTOR)
    assert [(x.task_id, x.with_executor) for x in result.launches] == [("t1", True), ("t2", False)]
    assert result.unplaced["t3"].startswith("insufficient cpus, mem")


def test_task_that_fits_only_without_the_executor_waits():
    result = run([task("t1", cpus=2, mem=100)], [offer("o1", cpus=2, executor=False)],
                 executor=EXECUTOR)
    assert result.launches == ()
    assert "insufficient cpus" in result.unplaced["t1"]
    assert "executor" in result.unplaced["t1"]
    # The same offer from an agent that already runs our executor takes it, with no executor.
    result = run([task("t1", cpus=2, mem=100)], [offer("o1", cpus=2, executor=True)],
                 executor=EXECUTOR)
    assert [(x.offer_id, x.with_executor) for x in result.launches] == [("o1", False)]


def test_two_offers_of_one_agent_start_one_executor():
    offers = [offer("o1", cpus=1.1, mem=200, agent="A", executor=False),
              offer("o2", cpus=1.1, mem=200, agent="A", executor=False)]
    result = run([task("t1", at=1), task("t2", at=2)], offers, executor=EXECUTOR)
    assert len(result.launches) == 2
    assert sorted(x.with_executor for x in result.launches) == [False, True]


# -- best fit ------------------------------------------------------------------------------------
def test_best_fit_prefers_the_offer_that_leaves_least():
    offers = [offer("big", cpus=8, mem=8000), offer("mid", cpus=3, mem=3000),
              offer("small", cpus=1, mem=500)]
    result = run([task("t1", cpus=2, mem=1000)], offers)
    assert where(result) == {"t1": "mid"}  # "small" is too small, "big" would leave more


def test_best_fit_fills_one_agent_before_the_next():
    offers = [offer(f"o{i}", cpus=4, mem=4000) for i in range(3)]
    result = run([task(f"t{i}", at=i) for i in range(6)], offers)
    assert list(where(result).values()) == ["o0"] * 4 + ["o1"] * 2
    assert result.unused_offers == ("o2",)


def test_best_fit_sees_offers_shrunk_by_other_shapes():
    # t1 (constrained to host h-A) shrinks A below B; the unconstrained t2 then fits best on A,
    # although A was the larger offer when the call began.
    offers = [offer("A", cpus=4, mem=4000), offer("B", cpus=3, mem=3000)]
    pending = [task("t1", cpus=3, mem=3000, at=1, constraints=[("hostname", "LIKE", "h-A")]),
               task("t2", cpus=1, mem=500, at=2, job="other")]
    assert where(run(pending, offers)) == {"t1": "A", "t2": "A"}


def test_agent_with_executor_wins_over_equal_agent_without():
    offers = [offer("a-new", executor=False), offer("b-old", executor=True)]
    result = run([task("t1")], offers, executor=EXECUTOR)
    assert [(x.offer_id, x.with_executor) for x in result.launches] == [("b-old", False)]


# -- priority and FIFO within a researcher -------------------------------------------------------
def test_priority_then_fifo_within_a_researcher():
    pending = [task("late-low", priority=0, at=1), task("early-low", priority=0, at=0),
               task("high", priority=5, at=9), task("tie-b", priority=0, at=0.5),
               task("tie-a", priority=0, at=0.5)]
    result = run(pending, [offer("o1", cpus=3, mem=3000)])
    assert [x.task_id for x in result.launches] == ["high", "early-low", "tie-a"]
    assert set(result.unplaced) == {"tie-b", "late-low"}


def test_unplaceable_head_does_not_block_smaller_tasks():
    pending = [task("huge", cpus=50, priority=9), task("small", cpus=1, priority=0)]
    result = run(pending, [offer("o1")])
    assert where(result) == {"small": "o1"}
    assert result.unplaced["huge"].startswith("insufficient cpus: needs 50, at most 4 free")


# -- dominant resource fairness ------------------------------------------------------------------
def test_drf_matches_the_papers_example():
    # Ghodsi et al.: 9 CPUs, 18 GB; A's tasks <1 CPU, 4 GB>, B's <3 CPU, 1 GB>: A gets 3, B 2.
    total = Resources(9, 18_000, 0)
    pending = ([task(f"a{i}", cpus=1, mem=4000, researcher="alice", at=i) for i in range(5)]
               + [task(f"b{i}", cpus=3, mem=1000, researcher="bob", at=i) for i in range(5)])
    result = run(pending, [offer("o1", cpus=9, mem=18_000)], total=total)
    assert [x.task_id for x in result.launches] == ["a0", "b0", "a1", "b1", "a2"]
    assert len(result.unplaced) == 5


def test_drf_counts_running_tasks_across_three_researchers():
    total = Resources(10, 10_000, 0)
    held = [running("r1", "elsewhere", researcher="alice", cpus=4, mem=100),
            running("r2", "elsewhere", researcher="bob", cpus=1, mem=2000)]
    pending = [task(f"{who}{i}", researcher=who, cpus=1, mem=100, at=i)
               for who in ("alice", "bob", "carol") for i in range(4)]
    result = run(pending, [offer("o1", cpus=5, mem=5000)], running_tasks=held, total=total)
    # carol (0) first, then bob (0.2), carol again, ... alice (0.4) last.
    order = [x.task_id for x in result.launches]
    assert order == ["carol0", "carol1", "bob0", "carol2", "bob1"]


def test_researcher_without_placeable_tasks_does_not_stall_others():
    # abe comes first (share 0, first by name) but has no worker: bob still gets the offer.
    offers = [offer("o1", account="w1", cpus=2, mem=2000)]
    eligible = {"abe": frozenset({"wX"}), "bob": frozenset({"w1"})}
    pending = [task("abe1", researcher="abe"), task("abe2", researcher="abe", priority=1),
               task("b1", researcher="bob"), task("b2", researcher="bob", at=1)]
    result = run(pending, offers, eligible=eligible)
    assert where(result) == {"b1": "o1", "b2": "o1"}
    assert set(result.unplaced) == {"abe1", "abe2"}
    assert result.unplaced["abe1"].startswith("no eligible agent: researcher abe")


# -- limits, bad input, determinism --------------------------------------------------------------
def test_max_launches_caps_the_call_and_explains_the_rest():
    pending = [task(f"t{i}", at=i) for i in range(5)]
    result = run(pending, [offer("o1")], max_launches=2)
    assert [x.task_id for x in result.launches] == ["t0", "t1"]
    assert result.unplaced == {f"t{i}": "launch limit of 2 reached in this call"
                               for i in (2, 3, 4)}
    assert run(pending, [offer("o1")], max_launches=0).launches == ()
    with pytest.raises(ValueError, match="max_launches"):
        run(pending, [offer("o1")], max_launches=-1)


def test_invalid_resources_and_duplicates():
    result = run([task("neg", cpus=-1), task("nan", mem=float("nan")), task("ok")], [offer("o1")])
    assert result.unplaced["neg"] == "invalid resources: cpus must be a number >= 0"
    assert result.unplaced["nan"] == "invalid resources: mem must be a number >= 0"
    assert where(result) == {"ok": "o1"}
    with pytest.raises(ValueError, match="duplicate task ids"):
        run([task("t"), task("t")], [offer("o1")])
    with pytest.raises(ValueError, match="duplicate offer ids"):
        run([task("t")], [offer("o1"), offer("o1")])


def test_no_pending_or_no_offers():
    assert run([], [offer("o1")]).unused_offers == ("o1",)
    result = run([task("t1")], [])
    assert result.unplaced["t1"].startswith("no eligible agent")


def test_same_input_same_output_whatever_the_order():
    rng = random.Random(7)
    offers = [offer(f"o{i:02d}", cpus=rng.choice([2, 4, 8]), mem=rng.choice([2000, 8000]),
                    account=f"w{i % 3}", executor=bool(i % 2), rack=f"r{i % 4}")
              for i in range(20)]
    pending = [task(f"t{i:03d}", cpus=rng.choice([0.5, 1, 2]), mem=rng.choice([100, 1500]),
                    researcher=rng.choice(["alice", "bob", "carol"]), at=rng.randrange(5),
                    priority=rng.randrange(3), job=f"j{i % 7}",
                    constraints=[("rack", "MAX_PER", "2")] if i % 7 == 0 else ())
               for i in range(120)]
    first = run(pending, offers, executor=EXECUTOR)
    assert run(pending, offers, executor=EXECUTOR) == first
    rng.shuffle(pending)
    rng.shuffle(offers)
    again = run(pending, offers, executor=EXECUTOR)
    assert again.launches == first.launches
    assert dict(again.unplaced) == dict(first.unplaced)
    assert set(again.unused_offers) == set(first.unused_offers)
