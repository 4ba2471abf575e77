"""`clusterjobs scheduler`, `clusterjobs status` and `clusterjobs cancel`.

Flags and environment in the Mesos/Marathon style; `--stack DIR` takes every endpoint from a
local stack. An active scheduler started with `--stack` writes its URL to
``DIR/scheduler/endpoint.json`` and uses (creating it once) the bearer token in
``DIR/scheduler/token``, so `status` and `cancel` find both from `--stack DIR` alone.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from actors.stack import prometheus
from scheduler.chain_view import ChainViewError
from scheduler.http import HttpError
from scheduler.store import StoreError


class SchedulerCliError(Exception):
    """An operator error of these verbs (bad flag, unreachable scheduler, unknown job)."""


OPERATOR_ERRORS: tuple[type[BaseException], ...] = (SchedulerCliError, StoreError, HttpError,
                                                    ChainViewError)
DEFAULT_STACK = ".stack"


def add_parser(commands) -> None:
    run = commands.add_parser("scheduler", help="run the clusterjobs Mesos framework")
    env = os.environ.get
    run.add_argument("--stack", help="take every endpoint from this local stack's folder")
    run.add_argument("--master", default=env("MESOS_MASTER"),
                     help="Mesos masters: zk://host:port/mesos or host:port (MESOS_MASTER)")
    run.add_argument("--zk", default=env("CLUSTERJOBS_ZK"),
                     help="state path: zk://host:port/clusterjobs (CLUSTERJOBS_ZK)")
    run.add_argument("--webhdfs", default=env("CLUSTERJOBS_WEBHDFS"),
                     help="WebHDFS base URL (CLUSTERJOBS_WEBHDFS)")
    run.add_argument("--nodeos", default=env("CLUSTERJOBS_NODEOS"),
                     help="nodeos HTTP URL (CLUSTERJOBS_NODEOS)")
    run.add_argument("--port", type=int, default=int(env("PORT0", "0")),
                     help="HTTP port (default PORT0, else any free port)")
    run.add_argument("--host", default=env("HOST", "127.0.0.1"), help="HTTP address")
    run.add_argument("--framework-name", default="clusterjobs")
    run.add_argument("--role", default=env("MESOS_ROLE", "*"))
    run.add_argument("--principal", default=env("MESOS_PRINCIPAL"))
    run.add_argument("--user", default=env("MESOS_USER", "root"),
                     help="user the tasks run as on the agents")
    run.add_argument("--failover-timeout", type=float, default=7 * 24 * 3600.0,
                     help="seconds Mesos keeps the tasks of a disconnected scheduler "
                          "(default one week)")
    run.add_argument("--hdfs-user", default=env("HADOOP_USER_NAME", "clusterjobs"))
    run.add_argument("--registry-account", default="registry")
    run.add_argument("--jobs-account", default="jobs")
    run.add_argument("--dispatcher-accounts", default=env("CLUSTERJOBS_DISPATCHER_ACCOUNTS"),
                     help="master host:port=account,... (dispatcher credits)")
    run.add_argument("--executor-command", default=env("CLUSTERJOBS_EXECUTOR_COMMAND"),
                     help="command that starts the executor on an agent "
                          "(CLUSTERJOBS_EXECUTOR_COMMAND; default clusterjobs-executor from "
                          "this installation)")
    run.add_argument("--poll", type=float, default=2.0, help="seconds between HDFS scans")
    run.add_argument("--retention", type=float, default=3600.0,
                     help="seconds a finished job stays in ZooKeeper after it is archived")
    run.add_argument("--zk-session-timeout", type=float, default=10.0,
                     help="seconds before a dead scheduler's lock passes to a standby")
    run.add_argument("--chain-account", default=env("CLUSTERJOBS_CHAIN_ACCOUNT", "jobs@pusher"),
                     help="the pusher's signer NAME[@PERMISSION] (CLUSTERJOBS_CHAIN_ACCOUNT; "
                          "default jobs@pusher)")
    run.add_argument("--chain-key-file", default=env("CLUSTERJOBS_CHAIN_KEY_FILE"),
                     help="its private key(s), one per line (or CLUSTERJOBS_CHAIN_KEY; with "
                          "--stack the dev chain's key); none: accounting off")
    run.add_argument("--payout-every", type=float, default=0.0, metavar="SECONDS",
                     help="pay each contributor's unpaid time at most this often (0: off)")
    run.add_argument("--payout-threshold", type=float, default=0.0, metavar="SECONDS",
                     help="pay a contributor at once when its unpaid time reaches this (0: off)")
    run.add_argument("--payout-permission", default="cjpay",
                     help="the funder's permission linked to jobs::payout that holds the "
                          "chain key (default cjpay)")
    run.add_argument("--time-tolerance", type=float, default=1.0, metavar="SECONDS",
                     help="flag a task whose executor-reported run time exceeds the observed "
                          "TASK_RUNNING-to-terminal interval by more (default 1)")
    run.add_argument("--archive-every", type=float, default=60.0, metavar="SECONDS",
                     help="archive paid job rows past the credit window with removejob this "
                          "often (0: off; keeps the jobs account's chain RAM bounded)")
    run.add_argument("--archive-after", type=float, default=24 * 3600.0, metavar="SECONDS",
                     help="the jobs contract's credit window: rows younger stay (default 86400)")
    run.add_argument("--archive-batch", type=int, default=100, metavar="N",
                     help="removejob actions per transaction (default 100)")
    run.add_argument("--auth-token-file", default=env("CLUSTERJOBS_AUTH_TOKEN_FILE"),
                     help="file with the bearer token for state-changing HTTP calls "
                          "(or CLUSTERJOBS_AUTH_TOKEN)")
    run.set_defaults(func=run_scheduler)

    status = commands.add_parser("status", help="jobs and their progress")
    status.add_argument("job", nargs="?", help="one job id (live progress in a terminal)")
    status.add_argument("--json", action="store_true", help="print JSON once")
    _client_flags(status)
    status.set_defaults(func=run_status)

    cancel = commands.add_parser("cancel", help="cancel a job: kill its tasks, start none")
    cancel.add_argument("job")
    _client_flags(cancel)
    cancel.set_defaults(func=run_cancel)


def _client_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", default=None,
                        help=f"local stack folder (default {DEFAULT_STACK}/)")
    parser.add_argument("--scheduler", default=os.environ.get("CLUSTERJOBS_SCHEDULER"),
                        help="scheduler URL (CLUSTERJOBS_SCHEDULER); default from --stack")
    parser.add_argument("--auth-token-file", default=os.environ.get(
        "CLUSTERJOBS_AUTH_TOKEN_FILE"))


# -- the scheduler --------------------------------------------------------------------------------
def _require(value: str | None, flag: str) -> str:
    if not value:
        raise SchedulerCliError(f"{flag} is required (or --stack DIR)")
    return value


def stack_token(stack: Path) -> str:
    """The local stack's scheduler token, created on first use (mode 0600)."""
    path = stack / "scheduler" / "token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def _read_token(path: str | None) -> str | None:
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError as exc:
            raise SchedulerCliError(f"--auth-token-file {path}: {exc.strerror}") from None
    return os.environ.get("CLUSTERJOBS_AUTH_TOKEN") or None


