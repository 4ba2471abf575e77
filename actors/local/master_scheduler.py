"""The scheduler API calls other than SUBSCRIBE (ACCEPT, DECLINE, KILL, ACKNOWLEDGE, ...).

:class:`SchedulerCalls` answers each call from the master's tables, appending what must
happen outside to the outbox and raising :class:`~actors.local.master_model.CallError` for
a 4xx answer. No I/O here.
"""

from __future__ import annotations

from actors.local.master_model import (
    CALL_METRICS,
    DEFAULT_REFUSE_SECONDS,
    MAX_REFUSE_SECONDS,
    Agent,
    CallError,
    Framework,
    Offer,
    Task,
)
from actors.local.master_state import MasterState
from actors.local.resources import ResourceError, Resources
from actors.local.tasks import is_terminal, is_uuid_bytes, make_status
from actors.local.validation import (
    checked_launches,
    executor_error,
    group_executor_error,
    id_error,
    id_value,
    launch_executor_error,
)


class SchedulerCalls(MasterState):
    """The scheduler calls a subscribed framework makes (part of MasterCore)."""

    def handle_call(self, call: object, stream_id: str | None, now: float) -> None:
        """Any call but SUBSCRIBE; raises CallError for a 4xx answer."""
        if not isinstance(call, dict):
            raise CallError(400, "Expecting a JSON object")
        kind = call.get("type")
        handler = getattr(self, f"_call_{kind.lower()}", None) if isinstance(kind, str) else None
        if handler is None:
            raise CallError(400, f"Failed to validate scheduler::Call: unknown type {kind!r}")
        fw_id = id_value(call.get("framework_id"))
        if fw_id is None:
            raise CallError(400, "Expecting 'framework_id' to be present")
        fw = self.frameworks.get(fw_id)
        if fw is None:
            raise CallError(400, "Framework cannot be found")
        if not fw.connected:
            raise CallError(403, "Framework is not subscribed")
        if stream_id != fw.stream_id:
            raise CallError(400, "The stream ID included in this request didn't match the "
                                 "stream ID currently associated with framework ID " + fw_id)
        if kind == "ACCEPT":
            # As Mesos: a LAUNCH with tasks counts as launch_tasks, one without as a decline.
            for op in (call.get("accept") or {}).get("operations") or []:
                if isinstance(op, dict) and op.get("type") in ("LAUNCH", "LAUNCH_GROUP"):
                    infos = (op.get("launch") or {}).get("task_infos") \
                        if op["type"] == "LAUNCH" else [1]
                    self.counters["master/messages_launch_tasks" if infos
                                  else "master/messages_decline_offers"] += 1
        elif kind in CALL_METRICS:
            self.counters[CALL_METRICS[kind]] += 1
        handler(fw, call, now)

    def _call_teardown(self, fw: Framework, call: dict, now: float) -> None:
        self.remove_framework(fw.id, now)

    def _call_revive(self, fw: Framework, call: dict, now: float) -> None:
        fw.filters.clear()
        fw.suppressed = False
        self.wants_allocation = True

    def _call_suppress(self, fw: Framework, call: dict, now: float) -> None:
        fw.suppressed = True

    def _call_update_framework(self, fw: Framework, call: dict, now: float) -> None:
        """UPDATE_FRAMEWORK: a new FrameworkInfo (user and checkpoint fixed) and suppressed
        roles, broadcast to the agents (Master::updateFramework)."""
        section = call.get("update_framework")
        info = section.get("framework_info") if isinstance(section, dict) else None
        if not isinstance(info, dict):
            raise CallError(400, "Failed to validate scheduler::Call: Expecting "
                                 "'update_framework' to be present")
        if id_value(info.get("id")) != fw.id:
            raise CallError(400, "Failed to validate scheduler::Call: 'framework_id' differs "
                                 "from 'update_framework.framework_info.id'")
        if not isinstance(info.get("name"), str) or not isinstance(info.get("user"), str):
            raise CallError(400, "Supplied FrameworkInfo is not valid: FrameworkInfo needs "
                                 "'user' and 'name' strings")
        for name, default in (("user", None), ("checkpoint", False)):
            old, new = fw.info.get(name, default), info.get(name, default)
            if old != new:
                raise CallError(400, f"FrameworkInfo update is not valid: Updating "
                                     f"'FrameworkInfo.{name}' is unsupported; attempted to "
                                     f"update from '{old}' to '{new}'")
        previous = fw.info
        fw.info = info
        try:
            suppressed = self._suppression(fw, section.get("suppressed_roles") or [])
        except CallError:
            fw.info = previous
            raise
        if fw.suppressed and not suppressed:
            self.wants_allocation = True
        fw.suppressed = suppressed
        if suppressed:
            self._recover_offers(fw.id)
        self._framework_updated(fw)

    def _call_request(self, fw: Framework, call: dict, now: float) -> None:
        pass  # REQUEST is accepted and ignored, as by the Mesos allocator

    def _call_accept_inverse_offers(self, fw: Framework, call: dict, now: float) -> None:
        pass  # no maintenance schedules here, so never an inverse offer

    _call_decline_inverse_offers = _call_accept_inverse_offers

    def _call_reconcile_operations(self, fw: Framework, call: dict, now: float) -> None:
        pass  # no offer operations other than launches are supported

    def _refuse_seconds(self, section: dict) -> float:
        filters = section.get("filters")
        if isinstance(filters, dict) and "refuse_seconds" in filters:
            value = filters["refuse_seconds"]
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return min(float(value), MAX_REFUSE_SECONDS)
            # Mesos falls back to the default for a negative (or unusable) value.
        return DEFAULT_REFUSE_SECONDS

    def _filter(self, fw: Framework, agent_id: str, refused: Resources, seconds: float,
                now: float) -> None:
        """Add a refused-offer filter, as the allocator's recoverResources() does: none for
        nothing refused or 0 s; it lives at least one allocation interval (MESOS-4302)."""
        if seconds > 0 and not refused.empty():
            until = now + max(self.allocation_interval, seconds)
            kept = [f for f in fw.filters.get(agent_id, []) if f[1] > now]
            fw.filters[agent_id] = [*kept, (refused, until)]

    def _call_decline(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("decline")
        if not isinstance(section, dict) or not isinstance(section.get("offer_ids"), list):
            raise CallError(400, "Expecting 'decline.offer_ids' to be present")
        seconds = self._refuse_seconds(section)
        for raw in section["offer_ids"]:
            offer = self.offers.get(id_value(raw) or "")
            if offer is None or offer.framework_id != fw.id:
                continue  # declining an unknown offer is harmless, as in Mesos
            self._drop_offer(offer)
            self._filter(fw, offer.agent_id, offer.resources, seconds, now)

    def _call_accept(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("accept")
        if not isinstance(section, dict) or not isinstance(section.get("offer_ids"), list):
            raise CallError(400, "Expecting 'accept.offer_ids' to be present")
        operations = section.get("operations") or []
        if not isinstance(operations, list):
            raise CallError(400, "'accept.operations' must be a list")
        launches = checked_launches(operations)
        offers: list[Offer] = []
        invalid = ""
        ids = [id_value(raw) for raw in section["offer_ids"]]
        if not ids:
            invalid = "No offers specified"
        duplicate = next((i for n, i in enumerate(ids) if i in ids[:n]), None)
        if duplicate is not None:  # offer::validateUniqueOfferID(), checked first
            invalid = f"Duplicate offer {duplicate} in offer list"
        for offer_id in ids:
            offer = self.offers.get(offer_id or "")
            if offer is None or offer.framework_id != fw.id:
                invalid = invalid or f"Offer {offer_id} is no longer valid"
            elif offers and offer.agent_id != offers[0].agent_id:
                invalid = invalid or "Offers of different agents cannot be accepted together"
            elif offer not in offers:
                offers.append(offer)
        for offer in offers:
            self._drop_offer(offer)
        if invalid:
            state = "TASK_DROPPED" if fw.partition_aware else "TASK_LOST"
            for _executor, tasks in launches:
                for task in tasks:
                    self._reject(fw, task, state, "REASON_INVALID_OFFERS",
                                 f"Task launched with invalid offers: {invalid}")
            return
        agent = self.agents[offers[0].agent_id]
        remaining = Resources()
        for offer in offers:
            remaining = remaining + offer.resources
        for executor, tasks in launches:
            remaining = self._launch(fw, agent, executor, tasks, remaining, now)
        self._filter(fw, agent.id, remaining, self._refuse_seconds(section), now)


    def _reject(self, fw: Framework, task: object, state: str, reason: str, message: str) -> None:
        """A master-generated terminal update for a task it will not launch; it names the
        TaskInfo's agent, as Mesos's createStatusUpdate(..., task.slave_id(), ...) does."""
        tid = id_value(task.get("task_id")) if isinstance(task, dict) else None
        agent_id = id_value(task.get("agent_id")) if isinstance(task, dict) else None
        self._count_terminal(state)
        self._update_event(fw.id, make_status(tid or "", state, agent_id=agent_id,
                                              source="SOURCE_MASTER", reason=reason,
                                              message=message, with_uuid=False))

    def _validate_task(self, fw: Framework, agent: Agent, task: object,
                       group_executor: dict | None) -> tuple[str, Resources, dict | None]:
        """(error message or "", task resources, executor info) for one TaskInfo."""
        if not isinstance(task, dict):
            return "TaskInfo must be an object", Resources(), None
        tid = id_value(task.get("task_id"))
        if tid is None:
            return "TaskInfo needs task_id.value", Resources(), None
        error = id_error(tid)
        if error:
            return f"Task has an invalid TaskID: {error}", Resources(), None
        if (fw.id, tid) in self.tasks:
            return f"Task has duplicate ID: {tid}", Resources(), None
        if id_value(task.get("agent_id")) not in (agent.id, None) or "agent_id" not in task:
            return f"Task {tid} names an agent other than the offer's", Resources(), None
        executor = group_executor if group_executor is not None else task.get("executor")
        has_command = isinstance(task.get("command"), dict)
        if group_executor is None and has_command == isinstance(executor, dict):
            return "TaskInfo needs exactly one of 'command' and 'executor'", Resources(), None
        if executor is not None and (not isinstance(executor, dict)
                                     or id_value(executor.get("executor_id")) is None):
            return "ExecutorInfo needs executor_id.value", Resources(), None
        if has_command and not isinstance(task["command"].get("value", ""), str):
            return "CommandInfo.value must be a string", Resources(), None
        if executor is not None:
            key = (agent.id, fw.id, executor["executor_id"]["value"])
            error = executor_error(executor, self.executor_infos.get(key))
            if not error and group_executor is None:
                error = launch_executor_error(executor)
            if error:
                return error, Resources(), None
        try:
            resources = Resources.from_json(task.get("resources", []))
        except ResourceError as exc:
            return f"Task {tid}: {exc}", Resources(), None
        if resources.empty():
            return f"Task {tid} uses no resources", Resources(), None
        return "", resources, executor

    def _launch(self, fw: Framework, agent: Agent, group_executor: dict | None, tasks: list,
                remaining: Resources, now: float) -> Resources:
        checked = [self._validate_task(fw, agent, t, group_executor) for t in tasks]
        ids = [id_value(t.get("task_id")) if isinstance(t, dict) else None for t in tasks]
        error = next((e for e, _r, _x in checked if e), "")
        if not error and len(set(ids)) != len(ids):
            error = "Task ids in a group must differ"
        need = Resources()
        executor = checked[0][2] if checked else None
        new_executor: tuple[str, str, str] | None = None
        if not error and executor is not None:
            exec_id = executor["executor_id"]["value"]
            key = (agent.id, fw.id, exec_id)
            if key not in self.executors:
                try:
                    need = Resources.from_json(executor.get("resources", []))
                except ResourceError as exc:
                    error = f"Executor {exec_id}: {exc}"
                new_executor = key
            if not error and group_executor is not None:
                try:
                    own = Resources.from_json(executor.get("resources", []))
                except ResourceError as exc:
                    own, error = Resources(), f"Executor {exec_id}: {exc}"
                error = error or group_executor_error(executor, tasks, own.scalars)
        for _e, res, _x in checked:
            need = need + res
        if not error and not remaining.contains(need):
            error = "Task uses more resources than available in the accepted offers"
        if error:
            reason = "REASON_TASK_INVALID" if group_executor is None \
                else "REASON_TASK_GROUP_INVALID"
            for task in tasks:
                self._reject(fw, task, "TASK_ERROR", reason, error)
            return remaining
        remaining = remaining - need
        agent.used = agent.used + need
        if new_executor is not None:
            self.executors[new_executor] = need - sum(
                (r for _e, r, _x in checked), Resources())
            self.executor_infos[new_executor] = executor or {}
        launched = []
        for task_info, (_e, res, exe) in zip(tasks, checked, strict=True):
            exec_id = exe["executor_id"]["value"] if exe else None
            task = Task(fw.id, agent.id, task_info, res, exec_id)
            self.tasks[(fw.id, task.id)] = task
            launched.append(task_info)
        payload = {"framework_info": fw.info, "tasks": launched,
                   "executor": executor, "group": group_executor is not None}
        self._to_agent(agent.id, "/internal/launch", payload)
        return remaining

    def _call_kill(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("kill")
        tid = id_value(section.get("task_id")) if isinstance(section, dict) else None
        if tid is None:
            raise CallError(400, "Expecting 'kill.task_id' to be present")
        task = self.tasks.get((fw.id, tid))
        if task is None:
            # Mesos answers a kill of an unknown task with an explicit reconciliation of it.
            wanted: dict = {"task_id": {"value": tid}}
            if id_value(section.get("agent_id")):
                wanted["agent_id"] = section["agent_id"]
            self._call_reconcile(fw, {"reconcile": {"tasks": [wanted]}}, now)
            return
        if id_value(section.get("agent_id")) not in (None, task.agent_id):
            return  # Master::kill(): a KILL naming another agent is ignored
        self.killed_tasks.setdefault(task.agent_id, set()).add((fw.id, tid))
        if not is_terminal(task.state):
            self._to_agent(task.agent_id, "/internal/kill",
                           {"framework_id": fw.id, "task_id": tid, "kill": section})

    def _call_acknowledge(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("acknowledge")
        if not isinstance(section, dict):
            raise CallError(400, "Expecting 'acknowledge' to be present")
        tid = id_value(section.get("task_id"))
        agent_id = id_value(section.get("agent_id"))
        status_uuid = section.get("uuid")
        if tid is None or agent_id is None or not isinstance(status_uuid, str):
            raise CallError(400, "ACKNOWLEDGE needs agent_id, task_id and uuid")
        if not is_uuid_bytes(status_uuid):
            # Mesos parses the uuid (base64 of 16 bytes in JSON) and refuses the call if not.
            raise CallError(400, "Failed to validate scheduler::Call: 'acknowledge.uuid' is "
                                 "not a valid UUID")
        self._to_agent(agent_id, "/internal/ack",
                       {"framework_id": fw.id, "task_id": tid, "uuid": status_uuid})
        task = self.tasks.get((fw.id, tid))
        if task is not None and is_terminal(task.uuid_states.get(status_uuid, "")):
            # The terminal update is acknowledged: the task is complete (as in Mesos).
            del self.tasks[(fw.id, tid)]
            self.completed_tasks.append(task.to_json())

    def _call_reconcile(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("reconcile")
        if not isinstance(section, dict):
            # Implicit reconciliation is an empty 'reconcile.tasks', not a missing 'reconcile'.
            raise CallError(400, "Failed to validate scheduler::Call: Expecting 'reconcile' "
                                 "to be present")
        wanted = section.get("tasks") or []
        if not isinstance(wanted, list):
            raise CallError(400, "'reconcile.tasks' must be a list")
        if not wanted:  # implicit: every task the master knows
            for task in self.tasks.values():
                if task.framework_id == fw.id:
                    self._reconciled(fw, task)
            return
        for item in wanted:
            tid = id_value(item.get("task_id")) if isinstance(item, dict) else None
            if tid is None:
                raise CallError(400, "Each reconcile task needs task_id.value")
            task = self.tasks.get((fw.id, tid))
            if task is not None:
                self._reconciled(fw, task)
                continue
            agent_id = id_value(item.get("agent_id"))
            status = self._unknown_task_status(fw, tid, agent_id)
            if status is not None:
                self._update_event(fw.id, status)

    def _unknown_task_status(self, fw: Framework, tid: str, agent_id: str | None) -> dict | None:
        """Master::reconcile()'s answer for a task it does not know, by what it knows of the
        agent; None while the agent (or, without an agent id, any agent) recovered from the
        registry has not re-registered. Frameworks that are not partition-aware get
        TASK_LOST instead of TASK_GONE, TASK_UNREACHABLE and TASK_UNKNOWN."""
        aware = fw.partition_aware
        if (agent_id is not None and agent_id in self.recovered) or (
                agent_id is None and self.recovered):
            return None
        unreachable_ns = None
        if agent_id is not None and agent_id in self.agents:
            state, message = "TASK_GONE", "Reconciliation: Task is unknown to the agent"
        elif agent_id is not None and agent_id in self.unreachable_agents:
            state, message = "TASK_UNREACHABLE", "Reconciliation: Task is unreachable"
            unreachable_ns = self.unreachable_agents[agent_id]
        else:
            state, message = "TASK_UNKNOWN", "Reconciliation: Task is unknown"
        status = make_status(tid, state if aware else "TASK_LOST", agent_id=agent_id,
                             source="SOURCE_MASTER", reason="REASON_RECONCILIATION",
                             message=message, with_uuid=False)
        if unreachable_ns is not None:
            status["unreachable_time"] = {"nanoseconds": unreachable_ns}
        return status

    def _reconciled(self, fw: Framework, task: Task) -> None:
        """A known task: the state of the update awaiting acknowledgement (else the latest),
        without data, as Master::reconcile() builds it."""
        self._update_event(fw.id, make_status(
            task.id, task.status_update_state or task.state, agent_id=task.agent_id,
            executor_id=task.executor_id, source="SOURCE_MASTER",
            reason="REASON_RECONCILIATION", message="Reconciliation: Latest task state",
            with_uuid=False))

    def _call_message(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("message")
        if not isinstance(section, dict):
            raise CallError(400, "Expecting 'message' to be present")
        agent_id = id_value(section.get("agent_id"))
        exec_id = id_value(section.get("executor_id"))
        if agent_id is None or exec_id is None or not isinstance(section.get("data"), str):
            raise CallError(400, "MESSAGE needs agent_id, executor_id and data")
        self.counters["master/valid_framework_to_executor_messages" if agent_id in self.agents
                      else "master/invalid_framework_to_executor_messages"] += 1
        if agent_id in self.agents:
            self._to_agent(agent_id, "/internal/message",
                           {"framework_id": fw.id, "executor_id": exec_id,
                            "data": section["data"]})

    def _call_shutdown(self, fw: Framework, call: dict, now: float) -> None:
        section = call.get("shutdown")
        if not isinstance(section, dict):
            raise CallError(400, "Expecting 'shutdown' to be present")
        agent_id = id_value(section.get("agent_id"))
        exec_id = id_value(section.get("executor_id"))
        if agent_id is None or exec_id is None:
            raise CallError(400, "SHUTDOWN needs agent_id and executor_id")
        self._to_agent(agent_id, "/internal/shutdown_executor",
                       {"framework_id": fw.id, "executor_id": exec_id})
