"""The scheduler process: pymesos, ZooKeeper, HDFS and the chain around scheduler.core.

Threads: pymesos's IO thread (its callbacks only enqueue: an exception there kills its loop),
the intake thread (HDFS scans and chain refresh), the archive thread (job records to HDFS), the
HTTP server, and the one loop here that owns the core: it takes events from the queue, calls
the core, and carries out the effects in order: ZooKeeper first, then Mesos, then the status
update's acknowledgement.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from kazoo.exceptions import LockTimeout

from scheduler import effects as fx
from scheduler import metrics
from scheduler.chain_view import ChainSnapshot, ChainView
from scheduler.core import Config, Core, OfferView, Resources, Update
from scheduler.intake import Accepted, Intake, owner_of
from scheduler.store import Store

log = logging.getLogger("clusterjobs.scheduler")
EXECUTOR_ID = "clusterjobs-executor"
EXECUTOR_RESOURCES = Resources(0.1, 64.0, 0.0)
RECONCILE_EVERY_S = 60.0
TICK_S = 0.5
UPDATE_BATCH = 256
ONE_WEEK_S = 7 * 24 * 3600.0


@dataclass
class Options:
    """`clusterjobs scheduler`'s flags (see scheduler/service_cli.py)."""

    master: str
    zk: str
    webhdfs: str
    nodeos: str
    port: int = 0
    host: str = "127.0.0.1"
    framework_name: str = "clusterjobs"
    role: str = "*"
    principal: str | None = None
    user: str = "root"
    failover_timeout: float = ONE_WEEK_S
    hdfs_user: str = "clusterjobs"
    registry_account: str = "registry"
    jobs_account: str = "jobs"
    dispatcher_accounts: dict[str, str] = field(default_factory=dict)
    executor_command: str = EXECUTOR_ID
    poll_seconds: float = 2.0
    chain_refresh_seconds: float = 10.0
    retention_seconds: float = 3600.0
    auth_token: str | None = None
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    zk_session_timeout: float = 10.0
    # The pusher's signer and keys (scheduler/pusher_service.py); no key: accounting off.
    chain_signer: str = "jobs@pusher"
    chain_keys: tuple[str, ...] = field(default=(), repr=False)
    # The payout policy (scheduler/payout_service.py); 0 and 0: no payouts.
    payout_every_seconds: float = 0.0
    payout_threshold_seconds: float = 0.0
    payout_permission: str = "cjpay"
    # Archiving of paid job rows past the contract's credit window (scheduler/row_archive.py).
    # Executor time beyond the observed interval flagged on the task and in metrics.
    time_tolerance_seconds: float = 1.0
    archive_every_seconds: float = 60.0
    archive_after_seconds: float = 24 * 3600.0
    archive_batch: int = 100


class _Callbacks:
    """pymesos's Scheduler interface: every callback only enqueues."""

    def __init__(self, events: queue.Queue) -> None:
        self.events = events

    def registered(self, driver, framework_id, master_info) -> None:
        self.events.put(("subscribed", framework_id["value"], dict(master_info)))

    def reregistered(self, driver, master_info) -> None:
        self.events.put(("subscribed", driver.framework_id, dict(master_info)))

    def disconnected(self, driver) -> None:
        self.events.put(("disconnected",))

    def resourceOffers(self, driver, offers) -> None:
        self.events.put(("offers", offers))

    def offerRescinded(self, driver, offer_id) -> None:
        pass  # an ACCEPT on a rescinded offer gets TASK_DROPPED/LOST: the core relaunches

    def statusUpdate(self, driver, status) -> None:
        self.events.put(("update", status))

    def frameworkMessage(self, driver, executor_id, agent_id, data) -> None:
        pass

    def slaveLost(self, driver, agent_id) -> None:
        self.events.put(("agent_lost", agent_id["value"]))

    def executorLost(self, driver, executor_id, agent_id, status) -> None:
        self.events.put(("executor_lost", agent_id["value"]))

    def error(self, driver, message) -> None:
        self.events.put(("error", message))

    def processHeartBeat(self, driver) -> None:
        pass

    def inverseOffers(self, driver, offers) -> None:
        pass


