"""Every `clusterjobs` verb fails cleanly on bad input: one line, the right exit code, no
traceback, nothing left running, nothing created.

The verbs are found by walking the real parser, so a verb added later is covered too: each
must have its own failure paths in ``CASES`` (the test says so when one is missing), and gets
generic ones derived from its options (an unknown flag; a path under a file for every path
option; an unreachable URL for every URL option; a bad name for every account-name option).
No service is needed: these paths must fail before any service is asked.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors import cli, names

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))

from cli_failure import REPO, run_failing

USAGE, ERROR = 2, 1
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    names: tuple[str, ...]  # what the one line must name

    def __str__(self) -> str:
        return " ".join(self.args)


def case(args: str, code: int, *named: str) -> Case:
    return Case(tuple(args.split(" ")), code, named)


# The failure paths an operator meets, per verb ({tmp} is a sandbox holding `afile`, a file;
# `empty/`, a folder without a stack; `corrupt/stack.json`, not JSON).
CASES: dict[str, list[Case]] = {
    "stack up": [
        case("--workdir {tmp}/afile", ERROR, "afile", "is a file"),
        case("--workdir {tmp}/afile/sub", ERROR, "afile is a file"),
        case("--workdir /proc/clusterjobs-stack", ERROR, "/proc", "does not accept"),
        case("--workdir /sys/clusterjobs-stack", ERROR, "/sys"),
        case("--agents 1000000 --workdir {tmp}/new", ERROR, "--agents 1000000",
             "more than this machine"),
        case("--masters 1000 --workdir {tmp}/new", ERROR, "--masters 1000"),
        case("--agents 0 --workdir {tmp}/new", USAGE, "--agents", "at least 1"),
        case("--timeout soon --workdir {tmp}/new", USAGE, "--timeout", "'soon'"),
        case("--agent-accounts BAD_NAME!,x --workdir {tmp}/new", USAGE, "BAD_NAME!"),
        case("--agent-accounts alice,bob. --workdir {tmp}/new", USAGE, "'bob.'", "dot"),
        case("--agent-accounts abcdefghijklmz --workdir {tmp}/new", USAGE, "longer than 13"),
        case("--agents 2 --agent-accounts alice --workdir {tmp}/new", ERROR,
             "names 1 accounts for 2 agents"),
        case("--workdir {tmp}/corrupt", ERROR, "unreadable stack state", "stack down"),
    ],
    "stack status": [
        case("--workdir {tmp}/afile", ERROR, "afile", "is a file"),
        case("--workdir {tmp}/missing", ERROR, "no stack in", "does not exist"),
        case("--workdir {tmp}/empty", ERROR, "no stack in", "stack up --workdir"),
        case("--probe --workdir {tmp}/corrupt", ERROR, "unreadable stack state"),
    ],
    "stack down": [
        case("--workdir {tmp}/afile", ERROR, "afile", "is a file"),
        case("--workdir {tmp}/misspelt/stack", ERROR, "no stack in", "does not exist"),
    ],
    "contracts build": [
        case("--out {tmp}/afile/build", ERROR, "afile/build", "Not a directory"),
    ],
    "contracts deploy": [
        case(f"--url {UNREACHABLE}", ERROR, "cannot reach", UNREACHABLE),
        case("--url 127.0.0.1:8888", USAGE, "--url", "http"),
        case("--stack {tmp}/empty", ERROR, "no stack in"),
        case(f"--url {UNREACHABLE} --jobs-account Jobs", USAGE, "--jobs-account", "'Jobs'"),
    ],
    "contracts delegate": [
        case(f"--url {UNREACHABLE}", USAGE, "--funder"),
        case(f"--funder BAD_NAME! --url {UNREACHABLE}", USAGE, "--funder", "BAD_NAME!"),
        case(f"--funder alice --url {UNREACHABLE}", ERROR, "cannot reach", UNREACHABLE),
        case(f"--funder alice --registry-account registry.too.long --url {UNREACHABLE}",
             USAGE, "--registry-account"),
        case("--funder alice --stack {tmp}/missing", ERROR, "no stack in"),
    ],
}

# Generic cases a verb may opt out of, with the reason: {(verb, option): why}.
GENERIC_EXEMPT: dict[tuple[str, str], str] = {}

VERBS = cli.leaf_parsers(cli.build_parser())


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


def _filler(action: argparse.Action) -> list[str]:
    """A valid-looking value for a required option, so the case reaches what it tests."""
    if action.nargs == 0:
        return []
    if action.choices:
        return [str(next(iter(action.choices)))]
    if action.type is names.account_name_arg:
        return ["alice"]
    if action.type is Path:
        return ["{tmp}/empty"]
    if "url" in action.dest:
        return [UNREACHABLE]
    return ["1"]


def _generic(verb: str, parser: argparse.ArgumentParser) -> list[Case]:
    """Bad input derived from the verb's own options."""
    def with_required(skip: argparse.Action, *rest: str) -> tuple[str, ...]:
        args = [a for action in _options(parser) if action.required and action is not skip
                for a in (action.option_strings[0], *_filler(action))]
        return (*args, *rest)

    found = [Case(with_required(None, "--no-such-flag"), USAGE, ("--no-such-flag",))]
    for action in _options(parser):
        flag = action.option_strings[0]
        if (verb, flag) in GENERIC_EXEMPT:
            continue
        if action.type is Path:
            found.append(Case(with_required(action, flag, "{tmp}/afile/sub"), ERROR,
                              ("afile",)))
        elif "url" in action.dest:
            found.append(Case(with_required(action, flag, UNREACHABLE), ERROR,
                              (UNREACHABLE,)))
        elif action.type is names.account_name_arg:
            found.append(Case(with_required(action, flag, "BAD NAME!"), USAGE,
                              (flag, "BAD NAME!")))
    return found


