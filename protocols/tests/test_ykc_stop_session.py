"""YKC's 0x36 names no session: the gateway refuses a stop meant for another session."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from charging import bus, port

from .conftest import SCHEMA
from .helpers import login, realtime, wait_for

OLD = "32010200000001012026112008000001"
NEW = "32010200000001012026112009000002"


@pytest.fixture
def sender():
    with ThreadPoolExecutor(2) as pool:
        yield lambda command, timeout=5.0: pool.submit(bus.send, SCHEMA, command, timeout)


def test_a_stop_for_an_ended_session_never_reaches_the_next_one(gateway, make_pile, pile_client,
                                                                sender, recorder):
    code = make_pile()
    client = pile_client()
    login(client, code)
    client.send(realtime(code, status=3, plugged=True, trade_no=NEW, energy="1.5"))
    wait_for(lambda: recorder.of(port.Progress))

    late = sender(port.RemoteStop(pile_code=code, connector_no=1, trade_no=OLD)).result(5)
    assert late == port.CommandResult(ok=False, error="session_mismatch", detail={"running": NEW})
    with pytest.raises(TimeoutError):
        client.recv(0x36, timeout=0.5)

    pending = sender(port.RemoteStop(pile_code=code, connector_no=1, trade_no=NEW))
    client.recv(0x36)
    from protocols.ykc import messages as m

    client.send(m.RemoteStopReply(code, 1, True, 0))
    assert pending.result(5).ok is True


def test_a_stop_without_readings_yet_is_sent(gateway, make_pile, pile_client, sender, recorder):
    code = make_pile()
    client = pile_client()
    login(client, code)
    pending = sender(port.RemoteStop(pile_code=code, connector_no=1, trade_no=OLD))
    client.recv(0x36)
    from protocols.ykc import messages as m

    client.send(m.RemoteStopReply(code, 1, False, 0x02))
    assert pending.result(5) == port.CommandResult(ok=False, error="refused",
                                                   detail={"refusal": "not_charging",
                                                           "reason_code": 2})