def offer_view(offer: dict) -> OfferView:
    """A Mesos offer (dict) as placement sees it. Whether our executor already runs on the
    agent (its resources then already taken) comes from the offer's ``executor_ids``."""
    totals = {"cpus": 0.0, "mem": 0.0, "disk": 0.0}
    for res in offer.get("resources", []):
        if res.get("name") in totals and res.get("type", "SCALAR") == "SCALAR":
            totals[res["name"]] += float(res["scalar"]["value"])
    attributes = {}
    for attr in offer.get("attributes", []):
        if attr.get("type") == "TEXT":
            attributes[attr["name"]] = attr["text"]["value"]
        elif attr.get("type") == "SCALAR":
            attributes[attr["name"]] = f"{attr['scalar']['value']:g}"
    agent_id = offer["agent_id"]["value"]
    running = any(e.get("value") == EXECUTOR_ID for e in offer.get("executor_ids", []))
    return OfferView(offer_id=offer["id"]["value"], agent_id=agent_id,
                     hostname=offer.get("hostname", ""), attributes=attributes,
                     available=Resources(totals["cpus"], totals["mem"], totals["disk"]),
                     executor_running=running)


def parse_update(status: dict) -> Update:
    data = None
    raw = status.get("data")
    if raw:
        try:
            data = json.loads(base64.b64decode(raw))
        except (ValueError, TypeError):
            data = None
    return Update(task_id=status["task_id"]["value"], state=status["state"],
                  agent_id=(status.get("agent_id") or {}).get("value"),
                  reason=status.get("reason"), message=status.get("message"),
                  data=data if isinstance(data, dict) else None,
                  timestamp=status.get("timestamp"), reliable=bool(status.get("uuid")))


def _scalar(name: str, value: float) -> dict:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