def parse_dispatchers(text: str | None) -> dict[str, str]:
    out = {}
    for item in filter(None, (text or "").split(",")):
        master, sep, account = item.partition("=")
        if not sep or not master or not account:
            raise SchedulerCliError(f"--dispatcher-accounts: expected host:port=account, "
                                    f"got {item!r}")
        out[master.strip()] = account.strip()
    return out


def options_from_args(args: argparse.Namespace):
    from scheduler.service import Options

    dispatchers = parse_dispatchers(args.dispatcher_accounts)
    token = _read_token(args.auth_token_file)
    master, zk, webhdfs, nodeos = args.master, args.zk, args.webhdfs, args.nodeos
    registry, jobs = args.registry_account, args.jobs_account
    hdfs_user = args.hdfs_user
    if args.stack:
        import getpass

        from actors.stack import orchestrator

        hdfs_user = getpass.getuser()  # the local NameNode's superuser

        info = orchestrator.status(Path(args.stack))
        master = master or info["mesos"]
        zk = zk or f"zk://{info['zookeeper']}/clusterjobs"
        webhdfs, nodeos = webhdfs or info["webhdfs"], nodeos or info["nodeos"]
        sample = info.get("sample") or {}
        registry = sample.get("registry_account", registry)
        jobs = sample.get("jobs_account", jobs)
        dispatchers = {**sample.get("dispatchers", {}), **dispatchers}
        token = token or stack_token(Path(args.stack))
    executor = args.executor_command or _default_executor()
    keys = _chain_keys(args.chain_key_file, bool(args.stack))
    return Options(master=_require(master, "--master"), zk=_require(zk, "--zk"),
                   webhdfs=_require(webhdfs, "--webhdfs"), nodeos=_require(nodeos, "--nodeos"),
                   port=args.port, host=args.host, framework_name=args.framework_name,
                   role=args.role, principal=args.principal, user=args.user,
                   failover_timeout=args.failover_timeout, hdfs_user=hdfs_user,
                   registry_account=registry, jobs_account=jobs,
                   dispatcher_accounts=dispatchers, executor_command=executor,
                   poll_seconds=args.poll, retention_seconds=args.retention, auth_token=token,
                   zk_session_timeout=args.zk_session_timeout,
                   chain_signer=args.chain_account, chain_keys=keys,
                   payout_every_seconds=_non_negative(args.payout_every, "--payout-every"),
                   payout_threshold_seconds=_non_negative(args.payout_threshold,
                                                          "--payout-threshold"),
                   payout_permission=args.payout_permission,
                   time_tolerance_seconds=_non_negative(args.time_tolerance,
                                                        "--time-tolerance"),
                   archive_every_seconds=_non_negative(args.archive_every, "--archive-every"),
                   archive_after_seconds=_non_negative(args.archive_after, "--archive-after"),
                   archive_batch=_at_least_one(args.archive_batch, "--archive-batch"))


