"""Login 0x01 → 0x02 (+ 0x56), refusals, replacement, heartbeat 0x03 → 0x04."""

from __future__ import annotations

import time

from django_tenants.utils import get_public_schema_name, schema_context

from protocols.ykc import messages as m
from stations import live
from stations.models import Pile
from tenants.models import Operator, RefusedPileLogin

from .conftest import SCHEMA, committed
from .helpers import login, login_message, wait_for


def test_login_accepted_replies_0x02_then_time_sync_and_marks_online(gateway, make_pile,
                                                                     pile_client):
    code = make_pile()
    client = pile_client()
    client.send(login_message(code), sequence=b"\x12\x34")

    reply = client.recv(0x02)
    sync = client.recv(0x56)

    assert reply.message == m.LoginReply(code, True)
    assert reply.sequence == b"\x12\x34"  # echoed byte for byte (§1.3)
    assert sync.message.pile_code == code
    with schema_context(SCHEMA):
        pile = wait_for(lambda: Pile.objects.filter(code=code, online=True).first())
    assert pile.last_seen_at is not None
    assert live.pile_last_seen(SCHEMA, code) is not None


def test_unknown_pile_is_refused_closed_and_listed(gateway, make_pile, pile_client):
    code = make_pile(register=False, in_estate=False)
    client = pile_client()

    reply = login(client, code)

    assert reply.message == m.LoginReply(code, False)
    assert client.closed()
    with schema_context(get_public_schema_name()):
        refused = RefusedPileLogin.objects.get(pile_code=code)
    assert refused.reason == RefusedPileLogin.Reason.UNKNOWN
    assert refused.operator is None
    assert refused.peer.startswith("127.0.0.1:")
    assert refused.count == 1

    again = pile_client()
    login(again, code)
    with schema_context(get_public_schema_name()):
        assert RefusedPileLogin.objects.get(pile_code=code).count == 2


def test_disabled_pile_is_refused(gateway, make_pile, pile_client):
    code = make_pile(enabled=False)
    client = pile_client()

    assert login(client, code).message.success is False

    assert client.closed()
    with schema_context(get_public_schema_name()):
        assert RefusedPileLogin.objects.get(pile_code=code).reason == "pile_disabled"
    with schema_context(SCHEMA):
        assert Pile.objects.get(code=code).online is False


def test_registered_pile_missing_from_the_estate_is_refused(gateway, make_pile, pile_client):
    code = make_pile(in_estate=False)

    assert login(pile_client(), code).message.success is False

    with schema_context(get_public_schema_name()):
        assert RefusedPileLogin.objects.get(pile_code=code).reason == "not_in_estate"


def test_pile_of_suspended_operator_is_refused(gateway, make_pile, pile_client, operators):
    code = make_pile()
    operator = operators["tenant-a"]
    def set_status(status):
        with schema_context(get_public_schema_name()):
            Operator.objects.filter(pk=operator.pk).update(status=status)

    committed(set_status, Operator.Status.SUSPENDED)
    try:
        reply = login(pile_client(), code)
    finally:
        committed(set_status, Operator.Status.ACTIVE)

    assert reply.message.success is False
    with schema_context(get_public_schema_name()):
        refused = RefusedPileLogin.objects.get(pile_code=code)
    assert refused.reason == "operator_suspended"
    assert refused.operator_id == operator.pk


def test_second_connection_replaces_the_first(gateway, make_pile, pile_client):
    code = make_pile()
    first = pile_client()
    login(first, code)
    second = pile_client()

    login(second, code)

    assert first.closed()
    second.send(m.Heartbeat(code, 1, False))
    assert second.recv(0x04).message == m.HeartbeatReply(code, 1, 0)
    assert gateway.sync(lambda: gateway.gateway.sessions[code].peer.split(":")[1]) == str(
        second.sock.getsockname()[1])
    with schema_context(SCHEMA):  # the old connection's close did not mark it offline
        wait_for(lambda: Pile.objects.get(code=code).online)
        time.sleep(0.3)  # nor does it later
        assert Pile.objects.get(code=code).online is True


