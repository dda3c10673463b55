"""OCPP logins decided in batches (issue #12: 10,000 piles connecting to one gateway).

The handshakes (and then the BootNotifications) that arrive within one window of the
gateway's login ``BatchedQuery`` are decided with one ``port.PileLogins`` call, each by the
same rules as alone: an unknown pile is refused with 404, a wrong password with 401, the
takeover rule holds; a batch that fails is decided login by login, losing no pile."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import OperationalError
from django_tenants.utils import get_public_schema_name, schema_context
from websockets.exceptions import InvalidStatus

from tenants.models import RefusedPileLogin

from .helpers import wait_for
from .ocpp_helpers import OcppGatewayThread, RawClient

WINDOW_S = 0.5  # wide enough that handshakes started together share one window


@pytest.fixture
def ocpp(unblocked, make_pile):
    gw = OcppGatewayThread()
    gw.gateway.logins.window = WINDOW_S
    yield gw
    gw.stop()


def _connect_together(gw: OcppGatewayThread, attempts: list[tuple]) -> list:
    """Open ``(code, password, source)`` connections at once: a RawClient each, or the
    HTTP status it was refused with."""
    def one(attempt):
        code, password, source = attempt
        try:
            return RawClient(gw.url, code, password, source=source)
        except InvalidStatus as refused:
            return refused.response.status_code

    with ThreadPoolExecutor(len(attempts)) as pool:
        return list(pool.map(one, attempts))


def _refused(code: str) -> str | None:
    with schema_context(get_public_schema_name()):
        row = RefusedPileLogin.objects.filter(pile_code=code).first()
        return row.reason if row is not None else None


def _close(results: list) -> None:
    for result in results:
        if isinstance(result, RawClient):
            result.close()


def test_handshakes_and_boots_of_a_window_are_decided_in_one_batch_each(ocpp, make_pile):
    good = [make_pile(protocol="ocpp") for _ in range(3)]
    secret = make_pile(protocol="ocpp", password="s3cret-pass")
    unknown = make_pile(protocol="ocpp", register=False)
    ykc = make_pile(protocol="ykc")
    calls = ocpp.gateway.logins.calls
    results = _connect_together(ocpp, [(code, None, None) for code in good] + [
        (secret, "s3cret-pass", None), (secret, "wrong", None), (unknown, None, None),
        (ykc, None, None)])
    try:
        assert ocpp.gateway.logins.calls == calls + 1  # seven handshakes, one PileLogins
        *accepted, bad_password, refused_unknown, wrong_protocol = results
        assert all(isinstance(client, RawClient) for client in accepted)
        assert (bad_password, refused_unknown, wrong_protocol) == (401, 404, 404)
        assert _refused(secret) == "bad_password"
        assert _refused(unknown) == "unknown"
        assert _refused(ykc) == "wrong_protocol"
        assert all(_refused(code) is None for code in good)
        with ThreadPoolExecutor(len(accepted)) as pool:
            boots = list(pool.map(lambda client: client.boot(), accepted))
        assert ocpp.gateway.logins.calls == calls + 2  # the four boots: one more
        assert [(reply[0], reply[2]["status"]) for reply in boots] == [(3, "Accepted")] * 4
        assert set(ocpp.gateway.sessions) == {*good, secret}
    finally:
        _close(results)


def test_the_takeover_rule_holds_for_logins_decided_together(ocpp, make_pile):
    held, other = make_pile(protocol="ocpp"), make_pile(protocol="ocpp")
    first = RawClient(ocpp.url, held, source="127.0.0.1")
    assert first.boot()[2]["status"] == "Accepted"
    assert first.call("hb", "Heartbeat", {})[0] == 3
    calls = ocpp.gateway.logins.calls
    # In one window: another host asks for the held pile (refused: 409), the same host
    # for it again (the pile reconnecting: replaces), another host for a free pile.
    results = _connect_together(ocpp, [(held, None, "127.0.0.2"), (held, None, "127.0.0.1"),
                                       (other, None, "127.0.0.2")])
    try:
        assert ocpp.gateway.logins.calls == calls + 1
        intruder, reconnect, free = results
        assert intruder == 409
        assert isinstance(reconnect, RawClient) and isinstance(free, RawClient)
        assert wait_for(lambda: _refused(held)) == "takeover"  # recorded in the background
        assert reconnect.boot()[2]["status"] == "Accepted"
        session = ocpp.gateway.sessions[held]
        assert session.peer.startswith("127.0.0.1:") and not session.closed
        assert ocpp.gateway.sessions[other].peer.startswith("127.0.0.2:")
    finally:
        _close([first, *results])


def test_a_failed_batch_is_decided_login_by_login(ocpp, make_pile):
    good, unknown = make_pile(protocol="ocpp"), make_pile(protocol="ocpp", register=False)
    secret = make_pile(protocol="ocpp", password="s3cret-pass")
    batch = ocpp.gateway.logins

    def lost(claims):
        raise OperationalError("server closed the connection unexpectedly")

    decide, batch.fn = batch.fn, lost
    calls = batch.calls
    try:
        results = _connect_together(ocpp, [(good, None, None), (unknown, None, None),
                                           (secret, "wrong", None), (secret, "s3cret-pass", None)])
    finally:
        batch.fn = decide
    try:
        assert batch.calls == calls + 1
        assert ocpp.gateway.metrics.errors.get("login_batch_failed") == 4
        accepted, refused_unknown, bad_password, right_password = results
        assert (refused_unknown, bad_password) == (404, 401)
        assert isinstance(accepted, RawClient) and isinstance(right_password, RawClient)
        assert accepted.boot()[2]["status"] == "Accepted"
        assert _refused(unknown) == "unknown" and _refused(secret) == "bad_password"
    finally:
        _close(results)
