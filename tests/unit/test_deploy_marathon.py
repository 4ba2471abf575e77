"""deploy/marathon/clusterjobs.json validates against Marathon's app-definition schema (from
shared/reference/marathon/, beside the clone) and says what the issue asks of it."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = json.loads((ROOT / "deploy" / "marathon" / "clusterjobs.json").read_text())


def shared_dir() -> Path:
    """shared/ beside the clone (CI), beside the worktrees' parent, or $CLUSTERJOBS_SHARED."""
    candidates = [Path(os.environ["CLUSTERJOBS_SHARED"])] if "CLUSTERJOBS_SHARED" in os.environ \
        else []
    candidates += [ROOT.parent / "shared", ROOT.parent.parent / "shared"]
    for candidate in candidates:
        if (candidate / "reference" / "marathon" / "AppDefinition.json").is_file():
            return candidate
    pytest.fail("shared/reference/marathon/AppDefinition.json not found beside the clone "
                f"(looked in {', '.join(map(str, candidates))}; set CLUSTERJOBS_SHARED)")


def validator() -> jsonschema.Draft4Validator:
    schema = json.loads((shared_dir() / "reference/marathon/AppDefinition.json").read_text())
    return jsonschema.Draft4Validator(schema)


def test_app_validates_against_marathons_schema() -> None:
    assert [e.message for e in validator().iter_errors(APP)] == []


def test_schema_refuses_what_marathon_would() -> None:
    bad = copy.deepcopy(APP)
    bad["upgradeStrategy"]["maximumOverCapacity"] = 2
    bad["healthChecks"][0]["pathh"] = "/health"
    messages = "\n".join(e.message for e in validator().iter_errors(bad))
    assert "2 is greater than the maximum of 1" in messages
    assert "'pathh' was unexpected" in messages


def test_one_scheduler_at_a_time_and_healthy_on_port0() -> None:
    assert APP["instances"] == 1
    assert APP["upgradeStrategy"] == {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}
    [check] = APP["healthChecks"]
    assert check["path"] == "/health" and check["portIndex"] == 0
    assert check["protocol"] in ("HTTP", "MESOS_HTTP")
    assert len(APP["portDefinitions"]) == 1 and "$PORT0" in APP["cmd"]
    assert all(APP[r] > 0 for r in ("cpus", "mem", "disk"))
    assert APP["labels"]


def test_environment_names_every_endpoint_and_secrets_only_by_reference() -> None:
    env = APP["env"]
    assert env["MESOS_MASTER"].startswith("zk://") and env["MESOS_MASTER"].endswith("/mesos")
    assert env["CLUSTERJOBS_ZK"].startswith("zk://")
    assert env["CLUSTERJOBS_WEBHDFS"].startswith("http")
    assert env["CLUSTERJOBS_NODEOS"].startswith("http")
    references = {k: v["secret"] for k, v in env.items() if isinstance(v, dict)}
    assert set(references) == {"CLUSTERJOBS_CHAIN_KEY", "CLUSTERJOBS_AUTH_TOKEN"}
    assert set(references.values()) == set(APP["secrets"])
    literal = json.dumps({k: v for k, v in env.items() if isinstance(v, str)})
    assert "5K" not in literal and "PVT_" not in literal  # no private key written out