def test_heartbeat_is_answered_with_same_sequence(gateway, make_pile, pile_client):
    code = make_pile(connectors=2)
    client = pile_client()
    login(client, code, connectors=2)

    client.send(m.Heartbeat(code, 2, False), sequence=b"\x00\x07")
    reply = client.recv(0x04)

    assert reply.message == m.HeartbeatReply(code, 2, 0)
    assert reply.sequence == b"\x00\x07"
    gateway.flush()
    assert live.pile_last_seen(SCHEMA, code) is not None


def test_disconnect_marks_pile_and_connectors_offline(gateway, make_pile, pile_client):
    from stations.models import Connector

    code = make_pile()
    client = pile_client()
    login(client, code)
    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code=code, online=True).exists())

    def set_idle():
        with schema_context(SCHEMA):
            Connector.objects.filter(pile__code=code).update(status="idle")

    committed(set_idle)

    client.close()

    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code=code, online=False).exists())
        assert Connector.objects.get(pile__code=code).status == "offline"


# --- a login storm: the logins of a window decided in one batch (port.PileLogins) ----------


def _login_together(gateway, pile_client, codes: list[str], window: float = 0.5):
    """Send every code's 0x01 on its own connection within one batch window; returns the
    clients and their 0x02 replies."""
    gateway.gateway.logins.window = window
    clients = [pile_client() for _ in codes]
    for client, code in zip(clients, codes, strict=True):
        client.send(login_message(code))
    return clients, [client.recv(0x02) for client in clients]


def test_piles_logging_in_within_a_window_are_decided_in_one_batch(gateway, make_pile,
                                                                   pile_client):
    codes = [make_pile() for _ in range(4)]
    calls = gateway.gateway.logins.calls

    _clients, replies = _login_together(gateway, pile_client, codes)

    assert [r.message for r in replies] == [m.LoginReply(code, True) for code in codes]
    assert gateway.gateway.logins.calls == calls + 1
    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code__in=codes, online=True).count() == 4)


def test_an_unknown_pile_in_the_batch_is_refused_while_the_others_log_in(gateway, make_pile,
                                                                         pile_client):
    good = [make_pile(), make_pile()]
    unknown = make_pile(register=False, in_estate=False)
    codes = [good[0], unknown, good[1]]

    clients, replies = _login_together(gateway, pile_client, codes)

    assert [r.message.success for r in replies] == [True, False, True]
    assert clients[1].closed()
    with schema_context(get_public_schema_name()):
        assert RefusedPileLogin.objects.get(pile_code=unknown).reason == "unknown"
    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code__in=good, online=True).count() == 2)


def test_a_failed_batch_loses_no_pile(gateway, make_pile, pile_client):
    codes = [make_pile() for _ in range(3)]
    batches = gateway.gateway.logins
    real = batches.fn
    failed = []

    def fails_once(claims):
        if not failed:
            failed.append(len(claims))
            raise RuntimeError("connection lost")  # as a dropped database connection
        return real(claims)

    batches.fn = fails_once
    try:
        _clients, replies = _login_together(gateway, pile_client, codes)
    finally:
        batches.fn = real

    assert failed == [3]  # all three were in the failed batch ...
    assert [r.message for r in replies] == [m.LoginReply(code, True) for code in codes]
    assert gateway.gateway.metrics.errors.get("login_batch_failed") == 3  # ... decided alone
    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code__in=codes, online=True).count() == 3)


def _routes(codes: list[str]) -> list[str | None]:
    from charging import bus

    return [bus._redis().get(bus.route_key(SCHEMA, code)) for code in codes]


