"""Checks of incoming requests, without state: id parsing, required protobuf fields, launch
operations (scheduler API) and executor UPDATE calls (executor API).

Each check answers the first problem as the one-line message Mesos gives for it.
"""

from __future__ import annotations

from actors.local.master_model import CallError
from actors.local.tasks import is_uuid_bytes


def id_value(obj: object) -> str | None:
    """``{"value": "x"}`` -> "x"; anything else -> None."""
    if isinstance(obj, dict) and isinstance(obj.get("value"), str) and obj["value"]:
        return obj["value"]
    return None


def missing_required_resources(where: str, resources: object) -> str:
    """Why a Resource list lacks a required field ("" when none is missing)."""
    if resources is None:
        return ""
    if not isinstance(resources, list):
        return f"{where}.resources must be a list"
    for item in resources:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                or not isinstance(item.get("type"), str):
            return f"{where}: Resource needs its required fields 'name' and 'type'"
    return ""


def missing_required_task(task: object) -> str:
    """The first required TaskInfo field (v1 mesos.proto) that is absent, or ""."""
    if not isinstance(task, dict):
        return "TaskInfo must be an object"
    for name in ("task_id", "agent_id"):
        if id_value(task.get(name)) is None:
            return f"TaskInfo is missing required field '{name}.value'"
    if not isinstance(task.get("name"), str):
        return "TaskInfo is missing required field 'name'"
    executor = task.get("executor")
    if executor is not None:
        missing = missing_required_executor(executor)
        if missing:
            return missing
    return missing_required_resources("TaskInfo", task.get("resources"))


def missing_required_executor(executor: object) -> str:
    """The first required ExecutorInfo field that is absent, or ""."""
    if not isinstance(executor, dict) or id_value(executor.get("executor_id")) is None:
        return "ExecutorInfo is missing required field 'executor_id.value'"
    return missing_required_resources("ExecutorInfo", executor.get("resources"))


def launch_operations(operations: list) -> list[tuple[dict | None, list]]:
    """(group executor or None, task infos) per LAUNCH / LAUNCH_GROUP operation."""
    out: list[tuple[dict | None, list]] = []
    for op in operations:
        if not isinstance(op, dict):
            raise CallError(400, "Each operation must be an object")
        kind = op.get("type")
        if kind == "LAUNCH":
            infos = (op.get("launch") or {}).get("task_infos")
            if not isinstance(infos, list):
                raise CallError(400, "Expecting 'launch.task_infos' to be a list")
            out.extend((None, [t]) for t in infos)
        elif kind == "LAUNCH_GROUP":
            group = op.get("launch_group") or {}
            tasks = (group.get("task_group") or {}).get("tasks")
            if not isinstance(tasks, list) or not isinstance(group.get("executor"), dict):
                raise CallError(400, "LAUNCH_GROUP needs 'executor' and 'task_group.tasks'")
            out.append((group["executor"], tasks))
        else:
            raise CallError(400, f"Operation type {kind!r} is not supported here")
    return out


def checked_launches(operations: list) -> list[tuple[dict | None, list]]:
    """Checked launch operations; raises CallError(400) as Mesos does for a body that
    does not convert to the Call protobuf (a required field missing)."""
    out = launch_operations(operations)
    for executor, tasks in out:
        missing = missing_required_executor(executor) if executor is not None else ""
        for task in tasks:
            missing = missing or missing_required_task(task)
        if missing:
            raise CallError(400, f"Failed to convert JSON into Call protobuf: {missing}")
    return out


def update_call_error(call: dict, exec_id: str, fw_id: str) -> str:
    """Why an executor's UPDATE call is invalid ("" when valid), as the Mesos agent checks it."""
    status = (call.get("update") or {}).get("status") if isinstance(
        call.get("update"), dict) else None
    if not isinstance(status, dict):
        return "Expecting 'update' to be present"
    tid = (status.get("task_id") or {}).get("value") if isinstance(
        status.get("task_id"), dict) else None
    if not isinstance(tid, str) or status.get("state") not in _STATES:
        return "Expecting 'update.status' with a task_id and a known state"
    if "uuid" not in status:
        return "Expecting 'uuid' to be present"
    if not is_uuid_bytes(status["uuid"]):
        return "'uuid' is not a valid UUID"
    given = status.get("executor_id")
    if given is not None and (given or {}).get("value") != exec_id:
        return f"ExecutorID in Call: {exec_id} does not match ExecutorID in TaskStatus"
    # An absent source is SOURCE_MASTER (the enum's first value) to the agent.
    if status.get("source") != "SOURCE_EXECUTOR":
        return (f"Received Call from executor {exec_id} of framework {fw_id} with invalid "
                "source, expecting 'SOURCE_EXECUTOR'")
    if status["state"] == "TASK_STAGING":
        return (f"Received TASK_STAGING from executor {exec_id} of framework {fw_id} which "
                "is not allowed")
    return ""


_STATES = ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_FINISHED",
           "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED",
           "TASK_GONE", "TASK_UNREACHABLE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN")
