"""The sizes `stack up` accepts are bounded by the machine (actors/stack/capacity.py)."""

from __future__ import annotations

from actors.stack.capacity import Machine, max_agents, max_masters, size_problem, this_machine


def test_agents_are_bounded_by_cores_and_memory() -> None:
    assert max_agents(Machine(cores=2, available_mib=20_000)) == 100  # 50 per core
    assert max_agents(Machine(cores=256, available_mib=20_000)) == 7800  # 312 processes x 25
    assert max_agents(Machine(cores=2, available_mib=320)) == 5  # 5 separate processes
    assert max_agents(Machine(cores=1, available_mib=0)) == 1


def test_masters_are_bounded_by_cores_and_memory() -> None:
    assert max_masters(Machine(cores=2, available_mib=20_000)) == 5
    assert max_masters(Machine(cores=2, available_mib=128)) == 2
    assert max_masters(Machine(cores=1, available_mib=0)) == 1


def test_size_problem_names_the_flag_the_limit_and_the_machine() -> None:
    machine = Machine(cores=2, available_mib=20_000)
    assert size_problem(machine, 1, 3) is None
    assert size_problem(machine, 5, 100) is None
    assert size_problem(machine, 1, 1_000_000) == (
        "--agents 1000000 is more than this machine (2 core(s), 20,000 MiB available) "
        "holds: at most 100 (50 per core)")
    assert size_problem(machine, 6, 3) == (
        "--masters 6 is more than this machine (2 core(s), 20,000 MiB available) holds: "
        "at most 5")


def test_this_machine_reads_real_figures() -> None:
    machine = this_machine()
    assert machine.cores >= 1 and machine.available_mib > 0