ALL = [(verb, c) for verb in VERBS for c in CASES.get(verb, []) + _generic(verb, VERBS[verb])]


def test_every_verb_has_its_failure_paths() -> None:
    missing = sorted(set(VERBS) - set(CASES))
    assert not missing, (f"verbs without failure paths in {__file__}::CASES: {missing}; add "
                         f"their bad inputs (unreachable URLs, bad names, missing files)")
    assert not set(CASES) - set(VERBS), "CASES names verbs the parser does not have"


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "stack.json").write_text('{"processes": [{"name": "zook')
    return tmp_path


@pytest.mark.parametrize(("verb", "bad"), ALL, ids=[f"{v}: {c}" for v, c in ALL])
def test_bad_input_is_one_line_and_leaves_nothing_behind(verb: str, bad: Case,
                                                         sandbox: Path) -> None:
    args = [*verb.split(" "), *(a.replace("{tmp}", str(sandbox)) for a in bad.args)]
    named = [n.replace("{tmp}", str(sandbox)) for n in bad.names]
    # Nothing created anywhere it could go: the sandbox (also the working directory, so a
    # default .stack/ would show) and the repository's contract build folder.
    run_failing(args, code=bad.code, names=named, cwd=sandbox,
                watch=[REPO / "contracts" / "build"])


def test_a_read_only_workdir_is_one_line(tmp_path: Path) -> None:
    """`stack up` on a read-only file system (a read-only tmpfs in a private mount namespace)."""
    mount = ["unshare", "--mount", "sh", "-c",
             f'mount -t tmpfs -o ro none "{tmp_path}" && exec "$@"', "-"]
    import subprocess

    probe = subprocess.run([*mount, "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no private read-only mount here: {probe.stderr.decode().strip()}")
    run_failing(["stack", "up", "--workdir", f"{tmp_path}/stack"], code=ERROR,
                names=[f"{tmp_path}/stack", "Read-only file system"], cwd=tmp_path,
                prefix=mount)
