"""The port's one power command (PowerLimit) crosses the bus intact, in both its uses."""

from decimal import Decimal

import pytest

from charging import port


@pytest.mark.parametrize("command", [
    port.PowerLimit("44010600000101", Decimal("50.0"), Decimal("120.0")),
    port.PowerLimit.percent_of_rating("44010600000101", 60, rated_power_kw=Decimal("120.0")),
    port.PowerLimit.percent_of_rating("44010600000101", 100, enabled=False),
])
def test_power_limit_round_trips(command):
    assert port.command_from_dict(port.command_to_dict(command)) == command


def test_a_power_cap_queued_before_the_merge_becomes_a_power_limit():
    legacy = {"type": "PowerCap", "fields": {"pile_code": "P1", "percent": 40, "enabled": False}}
    assert port.command_from_dict(legacy) == port.PowerLimit("P1", percent=40, enabled=False)
    assert "PowerCap" not in port.COMMANDS


def test_cap_in_kw_from_either_field():
    assert port.PowerLimit("P1", Decimal("50")).cap_kw() == Decimal("50")
    assert port.PowerLimit.percent_of_rating("P1", 50).cap_kw(Decimal("60")) == Decimal("30")
    assert port.PowerLimit.percent_of_rating("P1", 50).cap_kw() is None
