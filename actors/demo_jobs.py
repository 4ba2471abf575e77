"""The jobs part of `make demo`: the scheduler runs the sample jobs of deploy/samples/ on the
local stack, with live progress, their results read back from HDFS, and who earned what time.

Steps: start `clusterjobs scheduler --stack DIR`; upload the word count's corpus (the project's
README) to alice's datadir; `clusterjobs submit` each sample; draw a progress bar per job until
all are done; print the word count's top words (merged from its instances' outputs) and the
Monte Carlo estimate of pi; then per-job and per-worker time; then, once the scheduler's pusher
has the credits in irreversible blocks and its payout policy has paid them, the contributors
table (`clusterjobs contributors`) and the token balances that moved.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "deploy" / "samples"
DATADIR = "/protocols/alice"
STATE_PATH = "clusterjobs"
DONE = ("finished", "failed", "cancelled")


def run_jobs(workdir: Path, endpoints: dict, *, timeout: float = 120.0) -> bool:
    """Run the samples; True when every job finished."""
    from executor.hdfs import Hdfs

    fs = Hdfs(str(endpoints["webhdfs"]), "alice")
    fs.write_bytes(f"{DATADIR}/data/corpus.txt", (ROOT / "README.md").read_bytes())
    log = workdir / "logs" / "scheduler.log"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "actors.cli", "scheduler", "--stack", str(workdir), "--poll",
         "0.5", "--zk", f"zk://{endpoints['zookeeper']}/{STATE_PATH}", "--payout-every", "2"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        balances = _balances(endpoints)
        url = _wait_for_scheduler(workdir, scheduler)
        print(f"== scheduler up at {url} (log {log})")
        jobs = {}
        for sample in sorted(SAMPLES.glob("*.json")):
            done = subprocess.run([sys.executable, "-m", "actors.cli", "submit", str(sample),
                                   "--stack", str(workdir)], capture_output=True, text=True,
                                  timeout=60)
            if done.returncode != 0:
                print(f"demo: submit {sample.name} failed: {done.stderr.strip()}",
                      file=sys.stderr)
                return False
            jobs[done.stdout.strip().splitlines()[-1]] = sample.name
        print(f"== submitted {len(jobs)} jobs: {', '.join(jobs)}")
        began = time.monotonic()
        final = _progress(url, jobs, began + timeout, scheduler)
        print(f"== all done in {time.monotonic() - began:.1f} s")
        _results(fs, final)
        _summary(final, endpoints)
        _on_chain(url, workdir, endpoints, balances)
        return all(job["state"] == "finished" for job in final.values())
    finally:
        scheduler.terminate()
        try:
            scheduler.wait(20)
        except subprocess.TimeoutExpired:
            scheduler.kill()


def _wait_for_scheduler(workdir: Path, proc: subprocess.Popen, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    endpoint = workdir / "scheduler" / "endpoint.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the scheduler exited ({proc.returncode}); see its log")
        if endpoint.exists():
            url = json.loads(endpoint.read_text())["url"]
            if _get(f"{url}/health") is not None:
                return url
        time.sleep(0.3)
    raise RuntimeError("the scheduler did not become healthy in time")


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def _bar(job: dict, width: int = 30) -> str:
    counts = job.get("counts", {})
    total = max(job.get("instances", 1), 1)
    done = sum(counts.get(s, 0) for s in DONE)
    running = counts.get("running", 0) + counts.get("staging", 0)
    full = round(width * done / total)
    live = min(width - full, round(width * running / total))
    bar = "#" * full + ">" * live + "." * (width - full - live)
    return f"  {job['name']:<14} [{bar}] {done}/{total} {job['state']:<9}"


def _progress(url: str, job_ids: dict[str, str], deadline: float,
              proc: subprocess.Popen) -> dict[str, dict]:
    """Draw the jobs' bars until all are done (redrawn in place on a terminal)."""
    tty = sys.stdout.isatty()
    drawn = 0
    last = ""
    while True:
        jobs = {j: _get(f"{url}/jobs/{j}") or {"name": sample.removesuffix(".json"),
                                                "state": "submitted", "instances": 1}
                for j, sample in job_ids.items()}
        lines = [_bar(job) for job in jobs.values()]
        text = "\n".join(lines)
        if tty:
            if drawn:
                sys.stdout.write(f"\033[{drawn}A")
            sys.stdout.write("".join(line + "\033[K\n" for line in lines))
            drawn = len(lines)
        elif text != last:
            print(text, flush=True)
        last = text
        if all(job.get("state") in DONE for job in jobs.values()):
            return jobs
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the jobs did not finish in time (or the scheduler died)")
        time.sleep(0.4)


