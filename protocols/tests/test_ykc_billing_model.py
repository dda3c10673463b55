"""Billing model 0x05 → 0x06, 0x09 → 0x0A and the 0x58 push (→ 0x57), through the tariffs
selectors and services."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing.tariffs.models import Tariff, TariffVersion
from charging import bus
from protocols.ykc import encode_frame
from protocols.ykc import messages as m
from protocols.ykc.commands import YkcPushBillingModel
from protocols.ykc.models import PileBillingModel

from .conftest import SCHEMA, committed
from .helpers import login, wait_for

TARIFF = "网关测试电价"


@pytest.fixture
def tariffed_pile(make_pile):
    """A pile with its own tariff (the Guangdong demo shape: flat 0.6 + 0.4 service).

    Request it before ``gateway``: fixtures are torn down in reverse, and the gateway must
    stop (marking its piles offline) before the pile is deleted."""
    from billing.tariffs.services import pile_tariff_assign
    from demo.tariffs import tariff_create_guangdong_demo
    from stations.models import Pile

    code = make_pile()

    def given():
        with schema_context(SCHEMA):
            tariff = tariff_create_guangdong_demo(name=TARIFF)
            pile_tariff_assign(pile=Pile.objects.get(code=code), tariff=tariff)

    def cleanup():
        with schema_context(SCHEMA):
            Pile.objects.filter(code=code).delete()
            TariffVersion.objects.filter(tariff__name=TARIFF).delete()
            Tariff.objects.filter(name=TARIFF).delete()

    committed(given)
    yield code
    committed(cleanup)


def test_first_login_model_differs_then_request_gets_0x0a_then_verifies(tariffed_pile, gateway,
                                                                        pile_client):
    code = tariffed_pile
    client = pile_client()
    login(client, code)

    client.send(m.BillingModelVerify(code, "0000"))
    assert client.recv(0x06).message.model_differs is True
    client.send(m.BillingModelRequest(code), sequence=b"\x0b\xb2")
    reply = client.recv(0x0A)
    model = reply.message.billing_model

    assert reply.sequence == b"\x0b\xb2"
    assert model.flat_electricity == Decimal("0.60000")
    assert model.flat_service == Decimal("0.40000")
    assert len(model.slots) == 48
    with schema_context(SCHEMA):
        state = wait_for(lambda: PileBillingModel.objects.filter(
            pile__code=code, model_number_acked=int(model.model_no)).first())
    assert state.last_result == PileBillingModel.Result.OK

    client.send(m.BillingModelVerify(code, model.model_no))
    assert client.recv(0x06).message.model_differs is False


def test_pushed_model_records_the_pile_answer(tariffed_pile, gateway, pile_client):
    code = tariffed_pile
    client = pile_client()
    login(client, code)

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(bus.send, SCHEMA, YkcPushBillingModel(code), 5)
        push = client.recv(0x58)
        client.send(m.SetBillingModelReply(code, True), sequence=push.sequence)
        result = pending.result(5)

    model_no = push.message.billing_model.model_no
    assert result.ok is True
    assert result.detail == {"model_no": model_no}
    with schema_context(SCHEMA):
        state = wait_for(lambda: PileBillingModel.objects.filter(
            pile__code=code, last_result="ok").first())
    assert state.model_number_acked == int(model_no)


def test_pile_without_tariff_is_told_differs_and_gets_no_model(gateway, make_pile, pile_client):
    code = make_pile()
    client = pile_client()
    login(client, code)

    client.send(m.BillingModelVerify(code, "0000"))
    assert client.recv(0x06).message.model_differs is True
    client.send(m.BillingModelRequest(code))

    with pytest.raises(TimeoutError):
        client.recv(0x0A, timeout=0.5)
    assert gateway.sync(lambda: gateway.gateway.metrics.errors.get("no_billing_model")) == 1


# --- a login storm: the 0x09 requests of a window answered in one batch --------------------


@pytest.fixture
def tariffed_piles(make_pile):
    """Three piles on one tariff (request before ``gateway``, as ``tariffed_pile``)."""
    from billing.tariffs.services import pile_tariff_assign
    from demo.tariffs import tariff_create_guangdong_demo
    from stations.models import Pile

    codes = [make_pile() for _ in range(3)]

    def given():
        with schema_context(SCHEMA):
            tariff = tariff_create_guangdong_demo(name=TARIFF)
            for code in codes:
                pile_tariff_assign(pile=Pile.objects.get(code=code), tariff=tariff)

    def cleanup():
        with schema_context(SCHEMA):
            Pile.objects.filter(code__in=codes).delete()
            TariffVersion.objects.filter(tariff__name=TARIFF).delete()
            Tariff.objects.filter(name=TARIFF).delete()

    committed(given)
    yield codes
    committed(cleanup)


def _request_together(gateway, pile_client, codes: list[str]):
    """Log each pile in on its own connection, then send every 0x09 within one batch
    window; returns the 0x0A replies."""
    clients = [pile_client() for _ in codes]
    for client, code in zip(clients, codes, strict=True):
        login(client, code)
    gateway.gateway.model_requests.window = 0.5
    for client, code in zip(clients, codes, strict=True):
        client.send(m.BillingModelRequest(code))
    return [client.recv(0x0A) for client in clients]


def _delivered(codes: list[str], model_no: str) -> int:
    with schema_context(SCHEMA):
        return PileBillingModel.objects.filter(
            pile__code__in=codes, model_number_sent=int(model_no),
            model_number_acked=int(model_no), last_result="ok",
            held_since__isnull=False).exclude(slots_acked="").count()


def test_model_requests_within_a_window_are_answered_in_one_batch(tariffed_piles, gateway,
                                                                  pile_client):
    codes = tariffed_piles
    calls = gateway.gateway.model_requests.calls

    replies = _request_together(gateway, pile_client, codes)

    assert [r.message.pile_code for r in replies] == codes
    model_no = replies[0].message.billing_model.model_no
    assert {r.message.billing_model for r in replies} == {replies[0].message.billing_model}
    assert gateway.gateway.model_requests.calls == calls + 1
    assert _delivered(codes, model_no) == 3  # recorded in the batch, before the 0x0A


def test_a_failed_model_batch_answers_each_pile_alone(tariffed_piles, gateway, pile_client):
    codes = tariffed_piles
    batches = gateway.gateway.model_requests
    real = batches.fn
    failed = []

    def fails_once(claims):
        if not failed:
            failed.append(len(claims))
            raise RuntimeError("connection lost")  # as a dropped database connection
        return real(claims)

    batches.fn = fails_once
    try:
        replies = _request_together(gateway, pile_client, codes)
    finally:
        batches.fn = real

    assert failed == [3]  # all three were in the failed batch ...
    assert [r.message.pile_code for r in replies] == codes  # ... and each got its 0x0A
    assert gateway.gateway.metrics.errors.get("billing_batch_failed") == 3
    model_no = replies[0].message.billing_model.model_no
    wait_for(lambda: _delivered(codes, model_no) == 3)


def test_heartbeats_around_a_database_reply_keep_their_order(tariffed_pile, gateway,
                                                             pile_client):
    # The heartbeats a read starts with are answered at once, in bulk; those after a frame
    # whose reply awaits the database (0x05) wait behind it, as does a read arriving then.
    code = tariffed_pile
    client = pile_client()
    login(client, code)
    beat = [encode_frame(m.Heartbeat(code, 1, False), n) for n in range(6)]

    client.send_raw(beat[0] + beat[1] + encode_frame(m.BillingModelVerify(code, "0000"), 0x99)
                    + beat[2] + beat[3])
    client.send_raw(beat[4] + beat[5])

    frames = [client.recv() for _ in range(7)]
    assert [(f.frame_type, f.sequence) for f in frames] == [
        (0x04, b"\x00\x00"), (0x04, b"\x01\x00"), (0x06, b"\x99\x00"), (0x04, b"\x02\x00"),
        (0x04, b"\x03\x00"), (0x04, b"\x04\x00"), (0x04, b"\x05\x00")]
