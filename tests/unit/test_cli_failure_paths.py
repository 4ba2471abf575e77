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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors import cli

sys.path.insert(0, str(Path(__file__).parent.parent / "fixtures"))

from cli_failure import REPO, run_failing

USAGE, ERROR = 2, 1
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int | tuple[int, ...]  # the exit status, or the statuses allowed
    names: tuple[str, ...]  # what the one line must name
    top: tuple[str, ...] = ()  # options before the verb (e.g. --log-level for a service)

    def __str__(self) -> str:
        return " ".join(self.args)


def case(args: str, code: int, *named: str, top: str = "") -> Case:
    return Case(tuple(args.split(" ")), code, named, tuple(top.split()))


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
        case("--isolation cgroups/foo --workdir {tmp}/new", USAGE, "'cgroups/foo'"),
        case("--isolation docker/runtime --workdir {tmp}/new", USAGE, "filesystem/linux"),
    ],
    "image build-busybox": [
        case("{tmp}/afile", ERROR, "afile", "cannot write"),
        case("--tag nocolon {tmp}/reg", ERROR, "repo:tag", "'nocolon'"),
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
    "contracts deposit": [
        case(f"--funder alicefund --researcher alice --quantity 1 --url {UNREACHABLE}", ERROR,
             "cannot reach", UNREACHABLE),
        case(f"--funder alicefund --researcher Alice --quantity 1 --url {UNREACHABLE}", USAGE,
             "--researcher", "'Alice'"),
        case("--funder alicefund --researcher alice --quantity 1 --stack {tmp}/missing", ERROR,
             "no stack in"),
    ],
    "report": [
        case(f"--prometheus {UNREACHABLE}", ERROR, UNREACHABLE, "did not answer"),
        case("--stack {tmp}/empty", ERROR, "no stack in"),
        case(f"--since forever --prometheus {UNREACHABLE}", ERROR, "--since", "'forever'"),
    ],
    # A server: every case must fail before it listens (a bad address cannot be bound).
    "mesos-exporter": [
        case("--host 256.0.0.1 --port 9", ERROR, "cannot listen on 256.0.0.1:9"),
        case("--port x", USAGE, "--port", "'x'"),
        case("--timeout -1 --host 256.0.0.1", ERROR, "--timeout", "-1"),
    ],
    "scheduler": [
        case(f"--webhdfs {UNREACHABLE}", ERROR, "--master is required"),
        case("--stack {tmp}/afile/sub", ERROR, "no stack in"),
        # Gives up after the store's 30 s start time-out (the service logs its retries: the
        # case quiets them to see the one error line).
        case(f"--master zk://127.0.0.1:9/mesos --zk zk://127.0.0.1:9/cj --webhdfs {UNREACHABLE}"
             f" --nodeos {UNREACHABLE}", ERROR, "ZooKeeper at 127.0.0.1:9 did not answer",
             top="--log-level error"),
        case(f"--master zk://127.0.0.1:9/mesos --zk zk://127.0.0.1:9/cj --webhdfs {UNREACHABLE}"
             f" --nodeos {UNREACHABLE} --archive-batch 0", ERROR, "--archive-batch", "0"),
        case(f"--master zk://127.0.0.1:9/mesos --zk zk://127.0.0.1:9/cj --webhdfs {UNREACHABLE}"
             f" --nodeos {UNREACHABLE} --archive-after -1", ERROR, "--archive-after", "-1"),
        case(f"--master zk://127.0.0.1:9/mesos --zk zk://127.0.0.1:9/cj --webhdfs {UNREACHABLE}"
             f" --nodeos {UNREACHABLE} --time-tolerance nan", ERROR, "--time-tolerance", "nan"),
    ],
    "status": [
        case(f"--scheduler {UNREACHABLE}", ERROR, "does not answer", UNREACHABLE),
        case("j1 --stack {tmp}/empty", ERROR, "no running scheduler known"),
    ],
    "cancel": [
        case(f"j1 --scheduler {UNREACHABLE}", ERROR, "token"),
        case("j1 --stack {tmp}/missing", ERROR, "no running scheduler known"),
    ],
    "contributors": [
        case(f"--nodeos {UNREACHABLE}", ERROR, "no --master given"),
        case(f"--nodeos {UNREACHABLE} --master {UNREACHABLE}", ERROR, UNREACHABLE),
        case("--stack {tmp}/empty", ERROR, "no stack in"),
    ],
    "submit": [
        case("{tmp}/missing.json", ERROR, "missing.json", "No such file"),
        case("{tmp}/empty", ERROR, "empty", "Is a directory"),
        case("{tmp}/corrupt/stack.json", USAGE, "malformed JSON"),
    ],
    "chain regworker": [case("alice Bob", USAGE, "'Bob'")],
    "chain removejob": [case("alice bob -5", USAGE, "-5")],
    "chain payout": [case("a b c d nobody", USAGE, "'nobody'")],
    "chain addprotocol": [
        Case(("t", "alice", "alice", "/d", "alice", "1.0", "alice", "1", "1"), USAGE, ("'1.0'",)),
        Case(("t", "alice", "alice", "/d", "alice", "1.0000 JOB", "alice", "1", "nan"), USAGE,
             ("worker_pay_rate", "nan")),
    ],
}