def _results(fs, jobs: dict[str, dict]) -> None:
    for job_id, job in jobs.items():
        outputs = [f"{DATADIR}/jobs/{job_id}/{t['instance']}" for t in job["tasks"]
                   if t["state"] == "finished"]
        if job["name"] == "wordcount":
            words: Counter = Counter()
            for folder in outputs:
                for line in fs.read_bytes(f"{folder}/out/counts.tsv").decode().splitlines():
                    count, word = line.split("\t")
                    words[word] += int(count)
            top = ", ".join(f"{w} {n}" for w, n in words.most_common(8))
            print(f"== wordcount of README.md from {len(outputs)} instances "
                  f"({sum(words.values())} words): {top}")
            print(f"   outputs: {DATADIR}/jobs/{job_id}/<instance>/out/counts.tsv")
        elif job["name"] == "montecarlo-pi":
            hits = total = 0
            for folder in outputs:
                h, n = fs.read_bytes(f"{folder}/out/hits.txt").decode().split()
                hits, total = hits + int(h), total + int(n)
            if total:
                print(f"== Monte Carlo over {len(outputs)} instances: pi ~ "
                      f"{4 * hits / total:.5f} from {total:,} points")


def _summary(jobs: dict[str, dict], endpoints: dict) -> None:
    print("== time per job")
    workers: Counter = Counter()
    tasks: Counter = Counter()
    for job in jobs.values():
        run = sum(t["run_us"] or 0 for t in job["tasks"])
        wall = (job["finished_at"] or 0) - job["submitted_at"]
        print(f"  {job['name']:<14} {job['state']:<9} {job['instances']} instances, "
              f"{run / 1e6:6.2f} s of work, {wall:5.1f} s from submission to done")
        for t in job["tasks"]:
            if t["worker"]:
                workers[t["worker"]] += t["run_us"] or 0
                tasks[t["worker"]] += 1
    print("== time per worker (executor-measured run time)")
    for worker, us in sorted(workers.items()):
        print(f"  {worker:<12} {tasks[worker]:3} tasks {us / 1e6:7.3f} s")


def _balances(endpoints: dict) -> dict[str, str]:
    """The sample contributors' JOB balances."""
    from scheduler.chain import ChainClient

    sample = endpoints.get("sample") or {}
    client = ChainClient(str(endpoints["nodeos"]))
    accounts = [*sample.get("workers", []), *sorted(set(sample.get("dispatchers", {}).values()))]
    return {a: next((b for b in client.balances(a, "eosio.token") if b.endswith(" JOB")),
                    "0.0000 JOB") for a in accounts}


def _on_chain(url: str, workdir: Path, endpoints: dict, before: dict[str, str],
              timeout: float = 30.0) -> None:
    """Wait for the credits to be confirmed and paid, then print contributors and payments."""
    from scheduler import contributors
    from scheduler.chain import ChainClient

    deadline = time.monotonic() + timeout
    client = ChainClient(str(endpoints["nodeos"]))
    researcher = (endpoints.get("sample") or {}).get("researcher", "alice")
    while time.monotonic() < deadline:
        accounting = _get(f"{url}/accounting") or {}
        table = contributors.gather(client, contributors.master_state(
            endpoints.get("mesos_masters") or []))
        mine = [r for r in table if r["researcher"] == researcher]
        # Paid when what is left is worth less than one token unit (the policy waits).
        settled = all(r["paid"] is not None and r["unpaid_us"] < 1_000_000 for r in mine)
        if accounting.get("outbox") == 0 and mine and settled:
            break
        time.sleep(1.0)
    print(f"== contributors (clusterjobs contributors --stack {workdir})")
    print("\n".join("  " + line for line in contributors.render(
        [r for r in table if r["researcher"] in (researcher, None)]).splitlines()))
    print("== tokens paid out by the payout policy (funder alicefund@cjpay)")
    after = _balances(endpoints)
    for account, old in before.items():
        new = after.get(account, old)
        moved = float(new.split()[0]) - float(old.split()[0])
        print(f"  {account:<12} {old:>16} -> {new:>16}  (+{moved:.4f} JOB)")