class SchedulerService:
    """One scheduler process: stands by for the lock, then runs until stopped."""

    def __init__(self, options: Options) -> None:
        from executor.hdfs import Hdfs
        from scheduler import spec as spec_module

        self.options = options
        self.spec = spec_module
        self.events: queue.Queue = queue.Queue()
        self.store = Store(options.zk, timeout=options.zk_session_timeout)
        self.hdfs = Hdfs(options.webhdfs, options.hdfs_user)
        self.chain = ChainView(options.nodeos, registry=options.registry_account,
                               jobs=options.jobs_account)
        self.core = Core(config=Config(backoff_base_s=options.backoff_base_seconds,
                                       backoff_max_s=options.backoff_max_seconds,
                                       retention_s=options.retention_seconds,
                                       time_tolerance_s=options.time_tolerance_seconds))
        self.lock = threading.RLock()   # held by the loop while it changes the core
        self.snapshot = ChainSnapshot((), {})
        self.driver = None
        self.subscribed = False
        self.active = False
        self.stopping = threading.Event()
        self.metrics = metrics.SchedulerMetrics()
        self.offers_wanted: bool | None = None
        self.last_reconcile = 0.0
        self.archive_queue: queue.Queue = queue.Queue()
        self.intake = Intake(self.hdfs, self._admit, parse_spec=spec_module.parse_spec,
                             spec_error=spec_module.SpecError,
                             new_job_id=spec_module.new_job_id,
                             owner=owner_of(options.zk))
        self.http = None
        self.pusher = None  # set by scheduler/pusher_service.py once the pusher runs
        self.payouts = None  # set by scheduler/payout_service.py when a policy is on
        self.row_archiver = None  # set by scheduler/row_archive.py when archiving is on

    # -- life cycle ------------------------------------------------------------------------------
    def run(self) -> None:
        """Serve HTTP, wait for the lock (standby), then schedule until stop()."""
        from scheduler.http import serve

        self.store.start()
        self.http = serve(self, self.options.host, self.options.port)
        lock = self.store.lock(f"{socket.gethostname()}:{os.getpid()}")
        log.info("waiting for the scheduler lock (standby)", extra={"zk": self.options.zk})
        while not self.stopping.is_set():
            try:
                if lock.acquire(timeout=1.0):
                    break
            except LockTimeout:
                continue
        if self.stopping.is_set():
            return
        # Losing the ZooKeeper session loses the lock: another scheduler may take over, so
        # this one must stop acting at once (Marathon restarts it as a standby).
        self.store.zk.add_listener(self._on_zk_state)
        self.active = True
        log.info("scheduler lock acquired: active")
        self._load()
        self._start_driver()
        for target in (self._intake_loop, self._archive_loop):
            threading.Thread(target=target, daemon=True, name=target.__name__).start()
        from scheduler import payout_service, pusher_service, row_archive

        pusher_service.start(self)
        payout_service.start(self)
        row_archive.start(self)
        try:
            self._loop()
        finally:
            if self.driver is not None:
                self.driver.stop(failover=True)  # never TEARDOWN: tasks keep running
            self.http.shutdown()
            self.store.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.events.put(("stop",))

    def _on_zk_state(self, state) -> None:
        if state == "LOST" and not self.stopping.is_set():
            log.error("ZooKeeper session lost: the scheduler lock is gone; exiting")
            os._exit(3)

    def _load(self) -> None:
        jobs = self.store.load(self.spec.parse_spec)
        self.core.load(jobs, self.store.leaders())
        self.core.framework_id = self.store.framework_id() or ""
        self._run_effects(None)
        log.info("state loaded", extra={"jobs": len(jobs),
                                        "framework_id": self.core.framework_id or "(new)"})

    def _start_driver(self) -> None:
        from pymesos import MesosSchedulerDriver

        opts = self.options
        info = {"user": opts.user, "name": opts.framework_name, "role": opts.role,
                "checkpoint": True, "failover_timeout": opts.failover_timeout,
                "hostname": socket.gethostname(),
                "capabilities": [{"type": "TASK_KILLING_STATE"}, {"type": "PARTITION_AWARE"}]}
        if self.http is not None:
            info["webui_url"] = f"http://{opts.host}:{self.http.server_port}/"
        if opts.principal:
            info["principal"] = opts.principal
        if self.core.framework_id:
            info["id"] = {"value": self.core.framework_id}
        self.driver = MesosSchedulerDriver(_Callbacks(self.events), info, opts.master,
                                           use_addict=True, implicit_acknowledgements=False,
                                           principal=opts.principal)
        self.driver.start()

    # -- the loop --------------------------------------------------------------------------------
    def _loop(self) -> None:
        last_tick = 0.0
        held = None
        while not self.stopping.is_set():
            if held is not None:
                event, held = held, None
            else:
                try:
                    event = self.events.get(timeout=TICK_S)
                except queue.Empty:
                    event = None
            with self.lock:
                if event is not None and event[0] == "update":
                    # Status updates waiting together are applied together: one pipelined
                    # ZooKeeper round trip for all, then their acknowledgements.
                    statuses = [event[1]]
                    while len(statuses) < UPDATE_BATCH:
                        try:
                            more = self.events.get_nowait()
                        except queue.Empty:
                            break
                        if more[0] != "update":
                            held = more
                            break
                        statuses.append(more[1])
                    self._updates(statuses)
                elif event is not None:
                    if event[0] == "stop":
                        return
                    self._handle(event)
                now = time.time()
                # tick() and wants_offers() walk every instance: twice a second is enough.
                if now - last_tick >= TICK_S:
                    last_tick = now
                    self.core.tick(now)
                    self._run_effects(None)
                    self._offer_interest(now)
                    if self.subscribed and now - self.last_reconcile > RECONCILE_EVERY_S:
                        self._reconcile(implicit=False)

    def _handle(self, event: tuple) -> None:
        kind = event[0]
        now = time.time()
        if kind == "subscribed":
            self._subscribed(event[1], event[2])
        elif kind == "disconnected":
            self.subscribed = False
            self.offers_wanted = None
        elif kind == "offers":
            self._offers(event[1], now)
        elif kind == "update":
            self._updates([event[1]])
        elif kind == "admit":
            accepted, future = event[1], event[2]
            try:
                added = self.core.add_job(accepted.job_id, accepted.spec, accepted.datadir, now)
                self._run_effects(None)
                future.set_result(added)
            except BaseException as exc:
                future.set_exception(exc)
                raise
        elif kind == "archived":
            self.core.archived(event[1], now)
        elif kind == "cancel":
            job_id, future = event[1], event[2]
            if job_id not in self.core.jobs:
                future.set_result(None)
            else:
                future.set_result(self.core.cancel(job_id, now))
        elif kind in ("agent_lost", "executor_lost"):
            log.info(kind.replace("_", " "), extra={"agent_id": event[1]})
        elif kind == "error":
            log.error("Mesos error event", extra={"message": event[1]})

    def _updates(self, statuses: list[dict]) -> None:
        now = time.time()
        for status in statuses:
            update = parse_update(status)
            self.metrics.update(update.state)
            self.core.on_update(update, now)
        self._run_effects(None)
        # Acknowledge only now: the updates' consequences (and credits) are durable.
        for status in statuses:
            if status.get("uuid"):
                self._call(self.driver.acknowledgeStatusUpdate, status)

    def _subscribed(self, framework_id: str, master_info: dict) -> None:
        if framework_id != self.core.framework_id:
            self.store.save_framework_id(framework_id)
            self.core.framework_id = framework_id
        master = f"{master_info.get('hostname')}:{master_info.get('port')}"
        account = self.options.dispatcher_accounts.get(master)
        self.core.set_leader(account, time.time())
        self.subscribed = True
        self.offers_wanted = None
        log.info("subscribed", extra={"framework_id": framework_id, "master": master,
                                      "dispatcher": account or "(none)"})
        self._reconcile(implicit=True)

    def _reconcile(self, *, implicit: bool) -> None:
        """Explicit reconciliation with agent ids (pymesos's reconcileTasks drops them), then,
        on (re)subscription, implicit reconciliation (tasks the master knows and we forgot)."""
        self.last_reconcile = time.time()
        targets = self.core.reconcile_targets()
        fid = {"value": self.core.framework_id}
        if targets:
            tasks = [{"task_id": {"value": t}, **({"agent_id": {"value": a}} if a else {})}
                     for t, a in targets]
            self._call(self.driver._send, {"type": "RECONCILE", "framework_id": fid,
                                           "reconcile": {"tasks": tasks}})
        if implicit:
            self._call(self.driver._send, {"type": "RECONCILE", "framework_id": fid,
                                           "reconcile": {"tasks": []}})

    def _offers(self, offers: list, now: float) -> None:
        self.metrics.offers_received.inc(len(offers))
        views = [offer_view(o) for o in offers]
        total = Resources(sum(v.available.cpus for v in views),
                          sum(v.available.mem for v in views),
                          sum(v.available.disk for v in views))
        started = time.perf_counter()
        placement = self.core.place_offers(views, now, eligible=self.snapshot.eligible,
                                           executor_resources=EXECUTOR_RESOURCES,
                                           cluster_total=total)
        self.metrics.placement_seconds.observe(time.perf_counter() - started)
        self._run_effects(placement.unused_offers)
        if placement.unplaced:
            first = next(iter(placement.unplaced.items()))
            log.debug("unplaced tasks", extra={"count": len(placement.unplaced),
                                               "example": f"{first[0]}: {first[1]}"})

    def _offer_interest(self, now: float) -> None:
        """SUPPRESS when nothing waits, REVIVE when work arrives."""
        if not self.subscribed:
            return
        wanted = self.core.wants_offers(now)
        if wanted != self.offers_wanted:
            self.offers_wanted = wanted
            self._call(self.driver.reviveOffers if wanted else self.driver.suppressOffers)

    # -- effects -----------------------------------------------------------------------------------
    def _run_effects(self, unused_offers) -> None:
        launches: dict[str, list[dict]] = {}
        kills: list[fx.KillTask] = []
        archives: list[str] = []
        # Instance writes are gathered (the last state of each, every credit) and pipelined;
        # everything Mesos hears of waits until they are durable.
        saves: dict[tuple[str, int], tuple] = {}
        for effect in self.core.take_effects():
            if isinstance(effect, fx.SaveJob):
                job = self.core.jobs[effect.job_id]
                if effect.new:
                    self.store.create_job(job)
                else:
                    self.store.save_job(job)
            elif isinstance(effect, fx.SaveInstance):
                job = self.core.jobs[effect.job_id]
                inst = job.instances[effect.index]
                key = (effect.job_id, effect.index)
                earlier = saves[key][2] if key in saves else ()
                saves[key] = (effect.job_id, inst, earlier + effect.credits)
                if effect.credits:
                    self.metrics.credited(effect.credits)
                self.metrics.discrepancy(job.spec.researcher, effect.discrepancy_us,
                                         effect.flagged)
                if inst.done:
                    last = inst.history[-1][1] if inst.history else "none"
                    self.metrics.instance_done(job.spec.researcher, inst.state, last,
                                               inst.run_us)
            elif isinstance(effect, fx.LaunchTask):
                launches.setdefault(effect.offer_id, []).append(self._task_info(effect))
            elif isinstance(effect, fx.KillTask):
                kills.append(effect)
            elif isinstance(effect, fx.ArchiveJob):
                archives.append(effect.job_id)
            elif isinstance(effect, fx.ForgetJob):
                self.store.delete_job(effect.job_id)
            elif isinstance(effect, fx.SaveLeaders):
                self.store.save_leaders(self.core.leaders)
        if saves:
            self.store.save_instances(list(saves.values()))
        for job_id in archives:
            self.archive_queue.put(job_id)
        for kill in kills:
            self._call(self.driver._send, {
                "type": "KILL", "framework_id": {"value": self.core.framework_id},
                "kill": {"task_id": {"value": kill.task_id},
                         "agent_id": {"value": kill.agent_id}}})
        for offer_id, tasks in launches.items():
            self.metrics.launches.inc(len(tasks))
            self._call(self.driver.launchTasks, {"value": offer_id}, tasks,
                       {"refuse_seconds": 0.0})
        if unused_offers:
            refuse = 60.0 if self.offers_wanted is False else 5.0
            self.metrics.offers_declined.inc(len(unused_offers))
            self._call(self.driver.declineOffer, [{"value": o} for o in unused_offers],
                       {"refuse_seconds": refuse})

    def _task_info(self, launch: fx.LaunchTask) -> dict:
        from executor.info import executor_info
        from executor.workunit import build_workunit

        job = self.core.jobs[launch.job_id]
        spec = job.spec
        unit = build_workunit(spec, launch.job_id, launch.index, launch.attempt, job.datadir,
                              spec.researcher)
        resources = [_scalar("cpus", spec.cpus), _scalar("mem", spec.mem)]
        if spec.disk > 0:
            resources.append(_scalar("disk", spec.disk))
        labels = [{"key": "job", "value": launch.job_id},
                  {"key": "instance", "value": str(launch.index)},
                  {"key": "researcher", "value": spec.researcher}]
        return {"name": f"{spec.name} #{launch.index}", "task_id": {"value": launch.task_id},
                "agent_id": {"value": launch.agent_id}, "resources": resources,
                "executor": executor_info(EXECUTOR_ID, command=self.options.executor_command,
                                          webhdfs=self.options.webhdfs,
                                          cpus=EXECUTOR_RESOURCES.cpus,
                                          mem=EXECUTOR_RESOURCES.mem),
                "data": base64.b64encode(json.dumps(unit).encode()).decode(),
                "labels": {"labels": labels}}

    def _call(self, fn, *args) -> None:
        """A call to the master; a failure is logged (the periodic reconciliation recovers
        launches that never arrived, and kills are re-sent)."""
        try:
            fn(*args)
        except Exception as exc:
            log.warning("master call failed", extra={"call": getattr(fn, "__name__", "?"),
                                                     "error": str(exc)[:300]})

    # -- other threads -----------------------------------------------------------------------------
    def _admit(self, accepted: Accepted) -> bool:
        """Intake thread: the job is durable when this returns (the loop wrote it)."""
        future: Future = Future()
        self.events.put(("admit", accepted, future))
        return future.result()

    def _intake_loop(self) -> None:
        last_chain = 0.0
        while not self.stopping.is_set():
            now = time.time()
            if now - last_chain >= self.options.chain_refresh_seconds:
                try:
                    # One reference swap: the loop and HTTP read it without a lock.
                    self.snapshot = self.chain.snapshot()
                    last_chain = now
                except Exception as exc:
                    log.warning("chain refresh failed", extra={"error": str(exc)[:300]})
            self.intake.scan(list(self.snapshot.protocols))
            self.metrics.specs(self.intake.accepted, self.intake.rejected)
            self.stopping.wait(self.options.poll_seconds)

    def _archive_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                job_id = self.archive_queue.get(timeout=1.0)
            except queue.Empty:
                continue
            with self.lock:
                job = self.core.jobs.get(job_id)
                record = self.job_record(job) if job else None
            if record is None:
                continue
            try:
                self.hdfs.write_bytes(f"{job.datadir}/jobs/{job_id}/job.json",
                                      json.dumps(record, indent=1).encode())
                self.events.put(("archived", job_id))
            except Exception as exc:
                log.warning("archive failed; retrying", extra={"job_id": job_id,
                                                               "error": str(exc)[:300]})
                time.sleep(5.0)
                self.archive_queue.put(job_id)

    # -- reads (HTTP) ------------------------------------------------------------------------------
    @staticmethod
    def job_record(job) -> dict:
        """The archived record: the status summary, the spec and each attempt's history."""
        out = job.summary()
        out["spec"] = job.spec.to_json()
        out["datadir"] = job.datadir
        for task, inst in zip(out["tasks"], job.instances, strict=True):
            task["history"] = inst.history
            task["launched_at"], task["finished_at"] = inst.launched_at, inst.finished_at
        return out

    def job_summaries(self) -> list[dict]:
        with self.lock:
            return [job.summary(with_tasks=False) for job in self.core.jobs.values()]

    def job_summary(self, job_id: str) -> dict | None:
        with self.lock:
            job = self.core.jobs.get(job_id)
            if job is not None:
                return job.summary()
        for researcher, datadir in self.snapshot.datadirs().items():
            del researcher
            path = f"{datadir}/jobs/{job_id}/job.json"
            try:
                if self.hdfs.exists(path):
                    record = json.loads(self.hdfs.read_bytes(path))
                    record["archived"] = True
                    return record
            except Exception as exc:
                log.warning("archived job read failed", extra={"path": path, "error": str(exc)})
        return None

    def cancel(self, job_id: str, timeout: float = 10.0) -> str | None:
        future: Future = Future()
        self.events.put(("cancel", job_id, future))
        return future.result(timeout=timeout)

    def healthy(self) -> bool:
        return self.active and self.subscribed and self.store.reachable()