def test_a_batchs_holder_checks_and_routes_go_to_redis_together(gateway, make_pile,
                                                                pile_client):
    codes = [make_pile() for _ in range(4)]
    holders, routes = gateway.gateway.holder_checks, gateway.gateway.route_writes
    calls = holders.calls, routes.calls

    _clients, replies = _login_together(gateway, pile_client, codes)

    assert [r.message for r in replies] == [m.LoginReply(code, True) for code in codes]
    wait_for(lambda: all(_routes(codes)))  # written just after the replies
    assert (holders.calls, routes.calls) == (calls[0] + 1, calls[1] + 1)  # one pipeline each
    ids = {gateway.gateway.sessions[code].id for code in codes}
    assert {route.split(" ", 1)[1] for route in _routes(codes)} == ids


def test_links_closed_together_lose_their_routes_in_one_pipeline(gateway, make_pile,
                                                                 pile_client):
    codes = [make_pile() for _ in range(4)]
    clients, replies = _login_together(gateway, pile_client, codes)
    assert [r.message for r in replies] == [m.LoginReply(code, True) for code in codes]
    wait_for(lambda: all(_routes(codes)))
    deletes = gateway.gateway.route_deletes
    window, deletes.window = deletes.window, 0.5  # the four closes in one window
    calls = deletes.calls
    try:
        for client in clients:
            client.close()  # a storm's beginning: every link drops at once

        wait_for(lambda: not any(_routes(codes)))
    finally:
        deletes.window = window
    assert deletes.calls == calls + 1  # one pipeline of compare-and-delete scripts
    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code__in=codes, online=False).count() == 4)


def test_failed_redis_batches_check_and_route_each_login_alone(gateway, make_pile,
                                                               pile_client):
    codes = [make_pile() for _ in range(3)]
    batches = (gateway.gateway.holder_checks, gateway.gateway.route_writes)
    reals = [b.fn for b in batches]
    failed: dict[int, list[int]] = {0: [], 1: []}

    def failing(index):
        async def fails(schema, claims):
            failed[index].append(len(claims))
            raise ConnectionError("pipeline lost")  # as Redis dropping the connection
        return fails

    for index, batch in enumerate(batches):
        batch.fn = failing(index)
    try:
        _clients, replies = _login_together(gateway, pile_client, codes)
        wait_for(lambda: all(_routes(codes)))  # each pile's route written alone ...
    finally:
        for batch, real in zip(batches, reals, strict=True):
            batch.fn = real

    assert [r.message for r in replies] == [m.LoginReply(code, True) for code in codes]
    assert failed[0] == [3]  # ... after the holder checks of all three failed together
    assert sum(failed[1]) == 3  # and their route batches
    errors = gateway.gateway.metrics.errors
    assert (errors.get("holder_batch_failed"), errors.get("route_batch_failed")) == (3, 3)
    assert not errors.get("route_not_registered")


def test_a_batchs_piles_are_marked_online_together(gateway, make_pile, pile_client):
    codes = [make_pile() for _ in range(3)]
    marks = gateway.gateway.online_marks
    marks.window = 0.5  # the three logins' marks in one window whatever the machine's pace
    calls = marks.calls

    _clients, replies = _login_together(gateway, pile_client, codes)

    assert [r.message for r in replies] == [m.LoginReply(code, True) for code in codes]
    with schema_context(SCHEMA):
        wait_for(lambda: Pile.objects.filter(code__in=codes, online=True).count() == 3)
    assert marks.calls == calls + 1  # one port.PilesOnline for the three


def test_a_failed_online_batch_marks_each_pile_alone(gateway, make_pile, pile_client):
    codes = [make_pile() for _ in range(3)]
    marks = gateway.gateway.online_marks
    marks.window = 0.5
    real = marks.fn
    failed = []

    def fails(claims):
        failed.append(len(claims))
        raise RuntimeError("connection lost")  # as a dropped database connection

    marks.fn = fails
    try:
        _login_together(gateway, pile_client, codes)
        with schema_context(SCHEMA):
            wait_for(lambda: Pile.objects.filter(code__in=codes, online=True).count() == 3)
    finally:
        marks.fn = real

    assert failed == [3]  # all three in the failed batch, each marked alone after it
    assert gateway.gateway.metrics.errors.get("online_batch_failed") == 3