# Generic cases a verb may opt out of, with the reason: {(verb, option): why}.
GENERIC_EXEMPT: dict[tuple[str, str], str] = {}

VERBS = cli.leaf_parsers(cli.build_parser())


def _accepts(action: argparse.Action, value: str) -> bool:
    if action.choices is not None and value not in action.choices:
        return False
    try:
        (action.type or str)(value)
    except (argparse.ArgumentTypeError, TypeError, ValueError):
        return False
    return True


def _is_url(action: argparse.Action) -> bool:
    return "url" in action.dest or "URL" in (action.help or "")


def _is_account_name(action: argparse.Action) -> bool:
    """An argument typed as an Antelope account name (ours or a role's own check)."""
    return (action.type is not None and _accepts(action, "alice")
            and _accepts(action, "eosio.token") and not _accepts(action, "BAD NAME!"))


def _filler(action: argparse.Action) -> list[str]:
    """A valid-looking value for a required argument, so the case reaches what it tests."""
    if action.nargs == 0:
        return []
    if action.type is Path:
        return ["{tmp}/empty"]
    if _is_url(action):
        return [UNREACHABLE]
    for value in ("alice", "1", "1000.0000 JOB", "worker", "x"):
        if _accepts(action, value):
            return [value]
    return ["x"]


def _generic(verb: str, parser: argparse.ArgumentParser) -> list[Case]:
    """Bad input derived from the verb's own arguments; the others get valid-looking values."""
    arguments = [a for a in parser._actions if a.dest != "help"
                 and not isinstance(a, argparse._SubParsersAction)]

    def args_with(target: argparse.Action | None, bad: str = "") -> tuple[str, ...]:
        out: list[str] = []
        for action in arguments:
            flag = action.option_strings[:1]
            if action is target:
                out += [*flag, bad]
            elif action.required or not action.option_strings:
                out += [*flag, *_filler(action)]
        return tuple(out)

    found = [Case((*args_with(None), "--no-such-flag"), USAGE, ("--no-such-flag",))]
    for action in arguments:
        label = action.option_strings[0] if action.option_strings else action.dest
        if (verb, label) in GENERIC_EXEMPT:
            continue
        # Other arguments may be refused first (a missing key, a spec that is a folder), so
        # these two only ask for a clean one-line failure; CASES name the exact problems.
        if action.type is Path:
            found.append(Case(args_with(action, "{tmp}/afile/sub"), (ERROR, USAGE), ()))
        elif _is_url(action):
            found.append(Case(args_with(action, UNREACHABLE), ERROR, ()))
        elif _is_account_name(action):
            found.append(Case(args_with(action, "BAD NAME!"), USAGE, ("BAD NAME!",)))
    return found


