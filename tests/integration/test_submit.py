"""`clusterjobs submit` against the stack's sample protocol (researcher alice): a good spec
lands in /protocols/alice/jobs/incoming/, a bad one exits 2 naming the field and uploads
nothing, an unknown researcher and a missing input are refused."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from executor.hdfs import Hdfs

DATADIR = "/protocols/alice"
INCOMING = f"{DATADIR}/jobs/incoming"


@pytest.fixture(scope="module")
def fs(stack: dict) -> Hdfs:
    return Hdfs(str(stack["webhdfs"]), "alice")


def submit(stack_dir: Path, spec: dict | str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / f"spec-{uuid.uuid4().hex[:6]}.json"
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return subprocess.run([sys.executable, "-m", "actors.cli", "submit", str(path),
                           "--stack", str(stack_dir)],
                          capture_output=True, text=True, timeout=120)


def spec(**changes: object) -> dict:
    return {"version": 1, "researcher": "alice", "name": "hello", "command": ["echo", "hi"],
            **changes}


def uploaded(fs: Hdfs) -> set[str]:
    return set(fs.list(INCOMING))


def test_sample_protocol_is_in_the_stack_status(stack: dict) -> None:
    sample = stack["sample"]
    assert sample["researcher"] == "alice" and sample["datadir"] == DATADIR
    assert sample["workers"] and set(sample["dispatchers"].values())


def test_good_spec_appears_in_incoming(stack_dir: Path, fs: Hdfs, tmp_path: Path) -> None:
    name = f"{uuid.uuid4().hex}.txt"
    fs.write_bytes(f"{DATADIR}/data/{name}", b"words\n")
    done = submit(stack_dir, spec(inputs=[f"data/{name}"], outputs=["out"]), tmp_path)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip().splitlines()[-1]
    assert job_id.startswith("hello-")
    # The scheduler (when one runs on this stack) may already have accepted it.
    found = [p for p in (f"{INCOMING}/{job_id}.json", f"{DATADIR}/jobs/accepted/{job_id}.json")
             if fs.exists(p)]
    assert found, f"{job_id}.json is neither in incoming/ nor in accepted/"
    stored = json.loads(fs.read_bytes(found[0]))
    assert stored["researcher"] == "alice"
    assert stored["inputs"] == [{"hdfs": f"{DATADIR}/data/{name}", "as": name}]
    assert not [n for n in fs.list(INCOMING) if n.startswith(".")]  # no temporary left


@pytest.mark.parametrize("bad,field", [
    (spec(resources={"cpus": -1}), "resources.cpus"),
    (spec(instances=0), "instances"),
    (spec(inputs=["/protocols/bob/x.txt"]), "inputs[0]"),
    ('{"version": 1,', "spec"),
])
def test_bad_spec_exits_2_and_uploads_nothing(stack_dir: Path, fs: Hdfs, tmp_path: Path,
                                              bad: dict | str, field: str) -> None:
    before = uploaded(fs)
    done = submit(stack_dir, bad, tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f": {field}: " in lines[0], done.stderr
    assert done.stdout == ""
    assert uploaded(fs) - before == set()


def test_unknown_researcher_is_refused(stack_dir: Path, fs: Hdfs, tmp_path: Path) -> None:
    before = uploaded(fs)
    done = submit(stack_dir, spec(researcher="nobodyhere"), tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == ("clusterjobs: error: researcher 'nobodyhere' has no protocol "
                                   "in the registry contract 'registry'")
    assert uploaded(fs) - before == set()


def test_missing_input_is_refused(stack_dir: Path, fs: Hdfs, tmp_path: Path) -> None:
    before = uploaded(fs)
    done = submit(stack_dir, spec(inputs=["data/not-there.bin"]), tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"clusterjobs: error: inputs[0]: {DATADIR}/data/"
                                   "not-there.bin does not exist in HDFS")
    assert uploaded(fs) - before == set()
