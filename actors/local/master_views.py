"""Read-only renderings of the master's tables: the /master/state document, the
/metrics/snapshot counters, and the JSON of an offer. Functions over the state; no I/O.
"""

from __future__ import annotations

from collections import Counter

from actors.local.master_model import VERSION, ZERO_METRICS, Agent, Offer
from actors.local.master_state import MasterState
from actors.local.tasks import TERMINAL_STATES, is_terminal


def offer_json(offer: Offer, agent: Agent, executor_ids: list[str] | None = None,
               multi_role: bool = False) -> dict:
    """One v1 Offer as an OFFERS event carries it: with the ids of the framework's executors
    on the agent, and allocation_info only for MULTI_ROLE frameworks (MESOS-8237)."""
    resources = offer.resources.to_json()
    out = {"id": {"value": offer.id}, "framework_id": {"value": offer.framework_id},
           "agent_id": {"value": agent.id}, "hostname": agent.info.get("hostname", ""),
           "url": {"scheme": "http", "address": {
               "hostname": agent.info.get("hostname", ""), "ip": "127.0.0.1",
               "port": agent.info.get("port", 0)}, "path": "/slave(1)"},
           "resources": resources,
           "attributes": agent.info.get("attributes", [])}
    if executor_ids:
        out["executor_ids"] = [{"value": e} for e in executor_ids]
    if multi_role:
        out["allocation_info"] = {"role": "*"}
        for resource in resources:
            resource["allocation_info"] = {"role": "*"}
    return out


def state_json(core: MasterState, leader_info: dict | None) -> dict:
    """The /master/state document (a faithful subset of Mesos's fields)."""
    frameworks = []
    for fw in core.frameworks.values():
        tasks = [t.to_json() for t in core.tasks.values() if t.framework_id == fw.id]
        frameworks.append({
            "id": fw.id, "name": fw.info.get("name"), "user": fw.info.get("user"),
            "active": fw.connected, "connected": fw.connected,
            "failover_timeout": fw.failover_timeout,
            "capabilities": [c.get("type") for c in fw.info.get("capabilities", [])
                             if isinstance(c, dict)],
            "tasks": tasks,
            "offers": [{"id": o.id, "agent_id": o.agent_id,
                        "resources": o.resources.summary()}
                       for o in core.offers.values() if o.framework_id == fw.id]})
    agents = [{"id": a.id, "hostname": a.info.get("hostname"),
               "port": a.info.get("port"), "pid": f"slave(1)@{a.url[7:]}",
               "active": True, "registered_time": a.registered_wall,
               "resources": a.total.summary(), "used_resources": a.used.summary(),
               "offered_resources": a.offered.summary(),
               "unreserved_resources": a.total.summary(),
               "attributes": {x["name"]: (x.get("text") or {}).get("value",
                               (x.get("scalar") or {}).get("value"))
                              for x in a.info.get("attributes", [])}}
              for a in core.agents.values()]
    leader = None
    if leader_info:
        leader = leader_info.get("pid")
    return {"version": VERSION, "id": core.master_id, "pid": core.master_info.get("pid"),
            "hostname": core.master_info.get("hostname"), "leader": leader,
            "leader_info": leader_info, "elected_time": core.elected_wall,
            "start_time": core.started_wall,
            "activated_slaves": len(core.agents), "deactivated_slaves": 0,
            "unreachable_slaves": len(core.unreachable_agents),
            "frameworks": frameworks, "slaves": agents,
            "completed_frameworks": list(core.completed_frameworks),
            "completed_tasks": list(core.completed_tasks),
            "unreachable_tasks": [t.to_json() for t in core.unreachable_tasks.values()]}


def metrics(core: MasterState, now: float) -> dict[str, float]:
    """The /metrics/snapshot counters, named as Mesos names them."""
    # Mesos exports every counter from the start, at 0 until it moves.
    out: dict[str, float] = {name: 0.0 for name in ZERO_METRICS}
    out.update({k: float(v) for k, v in core.counters.items()})
    out["master/elected"] = 1.0 if core.is_elected() else 0.0
    out["master/uptime_secs"] = round(now - core.started, 3)
    conn = sum(1 for f in core.frameworks.values() if f.connected)
    out["master/frameworks_connected"] = float(conn)
    out["master/frameworks_disconnected"] = float(len(core.frameworks) - conn)
    # SUPPRESS only stops offers: Mesos still counts the framework active.
    out["master/frameworks_active"] = float(conn)
    out["master/frameworks_inactive"] = float(len(core.frameworks)) - out[
        "master/frameworks_active"]
    out["master/slaves_active"] = float(len(core.agents))
    out["master/slaves_connected"] = float(len(core.agents))
    out["master/slaves_disconnected"] = 0.0
    out["master/slaves_inactive"] = 0.0
    out["master/slaves_unreachable"] = float(len(core.unreachable_agents))
    out["master/outstanding_offers"] = float(len(core.offers))
    live: Counter[str] = Counter(t.state for t in core.tasks.values()
                                 if not is_terminal(t.state))
    for state in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING",
                  "TASK_UNREACHABLE"):
        out[f"master/tasks_{state[5:].lower()}"] = float(live[state])
    out["master/tasks_unreachable"] += float(len(core.unreachable_tasks))
    for state in TERMINAL_STATES:
        out.setdefault(f"master/tasks_{state[5:].lower()}", 0.0)
    for name in ("cpus", "mem", "disk", "gpus"):
        total = sum(a.total.get(name) for a in core.agents.values())
        used = sum(a.used.get(name) for a in core.agents.values())
        out[f"master/{name}_total"] = round(total, 3)
        out[f"master/{name}_used"] = round(used, 3)
        out[f"master/{name}_percent"] = round(used / total, 6) if total else 0.0
    return out
