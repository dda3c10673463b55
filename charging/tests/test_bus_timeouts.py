"""The command bus waits its whole timeout for a silent gateway, longer than redis-py's
default 5 s socket timeout, and answers ``timeout`` rather than raising."""

from __future__ import annotations

import time

import pytest

from charging import bus, port
from stations import live

SCHEMA = "op_tenant_a"


@pytest.fixture
def silent_gateway(settings):
    r = live.client()
    pile = "32019999999901"
    keys = [bus.route_key(SCHEMA, pile), bus.alive_key("gw-silent"), bus.inbox_key("gw-silent")]
    r.set(keys[0], "gw-silent 1", ex=60)
    r.set(keys[1], "1", ex=60)
    yield pile
    r.delete(*keys)


def test_a_silent_gateway_gives_a_timeout_result_after_the_whole_wait(silent_gateway):
    started = time.monotonic()
    result = bus.send(SCHEMA, port.ReadRealtime(pile_code=silent_gateway, connector_no=1), timeout=7)
    waited = time.monotonic() - started
    assert result == port.CommandResult(ok=False, error="timeout")
    assert 6.9 <= waited < 9
    # The request is in the gateway's inbox with its deadline.
    assert live.client().llen(bus.inbox_key("gw-silent")) == 1
