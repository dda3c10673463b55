"""A charge point whose BootNotification the domain refuses (OCPP 1.6 §4.2): it is told
Rejected with a retry interval, then the Central System closes the connection; the
refusal is listed and counted, the pile is not online and a reconnect must boot again."""

from __future__ import annotations

import pytest
from django_tenants.utils import get_public_schema_name, schema_context
from websockets.exceptions import ConnectionClosed

from protocols.ocpp.gateway import BOOT_RETRY_S, CLOSE_POLICY

from .conftest import SCHEMA
from .helpers import committed, wait_for
from .test_ocpp_gateway import ocpp, raw  # noqa: F401


def _bind_iccid(code: str, iccid: str) -> None:
    from stations.models import Pile

    def bind():
        with schema_context(SCHEMA):
            Pile.objects.filter(code=code).update(iccid=iccid)

    committed(bind)


def _online(code: str) -> bool:
    from stations.models import Pile

    with schema_context(SCHEMA):
        return Pile.objects.get(code=code).online


def _refusals(code: str) -> list[str]:
    from tenants.models import RefusedPileLogin

    with schema_context(get_public_schema_name()):
        return list(RefusedPileLogin.objects.filter(pile_code=code)
                    .values_list("reason", flat=True))


def _errors(gw) -> dict:
    return dict((labels[0], value) for labels, value
                in gw.gateway.metrics.errors.values.items())


def test_a_pile_rejected_at_boot_is_told_so_and_disconnected(ocpp, make_pile, raw):  # noqa: F811
    code = make_pile(protocol="ocpp")
    _bind_iccid(code, "89860000000000000001")
    client = raw(code)  # the handshake carries no ICCID: accepted
    reply = client.call("b1", "BootNotification", {
        "chargePointVendor": "ACME", "chargePointModel": "AC22",
        "iccid": "89860000000000000999"})
    assert reply[0] == 3 and reply[1] == "b1"
    assert reply[2]["status"] == "Rejected" and reply[2]["interval"] == BOOT_RETRY_S
    with pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=10)
    assert closed.value.rcvd.code == CLOSE_POLICY
    assert _refusals(code) == ["iccid_mismatch"]
    wait_for(lambda: code not in ocpp.gateway.sessions, timeout=10)
    errors = _errors(ocpp)
    assert errors.get("boot_iccid_mismatch") == 1 and errors.get("boot_rejected_closed") == 1
    wait_for(lambda: not _online(code), timeout=20)


def test_after_a_rejected_boot_a_reconnect_must_boot_again(ocpp, make_pile, raw):  # noqa: F811
    code = make_pile(protocol="ocpp")
    first = raw(code)
    assert first.boot()[2]["status"] == "Accepted"
    first.close()
    wait_for(lambda: code not in ocpp.gateway.sessions, timeout=10)
    _bind_iccid(code, "89860000000000000001")
    second = raw(code)
    reply = second.call("b2", "BootNotification", {
        "chargePointVendor": "ACME", "chargePointModel": "AC22",
        "iccid": "89860000000000000999"})
    assert reply[2]["status"] == "Rejected"
    with pytest.raises(ConnectionClosed):
        second.recv(timeout=10)
    # The earlier accepted boot is forgotten: calls before a new boot are refused.
    third = raw(code)
    refused = third.call("h1", "Heartbeat", {})
    assert refused[0] == 4 and refused[2] == "SecurityError"
    # The right SIM boots and works again on the same connection.
    reply = third.call("b3", "BootNotification", {
        "chargePointVendor": "ACME", "chargePointModel": "AC22",
        "iccid": "89860000000000000001"})
    assert reply[2]["status"] == "Accepted"
    assert third.call("h2", "Heartbeat", {})[0] == 3
