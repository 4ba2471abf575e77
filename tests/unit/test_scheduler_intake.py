"""Intake's decisions over an in-memory folder tree: accept once (also after a crash between
the state write and the rename), reject with `.error` and keep, skip temporaries."""

from __future__ import annotations

import json

from scheduler import spec as spec_module
from scheduler.chain_view import Protocol
from scheduler.intake import Intake

ALICE = Protocol("owner", "alice", "/protocols/alice")
INCOMING = "/protocols/alice/jobs/incoming"


class MemoryFs:
    """The few calls intake makes, on a dict of path -> bytes (folders implied)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def exists(self, path: str) -> bool:
        return path in self.files or any(p.startswith(path + "/") for p in self.files)

    def list(self, path: str) -> list[str]:
        return sorted({p[len(path) + 1:].split("/")[0] for p in self.files
                       if p.startswith(path + "/")})

    def read_bytes(self, path: str) -> bytes:
        return self.files[path]

    def write_bytes(self, path: str, data: bytes) -> None:
        self.files[path] = data

    def makedirs(self, path: str) -> None:
        pass

    def rename(self, source: str, target: str) -> None:
        assert target not in self.files
        if source not in self.files:  # as HDFS's rename2: the source must exist
            raise FileNotFoundError(source)
        self.files[target] = self.files.pop(source)


def intake(fs: MemoryFs, known: dict, owner: str = "default", on_admit=None) -> Intake:
    def admit(accepted) -> bool:
        if on_admit is not None:
            on_admit()
        if accepted.job_id in known:
            return False
        known[accepted.job_id] = accepted
        return True

    return Intake(fs, admit, parse_spec=spec_module.parse_spec,
                  spec_error=spec_module.SpecError, new_job_id=spec_module.new_job_id,
                  owner=owner)


def test_two_schedulers_on_one_folder_admit_a_spec_once():
    # Two schedulers (two state paths) serve alice: the second scans while the first is
    # admitting. Admitted by both, each instance would run, and be paid, twice.
    fs, known_a, known_b = MemoryFs(), {}, {}
    second = intake(fs, known_b, owner="b")
    fs.write_bytes(f"{INCOMING}/w-1.json", good())
    intake(fs, known_a, owner="a", on_admit=lambda: second.scan([ALICE])).scan([ALICE])
    second.scan([ALICE])
    assert list(known_a) == ["w-1"] and known_b == {}
    assert fs.exists("/protocols/alice/jobs/accepted/w-1.json")
    assert [p for p in fs.files if p.startswith(INCOMING)] == []


def test_a_spec_claimed_while_another_scheduler_read_it_is_left_alone():
    fs, known_a, known_b = MemoryFs(), {}, {}
    fs.write_bytes(f"{INCOMING}/w-1.json", good())
    first = intake(fs, known_a, owner="a")
    reads = []

    class Racing(MemoryFs):
        def read_bytes(self, path: str) -> bytes:
            data = fs.read_bytes(path)
            if not reads:
                reads.append(path)
                first.scan([ALICE])  # the other scheduler takes it meanwhile
            return data

    racing = Racing()
    racing.files = fs.files
    intake(racing, known_b, owner="b").scan([ALICE])
    assert list(known_a) == ["w-1"] and known_b == {}
    assert not any(p.endswith(".error") for p in fs.files)  # not rejected as a duplicate


def test_crash_after_the_claim_is_finished_by_the_same_scheduler_only():
    fs, known = MemoryFs(), {}
    claimed = f"{INCOMING}/_claims/a/w-1.json"
    fs.write_bytes(claimed, good())
    intake(fs, {}, owner="b").scan([ALICE])
    assert fs.exists(claimed)
    intake(fs, known, owner="a").scan([ALICE])
    assert list(known) == ["w-1"] and not fs.exists(claimed)
    assert fs.exists("/protocols/alice/jobs/accepted/w-1.json")


def good(**more) -> bytes:
    return json.dumps({"version": 1, "researcher": "alice", "name": "w", "command": "true",
                       **more}).encode()


def test_accepts_once_by_rename_and_keeps_the_id():
    fs, known = MemoryFs(), {}
    fs.write_bytes(f"{INCOMING}/w-1.json", good())
    intake(fs, known).scan([ALICE])
    assert list(known) == ["w-1"]
    assert fs.list(INCOMING) == []
    assert fs.exists("/protocols/alice/jobs/accepted/w-1.json")
    intake(fs, known).scan([ALICE])
    assert list(known) == ["w-1"]


def test_crash_between_state_write_and_rename_completes_without_a_second_job():
    fs, known = MemoryFs(), {}
    fs.write_bytes(f"{INCOMING}/w-1.json", good())
    known["w-1"] = "written before the crash"
    intake(fs, known).scan([ALICE])
    assert known == {"w-1": "written before the crash"}
    assert fs.exists("/protocols/alice/jobs/accepted/w-1.json")
    assert not fs.exists(f"{INCOMING}/w-1.json")


def test_bad_spec_gets_error_and_stays_and_is_not_retried():
    fs, known = MemoryFs(), {}
    fs.write_bytes(f"{INCOMING}/bad.json", good(instances=0))
    take = intake(fs, known)
    take.scan([ALICE])
    assert fs.read_bytes(f"{INCOMING}/bad.error") == b"instances: must be at least 1, got 0\n"
    assert fs.exists(f"{INCOMING}/bad.json") and known == {}
    take.scan([ALICE])
    assert take.rejected == 1


def test_duplicate_id_rejected_and_temporaries_skipped():
    fs, known = MemoryFs(), {}
    fs.write_bytes("/protocols/alice/jobs/accepted/w-1.json", good())
    fs.write_bytes(f"{INCOMING}/w-1.json", good())
    fs.write_bytes(f"{INCOMING}/.w-2.json.tmp", b"{")
    fs.write_bytes(f"{INCOMING}/.w-3.json", b"{")
    intake(fs, known).scan([ALICE])
    assert "already accepted" in fs.read_bytes(f"{INCOMING}/w-1.error").decode()
    assert known == {}
    assert not fs.exists(f"{INCOMING}/.w-3.error")


def test_unsafe_file_name_gets_a_new_id_and_wrong_researcher_is_rejected():
    fs, known = MemoryFs(), {}
    fs.write_bytes(f"{INCOMING}/My Job.json", good())
    fs.write_bytes(f"{INCOMING}/bob.json", json.dumps(
        {"version": 1, "researcher": "bob", "name": "x", "command": "true"}).encode())
    intake(fs, known).scan([ALICE])
    (job_id,) = known
    assert job_id.startswith("w-")
    assert fs.read_bytes(f"{INCOMING}/bob.error").decode().startswith("researcher: ")


def test_raw_rows_decode_like_the_contracts_pack_them():
    from contracts import serialize
    from scheduler.chain_view import RowReader, name_text

    for name in ("alice", "worker1", "a.b", "zzzzzzzzzzzzj", "registry"):
        assert name_text(serialize.name_value(name)) == name
    row = (serialize.pack_string("a title " * 30) + serialize.pack_name("alice")
           + serialize.pack_string("/protocols/alice") + b"\x01\x02")
    reader = RowReader(row.hex())
    assert reader.string().startswith("a title")
    assert (reader.name(), reader.string()) == ("alice", "/protocols/alice")
