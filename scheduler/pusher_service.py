"""The pusher inside the scheduler process: a thread that drains the scheduler's outbox
(``<state path>/outbox/``) into the jobs contract while the scheduler holds its lock.

The scheduler's lock makes it the only pusher of its state path, so no lock of its own is
taken here. Without a signing key accounting is off (a warning says so): credits then wait in
the outbox, and the ``clusterjobs_outbox_*`` metrics show them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from scheduler import chain, pusher
from scheduler.chain import ChainClient, ChainError, Signer

log = logging.getLogger("clusterjobs.scheduler.accounting")


def start(service: Any) -> threading.Thread | None:
    """Start the pusher thread of ``service`` (a SchedulerService holding its lock)."""
    options = service.options
    if not options.chain_keys:
        log.warning("accounting is off: no chain key (--chain-key-file or "
                    f"${chain.KEY_ENV}); credits wait in the outbox")
        return None
    account, permission = chain.parse_actor(options.chain_signer)
    client = ChainClient(options.nodeos, Signer(account, permission, options.chain_keys))
    thread = threading.Thread(target=_run, args=(service, client), daemon=True,
                              name="pusher")
    thread.start()
    return thread


def _run(service: Any, client: ChainClient) -> None:
    store = service.store
    while not service.stopping.is_set():
        try:
            built = pusher.build(store.zk, store.path, client, service.options.jobs_account)
            break
        except ChainError as exc:  # nodeos away at start: try again
            log.warning("pusher waiting for nodeos", extra={"error": str(exc)})
            service.stopping.wait(5.0)
    else:
        return
    service.metrics.registry.register(pusher.PusherCollector(built))
    service.pusher = built
    log.info("pusher started", extra={"signer": service.options.chain_signer,
                                      "credit_id": built.core.send_credit_id})
    built.run(service.stopping)


def accounting(service: Any) -> dict[str, Any]:
    """What `clusterjobs status` shows: the outbox's size and age, and the parked credits
    with the chain's message."""
    store = service.store
    active = getattr(service, "pusher", None)
    return {"enabled": active is not None,
            "metrics": active.metrics() if active is not None else None,
            "outbox": len(store.zk.get_children(f"{store.path}/outbox")),
            "parked": pusher.parked_entries(store.zk, store.path)}


def describe(summary: dict[str, Any]) -> list[str]:
    """Lines for `clusterjobs status` (pure)."""
    metrics = summary.get("metrics") or {}
    state = "on" if summary.get("enabled") else "OFF (no chain key)"
    lines = [f"accounting {state}: {summary.get('outbox', 0)} credit(s) in the outbox"
             + (f", oldest {metrics['outbox_oldest_age_seconds']:.1f} s"
                if metrics.get("outbox_entries") else "")
             + (f", {int(metrics['pusher_confirmed_actions_total'])} confirmed since start"
                if metrics else "")]
    for item in summary.get("parked") or []:
        entry = item.get("entry") or {}
        lines.append(f"  parked {item['key']}: {entry.get('kind', '?')} "
                     f"{entry.get('account', '?')} for {entry.get('researcher', '?')}, "
                     f"{entry.get('time_us', '?')} us, task {entry.get('task_id', '?')}: "
                     f"{item.get('message', '')}")
    return lines
