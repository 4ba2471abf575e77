"""The ExecutorInfo the scheduler names when it launches work units (a plain dict for
pymesos with ``use_addict``)."""

from __future__ import annotations

from collections.abc import Mapping


def _scalar(name: str, value: float) -> dict:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def executor_info(executor_id: str, *, command: str, webhdfs: str, cpus: float = 0.1,
                  mem: float = 64.0, extra_env: Mapping[str, str] | None = None) -> dict:
    """A CUSTOM ExecutorInfo running ``command`` (a shell command line, e.g.
    ``clusterjobs-executor``) with ``CLUSTERJOBS_WEBHDFS`` set to ``webhdfs``."""
    variables = {"CLUSTERJOBS_WEBHDFS": webhdfs, **(extra_env or {})}
    return {
        "executor_id": {"value": executor_id},
        "type": "CUSTOM",
        "name": "clusterjobs executor",
        "source": "clusterjobs",
        "command": {
            "value": command,
            "shell": True,
            "environment": {"variables": [{"name": k, "value": v}
                                          for k, v in sorted(variables.items())]},
        },
        "resources": [_scalar("cpus", cpus), _scalar("mem", mem)],
    }
