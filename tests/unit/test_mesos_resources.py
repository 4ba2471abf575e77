"""Resource arithmetic (pure)."""

import pytest

from actors.local.resources import ResourceError, Resources


def test_parse_flag_and_round_trip_json():
    res = Resources.parse_flag("cpus:4;mem:4096;ports:[31000-31005,31003-31010]")
    assert res.get("cpus") == 4 and res.get("mem") == 4096
    assert res.ranges["ports"] == ((31000, 31010),)
    again = Resources.from_json(res.to_json())
    assert again == res
    assert res.summary()["ports"] == "[31000-31010]"


def test_subtract_add_contains():
    total = Resources.parse_flag("cpus:2;mem:100;ports:[100-200]")
    task = Resources.parse_flag("cpus:0.5;mem:40;ports:[150-150]")
    assert total.contains(task)
    left = total - task
    assert left.get("cpus") == pytest.approx(1.5)
    assert left.ranges["ports"] == ((100, 149), (151, 200))
    assert not left.contains(Resources.parse_flag("ports:[150-150]"))
    assert (left + task) == Resources({"cpus": 2.0, "mem": 100.0}, {"ports": ((100, 200),)})
    assert not total.contains(Resources.parse_flag("cpus:2.5"))
    assert not total.contains(Resources.parse_flag("gpus:1"))


def test_float_dust_does_not_leak():
    total = Resources.parse_flag("cpus:1")
    left = total
    for _ in range(10):
        left = left - Resources.parse_flag("cpus:0.1")
    assert left.empty()
    assert left.get("cpus") == 0.0


@pytest.mark.parametrize("bad", [
    "not a list",
    [{"type": "SCALAR", "scalar": {"value": 1}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": float("nan")}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": True}}],
    [{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 5}]}}],
    [{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 5, "end": 1}]}}],
    [{"name": "x", "type": "SET", "set": {"item": ["a"]}}],
])
def test_bad_json_is_refused(bad):
    with pytest.raises(ResourceError):
        Resources.from_json(bad)


@pytest.mark.parametrize("flag", ["cpus", "cpus:x", "ports:[1-", "mem:-3"])
def test_bad_flag_is_refused(flag):
    with pytest.raises(ResourceError):
        Resources.parse_flag(flag)