def _positionals(parser: argparse.ArgumentParser) -> tuple[str, ...]:
    return tuple(v for a in parser._actions if not a.option_strings and a.dest != "help"
                 for v in _filler(a))


# Every `chain` verb signs: without its key file it must say so before asking nodeos.
for _verb, _parser in VERBS.items():
    if _verb.startswith("chain "):
        CASES.setdefault(_verb, []).append(Case(
            (*_positionals(_parser), "--key-file", "{tmp}/nokey", "--nodeos", UNREACHABLE),
            ERROR, ("key file", "nokey")))


def _all_cases() -> list[tuple[str, Case]]:
    """CASES, then the generic cases; an option several verbs share (same flag, type and help,
    as a role's common options are) is tried on the first verb that has it."""
    found = [(verb, c) for verb in VERBS for c in CASES.get(verb, [])]
    seen: set[tuple[object, ...]] = set()
    for verb, parser in VERBS.items():
        for generic in _generic(verb, parser):
            key = _shared_key(parser, generic)
            if key not in seen:
                seen.add(key)
                found.append((verb, generic))
    return found


def _shared_key(parser: argparse.ArgumentParser, case: Case) -> tuple[object, ...]:
    """What makes a generic case redundant across verbs: the option it targets."""
    flags = {a.option_strings[0]: a for a in parser._actions if a.option_strings}
    target = next((flags[arg] for arg in reversed(case.args) if arg in flags), None)
    if target is None or "--no-such-flag" in case.args:
        return (parser.prog, case.args[-1])  # positionals and unknown flags: per verb
    return (target.option_strings[0], target.type, target.help, case.args[-1])


ALL = _all_cases()


def test_every_verb_has_its_failure_paths() -> None:
    missing = sorted(set(VERBS) - set(CASES))
    assert not missing, (f"verbs without failure paths in {__file__}::CASES: {missing}; add "
                         f"their bad inputs (unreachable URLs, bad names, missing files)")
    assert not set(CASES) - set(VERBS), "CASES names verbs the parser does not have"


def _sandbox(folder: Path) -> Path:
    folder.mkdir()
    (folder / "afile").write_text("not a folder\n")
    (folder / "empty").mkdir()
    (folder / "corrupt").mkdir()
    (folder / "corrupt" / "stack.json").write_text('{"processes": [{"name": "zook')
    return folder


def _check(verb: str, bad: Case, sandbox: Path) -> str | None:
    """Run one case; the assertion message when it fails, else None."""
    args = [*bad.top, *verb.split(" "), *(a.replace("{tmp}", str(sandbox)) for a in bad.args)]
    named = [n.replace("{tmp}", str(sandbox)) for n in bad.names]
    try:
        # Nothing created anywhere it could go: the sandbox (also the working directory, so
        # a default .stack/ would show) and the repository's contract build folder.
        run_failing(args, code=bad.code, names=named, cwd=sandbox,
                    watch=[REPO / "contracts" / "build"])
    except AssertionError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[int, str | None]:
    """Every case run once, four at a time (each in its own sandbox): a CLI run is mostly
    interpreter start-up, so this keeps the ~130 runs to a few seconds per core."""
    root = tmp_path_factory.mktemp("cli")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {i: pool.submit(_check, verb, bad, _sandbox(root / str(i)))
                   for i, (verb, bad) in enumerate(ALL)}
        return {i: future.result() for i, future in futures.items()}


@pytest.mark.parametrize("index", range(len(ALL)), ids=[f"{v}: {c}" for v, c in ALL])
def test_bad_input_is_one_line_and_leaves_nothing_behind(index: int,
                                                         outcomes: dict[int, str | None]) -> None:
    failure = outcomes[index]
    assert failure is None, failure


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
