"""sample_submit.sh submits the sample job to the stack's sample protocol through
`clusterjobs submit`: it prints the job id, and the spec is in HDFS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from executor.hdfs import Hdfs

SCRIPT = Path(__file__).resolve().parents[2] / "sample_submit.sh"
DATADIR = "/protocols/alice"


def test_sample_job_lands_in_the_protocol(stack: dict, stack_dir: Path, tmp_path: Path) -> None:
    wrapper = tmp_path / "clusterjobs"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m actors.cli "$@"\n')
    wrapper.chmod(0o755)
    done = subprocess.run([str(SCRIPT), "--stack", str(stack_dir)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "CLUSTERJOBS": str(wrapper)})
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip().splitlines()[-1]
    assert job_id.startswith("sample-pi-")
    fs = Hdfs(str(stack["webhdfs"]), "alice")
    paths = [f"{DATADIR}/jobs/incoming/{job_id}.json", f"{DATADIR}/jobs/accepted/{job_id}.json"]
    found = [p for p in paths if fs.exists(p)]
    assert found, f"{job_id} is in neither incoming/ nor accepted/"
    assert json.loads(fs.read_bytes(found[0]))["name"] == "sample-pi"
