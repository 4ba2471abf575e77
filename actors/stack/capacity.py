"""How many Mesos masters and agents this machine can hold (`stack up --masters/--agents`).

Pure limits from the machine's figures, plus one edge that reads them. The budgets are what
was measured here: an emulator process (one master, or a group of agents) holds about 25 MiB
resident, and the emulator benchmark keeps 100 agents busy on 2 cores (50 per core). Only half
of the memory available now is planned for, leaving room for the other services and the work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from actors.stack.mesos import AGENTS_PER_PROCESS, SEPARATE_AGENTS_MAX

PROCESS_MIB = 32  # resident memory budget of one emulator process (measured: about 25 MiB)
AGENTS_PER_CORE = 50  # agents per core the emulator benchmark sustains
MASTERS_PER_CORE = 2  # masters poll ZooKeeper and serve every agent's heartbeat


@dataclass(frozen=True)
class Machine:
    """The figures that bound the stack's size."""

    cores: int
    available_mib: int

    def __str__(self) -> str:
        return f"{self.cores} core(s), {self.available_mib:,} MiB available"


def max_masters(machine: Machine) -> int:
    """At most one master per 32 MiB of half the free memory and two per core, 1 at least."""
    by_memory = machine.available_mib // 2 // PROCESS_MIB
    return max(1, min(by_memory, MASTERS_PER_CORE * machine.cores + 1))


def max_agents(machine: Machine) -> int:
    """At most AGENTS_PER_CORE agents per core, in no more emulator processes than half the
    free memory holds (agents share a process in groups beyond SEPARATE_AGENTS_MAX); 1 at
    least."""
    processes = machine.available_mib // 2 // PROCESS_MIB
    by_memory = processes if processes <= SEPARATE_AGENTS_MAX else processes * AGENTS_PER_PROCESS
    return max(1, min(AGENTS_PER_CORE * machine.cores, by_memory))


def size_problem(machine: Machine, masters: int, agents: int) -> str | None:
    """Why ``masters`` masters and ``agents`` agents do not fit ``machine`` (None if they do)."""
    if masters > (most := max_masters(machine)):
        return (f"--masters {masters} is more than this machine ({machine}) holds: "
                f"at most {most}")
    if agents > (most := max_agents(machine)):
        return (f"--agents {agents} is more than this machine ({machine}) holds: at most "
                f"{most} ({AGENTS_PER_CORE} per core)")
    return None


def this_machine() -> Machine:
    """The cores this process may use and MemAvailable from /proc/meminfo."""
    cores = len(os.sched_getaffinity(0)) or 1
    available_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                available_kib = int(line.split()[1])
    return Machine(cores=cores, available_mib=available_kib // 1024)
