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


NAME_MAX = 255  # Linux's limit on a path component, which Mesos IDs become
MIN_CPUS = 0.01  # master/constants.hpp MIN_CPUS
MIN_MEM = 32.0  # MB, master/constants.hpp MIN_MEM


def id_error(value: str) -> str:
    """common::validation::validateID(): why an id is invalid ("" when valid)."""
    if not value:
        return "ID must not be empty"
    if len(value.encode("utf-8")) > NAME_MAX:
        return f"ID must not be greater than {NAME_MAX} characters"
    if value in (".", ".."):
        return f"'{value}' is disallowed"
    if any(ord(c) < 32 or ord(c) == 127 or c in "/\\" for c in value):
        return f"'{value}' contains invalid characters"
    return ""


def executor_type_error(executor: dict) -> str:
    """executor::internal::validateType(): DEFAULT executors carry no command (and only a
    MESOS container without image); CUSTOM ones need a command."""
    kind = executor.get("type")
    if kind == "DEFAULT":
        if "command" in executor:
            return "'ExecutorInfo.command' must not be set for 'DEFAULT' executor"
        container = executor.get("container")
        if isinstance(container, dict):
            if container.get("type", "MESOS") != "MESOS":
                return "'ExecutorInfo.container.type' must be 'MESOS' for 'DEFAULT' executor"
            if (container.get("mesos") or {}).get("image"):
                return ("'ExecutorInfo.container.mesos.image' must not be set for 'DEFAULT' "
                        "executor")
    elif kind == "CUSTOM" and "command" not in executor:
        return "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
    return ""


def executor_error(executor: dict, existing: dict | None) -> str:
    """executor::internal::validate(): the id, the type, and that an executor id already
    running on the agent keeps the same ExecutorInfo (validateCompatibleExecutorInfo)."""
    exec_id = id_value(executor.get("executor_id")) or ""
    error = id_error(exec_id)
    if error:
        return error
    error = executor_type_error(executor)
    if error:
        return error
    if existing is not None and comparable_executor(executor) != comparable_executor(existing):
        return ("ExecutorInfo is not compatible with existing ExecutorInfo with same "
                f"ExecutorID '{exec_id}'")
    return ""


def comparable_executor(executor: dict) -> dict:
    """An ExecutorInfo as the master compares it: it fills in framework_id itself."""
    return {k: v for k, v in executor.items() if k != "framework_id"}


def group_executor_error(executor: dict, tasks: list, resources: dict[str, float]) -> str:
    """task::group::validate()'s executor checks (validation.cpp): a type, not DOCKER, the
    same ExecutorInfo in every task that names one, and at least MIN_CPUS, MIN_MEM and some
    disk. ``resources`` are the executor's scalars."""
    exec_id = id_value(executor.get("executor_id")) or ""
    kind = executor.get("type")
    if kind is None:
        return "'ExecutorInfo.type' must be set"
    if kind not in ("DEFAULT", "CUSTOM"):
        return "Unknown executor type"
    if (executor.get("container") or {}).get("type") == "DOCKER":
        return "Docker ContainerInfo is not supported on the executor"
    for task in tasks:
        if isinstance(task, dict) and "executor" in task and task["executor"] != executor:
            tid = id_value(task.get("task_id")) or ""
            return (f"The `ExecutorInfo` of task '{tid}' is different from executor "
                    f"'{exec_id}'")
    cpus = resources.get("cpus")
    if cpus is None or cpus < MIN_CPUS:
        return (f"Executor '{exec_id}' uses less CPUs ({_shown(cpus)}) than the minimum "
                f"required ({MIN_CPUS})")
    mem = resources.get("mem")
    if mem is None or mem < MIN_MEM:
        return (f"Executor '{exec_id}' uses less memory ({_shown(mem, 'MB')}) than the "
                f"minimum required ({MIN_MEM:g}MB)")
    if "disk" not in resources:
        return f"Executor '{exec_id}' uses no disk"
    return ""


def launch_executor_error(executor: dict) -> str:
    """task::internal::validateExecutor() for a LAUNCH: only CUSTOM executors, with a
    command (the DEFAULT executor runs task groups only)."""
    if "type" in executor and executor["type"] != "CUSTOM":
        return "'ExecutorInfo.type' must be 'CUSTOM'"
    if "command" not in executor:
        return "'ExecutorInfo.command' must be set"
    return ""


def _shown(value: float | None, unit: str = "") -> str:
    return "None" if value is None else f"{value:g}{unit}"
