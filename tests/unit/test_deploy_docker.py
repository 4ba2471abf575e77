"""deploy/docker/: the Dockerfiles parse, every COPY source exists in the build context (the
repository root), bases are pinned, the final stage runs as a non-root user, nothing secret is
baked in, and each ENTRYPOINT is a console script the package installs."""

from __future__ import annotations

from pathlib import Path

import pytest
from dockerfile_lint import DockerfileError, check, console_scripts, parse

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "deploy" / "docker").glob("*.Dockerfile"))
SCRIPTS = console_scripts(ROOT / "setup.cfg")


def test_both_images_are_there() -> None:
    assert {p.name for p in DOCKERFILES} >= {"scheduler.Dockerfile", "executor.Dockerfile"}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_its_checks(path: Path) -> None:
    assert check(path, ROOT, SCRIPTS) == []


def test_entrypoints_are_the_expected_scripts() -> None:
    def entry(name: str) -> list[str]:
        found = [i for i in parse((ROOT / "deploy/docker" / name).read_text())
                 if i.keyword == "ENTRYPOINT"]
        return found[-1].exec_form() or []

    assert entry("scheduler.Dockerfile") == ["clusterjobs"]
    assert entry("executor.Dockerfile") == ["clusterjobs-executor"]


BAD = """\
FROM python:latest
COPY no-such-dir /src
ENV CHAIN_KEY=5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD3
ENTRYPOINT clusterjobs
"""


def test_a_bad_dockerfile_gets_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.Dockerfile"
    path.write_text(BAD)
    problems = "\n".join(check(path, ROOT, SCRIPTS))
    assert "floats" in problems
    assert "'no-such-dir' does not exist" in problems
    assert "looks like a secret" in problems
    assert "sets no USER" in problems
    assert "must be the exec form" in problems


def test_root_user_and_unknown_entrypoint_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "root.Dockerfile"
    path.write_text('FROM debian:12.8-slim\nUSER root\nENTRYPOINT ["not-ours"]\n')
    problems = "\n".join(check(path, ROOT, SCRIPTS))
    assert "final USER is root" in problems
    assert "'not-ours' is not a console script" in problems


def test_unknown_instruction_is_a_parse_error() -> None:
    with pytest.raises(DockerfileError, match="line 2: unknown instruction 'RUNN'"):
        parse("FROM debian:12.8\nRUNN true\n")
