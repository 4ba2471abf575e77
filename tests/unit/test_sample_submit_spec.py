"""sample_submit.sh's job spec is one the shared spec code accepts; bad settings are refused
with one line before anything is submitted."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from scheduler.spec import parse_spec

SCRIPT = Path(__file__).resolve().parents[2] / "sample_submit.sh"


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **env})


def test_printed_spec_parses() -> None:
    done = run("--print-spec", INSTANCES="6")
    assert done.returncode == 0, done.stderr
    spec = parse_spec(done.stdout, datadir="/protocols/alice")
    assert spec.researcher == "alice" and spec.instances == 6
    assert spec.outputs == ("hits.txt",)


def test_bad_settings_are_one_line_errors() -> None:
    done = run("--print-spec", RESEARCHER="Alice Smith")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("sample_submit.sh: error: RESEARCHER: not a chain account name: "
                           "'Alice Smith'\n")
    done = run("--print-spec", INSTANCES="0")
    assert done.returncode == 2 and "INSTANCES: expected 1-9999, got '0'" in done.stderr
