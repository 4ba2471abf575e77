"""A small Dockerfile reader and the checks deploy/docker/ must pass (no Docker engine runs here).

Only what the checks need: instructions with their continuation lines joined, comments and
blank lines dropped, JSON (exec) forms decoded. Each check returns a list of problems, one line
each, so a test shows every problem at once.
"""

from __future__ import annotations

import configparser
import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path

INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER",
}
SECRET_WORDS = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
PINNED_TAG = re.compile(r"^[^:@\s]+(:\d+(\.\d+)+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


class DockerfileError(ValueError):
    """The file is not a Dockerfile this reader understands (line number and problem)."""


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON array form's items, or None for the shell form."""
        if not self.args.startswith("["):
            return None
        try:
            value = json.loads(self.args)
        except json.JSONDecodeError as exc:
            raise DockerfileError(f"line {self.line}: {self.keyword}: bad JSON: {exc}") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DockerfileError(f"line {self.line}: {self.keyword}: not a list of strings")
        return value


def parse(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile; raises DockerfileError on an unknown instruction."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comments inside a continued instruction are dropped, as Docker does
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        joined = " ".join(part.strip() for part in pending if part.strip())
        pending = []
        keyword, _, args = joined.partition(" ")
        if keyword.upper() not in INSTRUCTIONS:
            raise DockerfileError(f"line {start}: unknown instruction {keyword!r}")
        out.append(Instruction(start, keyword.upper(), args.strip()))
    if pending:
        raise DockerfileError(f"line {start}: continuation at end of file")
    if not out or out[0].keyword not in ("FROM", "ARG"):
        raise DockerfileError("the first instruction must be FROM (or ARG)")
    return out


def _flags_and_words(args: str) -> tuple[dict[str, str], list[str]]:
    flags: dict[str, str] = {}
    words = args.split()
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return flags, words


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by build stage (each starts with FROM)."""
    groups: list[list[Instruction]] = []
    for inst in instructions:
        if inst.keyword == "FROM":
            groups.append([])
        if groups:
            groups[-1].append(inst)
    return groups


def console_scripts(setup_cfg: Path) -> set[str]:
    """The console script names setup.cfg installs."""
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    lines = parser.get("options.entry_points", "console_scripts", fallback="").splitlines()
    return {line.split("=", 1)[0].strip() for line in lines if "=" in line}


def check(path: Path, context: Path, scripts: set[str]) -> list[str]:
    """Problems of one Dockerfile built with ``context`` as its build context."""
    problems: list[str] = []
    instructions = parse(path.read_text())
    groups = stages(instructions)
    stage_names = set()
    for group in groups:
        _, words = _flags_and_words(group[0].args)
        image = words[0] if words else ""
        if image not in stage_names and not PINNED_TAG.match(image):
            problems.append(f"line {group[0].line}: base {image!r} is not pinned to a version")
        if image.endswith(":latest") or (":" not in image and image not in stage_names):
            problems.append(f"line {group[0].line}: base {image!r} floats (no version tag)")
        if len(words) >= 3 and words[1].upper() == "AS":
            stage_names.add(words[2])
    for inst in instructions:
        if inst.keyword in ("COPY", "ADD"):
            flags, words = _flags_and_words(inst.args)
            if "from" in flags:
                if flags["from"] not in stage_names:
                    problems.append(f"line {inst.line}: COPY --from={flags['from']}: no such stage")
                continue
            sources = inst.exec_form() or words
            for source in sources[:-1]:
                if not glob.glob(str(context / source)):
                    problems.append(f"line {inst.line}: {inst.keyword} source {source!r} "
                                    f"does not exist in the build context")
        if inst.keyword in ("ENV", "ARG") and SECRET_WORDS.search(inst.args.split("=")[0]):
            problems.append(f"line {inst.line}: {inst.keyword} {inst.args.split()[0]} looks "
                            f"like a secret baked into the image")
    final = groups[-1]
    users = [inst for inst in final if inst.keyword == "USER"]
    if not users:
        problems.append("the final stage sets no USER (it would run as root)")
    elif users[-1].args.split(":")[0] in ("root", "0"):
        problems.append(f"line {users[-1].line}: the final USER is root")
    entrypoints = [inst for inst in final if inst.keyword == "ENTRYPOINT"]
    if not entrypoints:
        problems.append("the final stage has no ENTRYPOINT")
    else:
        argv = entrypoints[-1].exec_form()
        if not argv:
            problems.append(f"line {entrypoints[-1].line}: ENTRYPOINT must be the exec form")
        elif argv[0] not in scripts:
            problems.append(f"line {entrypoints[-1].line}: ENTRYPOINT {argv[0]!r} is not a "
                            f"console script of setup.cfg ({', '.join(sorted(scripts))})")
    return problems