def _at_least_one(value: int, flag: str) -> int:
    if value < 1:
        raise SchedulerCliError(f"{flag}: {value} is not a whole number >= 1")
    return value


def _non_negative(value: float, flag: str) -> float:
    if not value >= 0:  # also refuses nan
        raise SchedulerCliError(f"{flag}: {value} is not a number of seconds >= 0")
    return value


def _chain_keys(key_file: str | None, stack: bool) -> tuple[str, ...]:
    """The pusher's keys; () turns accounting off."""
    from scheduler import chain

    if key_file or os.environ.get(chain.KEY_ENV):
        try:
            return chain.load_keys(key_file)
        except chain.ChainError as exc:
            raise SchedulerCliError(f"--chain-key-file: {exc}") from None
    if stack:
        from actors.stack import devchain

        return (devchain.DEV_PRIVATE_KEY,)  # the local stack's jobs@pusher holds the dev key
    return ()


def _default_executor() -> str:
    """The executor console script next to this Python (agents share this machine's venv on
    the local stack; on a cluster, pass --executor-command)."""
    script = Path(sys.executable).with_name("clusterjobs-executor")
    if script.exists():
        return str(script)
    return f"{sys.executable} -m executor.main"


def run_scheduler(args: argparse.Namespace) -> int:
    import logging

    from scheduler.service import SchedulerService

    logging.getLogger("hdfs").setLevel(logging.WARNING)  # one line per WebHDFS call otherwise
    options = options_from_args(args)
    service = SchedulerService(options)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: service.stop())
    if args.stack:
        _publish_endpoint(Path(args.stack), service)
    service.run()
    return 0


def _publish_endpoint(stack: Path, service) -> None:
    """Once the HTTP server runs, write its URL for `status`/`cancel --stack` (the active one
    wins: a standby writes it only when it takes over)."""
    import threading

    def publish() -> None:
        while not service.active and not service.stopping.is_set():
            time.sleep(0.2)
        if service.http is None:
            return
        folder = stack / "scheduler"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"endpoint.json.{os.getpid()}"
        tmp.write_text(json.dumps({"url": f"http://{service.options.host}:"
                                          f"{service.http.server_port}", "pid": os.getpid()}))
        tmp.replace(folder / "endpoint.json")
        # The stack's Prometheus scrapes the active scheduler under the deployment's job name,
        # so `clusterjobs report --stack` and the dashboard's queries see it.
        prometheus.add_target(stack, "clusterjobs-scheduler",
                              f"{service.options.host}:{service.http.server_port}")

    threading.Thread(target=publish, daemon=True).start()


