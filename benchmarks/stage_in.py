"""Stage-in speed: the executor's download of one 1 GiB HDFS file beside three baselines
measured in the same run on the same file: `hdfs dfs -get` (the Java client, from the same
Hadoop jars as the stack), `curl` of the WebHDFS OPEN URL, and a plain copy of the DataNode's
block files (the local limit). Also the single-connection library stream (1 MiB chunks), and
four 256 MiB inputs staged in parallel as the executor stages a task's inputs.

Every method reads the same warm page cache (one untimed read first) and writes a fresh local
file; each is run ROUNDS times, interleaved, and the median is printed, then the ratios to the
block-file copy. Uses the stack named by --stack or CLUSTERJOBS_STACK; otherwise starts an
HDFS-only stack in a temporary folder. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from actors import logfmt
from actors.stack import hdfs as stack_hdfs
from actors.stack import orchestrator
from actors.stack.services import Service
from executor import hdfs as edge
from executor.hdfs import Hdfs

MiB = 1 << 20
SIZE = 1024 * MiB
PARTS = 4
USER = "alice"


def _write(fs: Hdfs, path: str, size: int, seed: int) -> None:
    block = os.urandom(MiB)

    def chunks() -> Iterator[bytes]:
        for i in range(size // MiB):
            yield (seed * 100000 + i).to_bytes(8, "big") + block[8:]

    fs.client.write(path, data=chunks(), overwrite=True)


def _block_files(webhdfs: str, path: str, data_dir: Path) -> list[Path]:
    """The DataNode's block files of ``path``, in order."""
    url = f"{webhdfs}/webhdfs/v1{path}?op=GET_BLOCK_LOCATIONS&user.name={USER}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        located = json.loads(resp.read())["LocatedBlocks"]["locatedBlocks"]
    ids = [f"blk_{b['block']['blockId']}" for b in located]
    found = {p.name: p for p in data_dir.rglob("blk_*") if not p.name.endswith(".meta")}
    missing = [i for i in ids if i not in found]
    if missing:
        raise SystemExit(f"block files {missing} not found under {data_dir}")
    return [found[i] for i in ids]


def _java_get(workdir: Path, hdfs_uri: str, path: str, out: Path) -> list[str]:
    home = workdir / "hdfs"
    lib = stack_hdfs.hadoop_lib_dir()
    java = shutil.which("java") or "java"
    opens = [f"--add-opens={p}=ALL-UNNAMED" for p in stack_hdfs.ADD_OPENS]
    return [java, "-Xmx512m", *opens, "-Djava.net.preferIPv4Stack=true",
            f"-Dhadoop.home.dir={home}",
            f"-Dlog4j.configuration=file:{home / 'conf' / 'log4j.properties'}",
            "-cp", os.pathsep.join([str(home / "conf"), str(lib / "*")]),
            "org.apache.hadoop.fs.FsShell", "-fs", hdfs_uri, "-get", path, str(out)]


def run(workdir: Path, info: dict, rounds: int) -> None:
    webhdfs, hdfs_uri = str(info["webhdfs"]), str(info["hdfs"])
    fs = Hdfs(webhdfs, USER)
    base = f"/clusterjobs-bench/stage-in-{uuid.uuid4().hex[:8]}"
    big = f"{base}/one-gib.bin"
    parts = [f"{base}/part-{i}.bin" for i in range(PARTS)]
    local = Path(tempfile.mkdtemp(prefix="bench-stage-in-"))
    try:
        print(f"writing {SIZE // MiB} MiB + {PARTS} x {SIZE // PARTS // MiB} MiB to HDFS ...",
              file=sys.stderr)
        _write(fs, big, SIZE, 0)
        for i, part in enumerate(parts):
            _write(fs, part, SIZE // PARTS, i + 1)
        blocks = _block_files(webhdfs, big, workdir / "hdfs" / "data")
        part_blocks = [b for p in parts for b in _block_files(webhdfs, p, workdir / "hdfs" /
                                                              "data")]

        def out(name: str) -> Path:
            target = local / name
            target.unlink(missing_ok=True)
            return target

        def executor() -> None:
            fs.download(big, out("executor"))

        def stream() -> None:
            saved = edge.RANGE_SIZE
            edge.RANGE_SIZE = SIZE + 1  # one connection, sequential 1 MiB chunks
            try:
                fs.download(big, out("stream"))
            finally:
                edge.RANGE_SIZE = saved

        def java() -> None:
            subprocess.run(_java_get(workdir, hdfs_uri, big, out("java")), check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def curl() -> None:
            subprocess.run(["curl", "-sSfL", "-o", str(out("curl")),
                            f"{webhdfs}/webhdfs/v1{big}?op=OPEN&user.name={USER}"], check=True)

        def block_copy(files: list[Path] = blocks, name: str = "blocks") -> None:
            with open(out(name), "wb") as target:
                for block in files:
                    with open(block, "rb") as source:
                        shutil.copyfileobj(source, target, 4 * MiB)

        def parallel_inputs() -> None:
            with ThreadPoolExecutor(PARTS) as pool:
                list(pool.map(lambda p: fs.download(p, out(Path(p).name)), parts))

        methods: dict[str, Callable[[], None]] = {
            "block-file copy": block_copy,
            "executor stage-in": executor,
            "library stream (1 conn)": stream,
            "curl WebHDFS OPEN": curl,
            "hdfs dfs -get (Java)": java,
            f"executor, {PARTS} inputs parallel": parallel_inputs,
            f"block-file copy of the {PARTS} inputs": lambda: block_copy(part_blocks, "pblocks"),
        }
        block_copy()  # warm the page cache for every method alike
        parallel_inputs()
        times: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(rounds):
            for name, method in methods.items():
                began = time.perf_counter()
                method()
                times[name].append(time.perf_counter() - began)
        for name in ("executor", "stream", "java", "curl", "blocks"):
            produced = local / name
            if produced.stat().st_size != SIZE:
                raise SystemExit(f"{name}: wrote {produced.stat().st_size} bytes, not {SIZE}")
        limit = statistics.median(times["block-file copy"])
        limit_parts = statistics.median(times[f"block-file copy of the {PARTS} inputs"])
        print(f"machine: {os.cpu_count()} cores; 1 GiB file, 128 MiB blocks, warm page cache; "
              f"median of {rounds} rounds; executor ranges {edge.RANGE_SIZE // MiB} MiB on up to "
              f"{edge.RANGE_THREADS} connections; load average {os.getloadavg()[0]:.1f}")
        print(f"{'method':<34} {'seconds':>8} {'MiB/s':>8} {'x block copy':>13}")
        for name, seconds in times.items():
            med = statistics.median(seconds)
            ref = limit_parts if "inputs" in name else limit
            print(f"{name:<34} {med:>8.2f} {SIZE / MiB / med:>8.0f} {med / ref:>13.2f}")
    finally:
        shutil.rmtree(local, ignore_errors=True)
        fs.delete(base, recursive=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", type=Path, default=os.environ.get("CLUSTERJOBS_STACK"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logfmt.configure("warning")
    if args.stack:
        run(Path(args.stack).resolve(), orchestrator.status(Path(args.stack)), args.rounds)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-stage-in-stack-") as tmp:
        workdir = Path(tmp)
        orchestrator.up(workdir, services=[Service("hdfs", stack_hdfs.start)])
        try:
            run(workdir, orchestrator.status(workdir), args.rounds)
        finally:
            orchestrator.down(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
