"""The management commands, and a pile moving between two gateways."""

from __future__ import annotations

import io
import json

from django.core.management import call_command

from protocols.ykc.simulator import SimulatedPile

from .conftest import GatewayThread
from .helpers import login, wait_for
from .test_ykc_simulator import SimThread, events


def test_ykc_command_time_sync_reaches_the_pile(gateway, make_pile):
    code = make_pile()
    sims = SimThread()
    pile = SimulatedPile(code, "127.0.0.1", gateway.port, time_scale=10)
    try:
        sims.run(pile)
        wait_for(lambda: events(pile, "logged_in"))
        # The bus route is written just after the 0x02 the pile saw: wait for it too.
        from charging import bus

        wait_for(lambda: bus._redis().get(bus.route_key("op_tenant_a", code)))
        out = io.StringIO()

        call_command("ykc_command", "time-sync", tenant="tenant-a", pile=code, timeout=5,
                     stdout=out)
    finally:
        sims.stop()

    result = json.loads(out.getvalue())
    assert result["ok"] is True
    assert result["detail"]["pile_time"]


def test_ykc_simulate_logs_piles_in(gateway, make_pile):
    codes = [make_pile(), make_pile()]
    out = io.StringIO()

    call_command("ykc_simulate", "--host", "127.0.0.1", "--port", str(gateway.port),
                 "--pile", codes[0], "--pile", codes[1], "--scenario", "idle",
                 "--duration", "1", stdout=out)

    assert "logins 2 refused 0" in out.getvalue()


def test_pile_moving_to_another_gateway_is_closed_on_the_first(gateway, make_pile,
                                                               pile_client):
    from .conftest import PileClient

    code = make_pile()
    first = pile_client()
    login(first, code)
    other = GatewayThread()
    try:
        second = PileClient(other.port)
        login(second, code)

        assert first.closed()
        assert wait_for(lambda: code not in gateway.sync(lambda: dict(gateway.gateway.sessions)))
        second.close()
    finally:
        other.stop()