# -- status and cancel ----------------------------------------------------------------------
def _endpoint(args: argparse.Namespace) -> str:
    if args.scheduler:
        return args.scheduler.rstrip("/")
    stack = Path(args.stack or DEFAULT_STACK)
    path = stack / "scheduler" / "endpoint.json"
    try:
        return json.loads(path.read_text())["url"]
    except (OSError, ValueError, KeyError):
        raise SchedulerCliError(f"no running scheduler known in {stack} (start one: "
                                f"clusterjobs scheduler --stack {stack}; or pass "
                                f"--scheduler URL)") from None


def _request(url: str, *, method: str = "GET", token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": exc.reason}
    except (urllib.error.URLError, OSError) as exc:
        raise SchedulerCliError(f"scheduler at {url} does not answer: "
                                f"{getattr(exc, 'reason', exc)}") from None


def _get_job(base: str, job_id: str) -> dict:
    code, body = _request(f"{base}/jobs/{job_id}")
    if code == 404:
        raise SchedulerCliError(f"unknown job {job_id}")
    if code != 200:
        raise SchedulerCliError(f"scheduler answered {code}: {body.get('error', body)}")
    return body


def run_status(args: argparse.Namespace) -> int:
    base = _endpoint(args)
    if args.job is None:
        code, body = _request(f"{base}/jobs")
        if code != 200:
            raise SchedulerCliError(f"scheduler answered {code}: {body.get('error', body)}")
        if args.json:
            print(json.dumps(body["jobs"], indent=1))
            return 0
        print(f"{'JOB':44} {'STATE':10} {'DONE':>9}  RESEARCHER")
        for job in body["jobs"]:
            done = sum(job["counts"].get(s, 0) for s in ("finished", "failed", "cancelled"))
            print(f"{job['id']:44} {job['state']:10} {done:>4}/{job['instances']:<4}  "
                  f"{job['researcher']}")
        code, accounting = _request(f"{base}/accounting")
        if code == 200:
            from scheduler import pusher_service

            print("\n".join(pusher_service.describe(accounting)))
        return 0
    job = _get_job(base, args.job)
    if args.json or not sys.stdout.isatty():
        print(json.dumps(job, indent=1) if args.json else progress_line(job))
        return 0
    while True:
        sys.stdout.write("\r" + progress_line(job) + "\033[K")
        sys.stdout.flush()
        if job["state"] in ("finished", "failed", "cancelled"):
            sys.stdout.write("\n")
            return 0 if job["state"] == "finished" else 1
        time.sleep(1.0)
        job = _get_job(base, args.job)


def progress_line(job: dict, width: int = 30) -> str:
    """``<id> [#####-----] 3/5 running (2 running, 1 failed)``."""
    counts = job.get("counts", {})
    total = max(job.get("instances", 0), 1)
    done = sum(counts.get(s, 0) for s in ("finished", "failed", "cancelled"))
    filled = round(width * done / total)
    detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    flagged = sum(1 for t in job.get("tasks") or () if "time_discrepancy" in (t.get("flags") or ()))
    trust = f"; {flagged} flagged: time discrepancy" if flagged else ""
    return (f"{job['id']} [{'#' * filled}{'-' * (width - filled)}] {done}/{total} "
            f"{job['state']} ({detail}){trust}")


def run_cancel(args: argparse.Namespace) -> int:
    base = _endpoint(args)
    token = _read_token(args.auth_token_file)
    if token is None and not args.scheduler:
        path = Path(args.stack or DEFAULT_STACK) / "scheduler" / "token"
        token = path.read_text().strip() if path.exists() else None
    if token is None:
        raise SchedulerCliError("cancel needs the scheduler's token: --auth-token-file, "
                                "CLUSTERJOBS_AUTH_TOKEN, or --stack DIR")
    code, body = _request(f"{base}/jobs/{args.job}/cancel", method="POST", token=token)
    if code != 200:
        raise SchedulerCliError(f"cancel {args.job}: {body.get('error', code)}")
    print(f"{body['id']} {body['state']}")
    return 0
