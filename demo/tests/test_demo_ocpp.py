"""The demo journey on an OCPP 1.6J simulated pile: the same driver journey as on a YKC
pile (app start → RemoteStartTransaction → StartTransaction → MeterValues → stop →
RemoteStopTransaction → StopTransaction → settled once), priced by the platform from the
meter timeline (OCPP piles do not price); and a card start at the pile (Authorize +
StartTransaction with the driver's idTag)."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from billing.tariffs import pricing
from demo.journey import Journey
from protocols.tests.helpers import committed, wait_for

pytestmark = pytest.mark.django_db

OCPP_CONNECTOR = "4401050000003401"  # the QR value of the first OCPP pile's gun


# A 22 kW AC pile in real time: 0.1 kWh in about 16 s.
STOP_AT_KWH = Decimal("0.1")


def test_the_demo_journey_settles_on_an_ocpp_pile(platform, capsys):
    lines = []
    journey = Journey(api_url=platform.web.url, pay_url=platform.pay.url, driver="carol",
                      connector_code=OCPP_CONNECTOR, stop_at_kwh=STOP_AT_KWH, timeout_s=120,
                      say=lines.append)
    result = journey.run()
    order = result["order"]
    assert order["state"] == "settled" and Decimal(order["energy_kwh"]) >= STOP_AT_KWH
    lines = sum((Decimal(x["electricity_yuan"]) + Decimal(x["service_yuan"])
                 for x in order["bill_lines"]), Decimal("0"))
    total = Decimal(order["total_amount"])
    assert lines > 0 and total == max(lines, Decimal("1.00"))  # the demo tariff's 1-yuan minimum
    assert Decimal(result["after"]["available"]) == Decimal(result["before"]["available"]) - total
    assert any(o["state"] == "charging" and o["progress"] for o in journey.log)

    with schema_context(platform.operator.schema_name):
        from charging.models import ChargingOrder, TransactionRecord
        from protocols.models import FrameLog, OcppTransaction
        from settlement.models import Posting

        db_order = ChargingOrder.objects.select_related("pile").get(pk=order["id"])
        assert db_order.pile.protocol == "ocpp"
        record = TransactionRecord.objects.get(trade_no=db_order.trade_no)
        assert record.pile_amount_yuan is None and not record.energy_by_period()
        assert db_order.pile_amount is None and not db_order.amount_mismatch
        tx = OcppTransaction.objects.get(trade_no=db_order.trade_no)
        assert tx.started_at and tx.stopped_at and tx.id_tag.startswith("EVP")
        assert record.energy_kwh == Decimal(tx.meter_stop_wh - tx.meter_start_wh) / 1000
        # Priced from the meter timeline (the samples), split at tariff-period boundaries.
        readings = [(db_order.started_at, Decimal("0"))]
        readings += [(s.at, s.energy_kwh) for s in db_order.samples.filter(
            at__gt=db_order.started_at, at__lt=db_order.stopped_at)]
        readings.append((db_order.stopped_at, db_order.energy_kwh))
        snapshot = pricing.TariffSnapshot.from_dict(db_order.tariff_snapshot)
        assert pricing.price_meter_readings(snapshot, readings).total_yuan == total
        assert Posting.objects.filter(key=f"order:{db_order.number}:charge").count() == 1
        names = FrameLog.objects.filter(pile_code=db_order.pile.code)
        wait_for(lambda: {"RemoteStartTransaction", "StartTransaction", "MeterValues",
                          "RemoteStopTransaction", "StopTransaction"}
                 <= set(names.values_list("name", flat=True)), timeout=30)
    capsys.readouterr()
    call_command("ledger_verify", tenant="demo")
    assert capsys.readouterr().out.strip().endswith("postings: ok")


def test_a_card_start_at_an_ocpp_pile_is_authorised_and_billed(platform):
    with schema_context(platform.operator.schema_name):
        from accounts.models import Member
        from charging.models import ChargingOrder, MemberCredential

        member = Member.objects.get(nickname="演示车主")

    def bind_card():
        with schema_context(platform.operator.schema_name):
            MemberCredential.objects.get_or_create(member_id=member.pk, kind="card",
                                                   value="OCPPCARD01")

    committed(bind_card)
    code = "44010500000035"
    pile = platform.ocpp_piles[code]
    sims = platform.ocpp_simulator
    from ocpp.v16 import call

    reply = sims.call(pile.send(call.Authorize(id_tag="OCPPCARD01")))
    assert reply.id_tag_info["status"] == "Accepted"
    assert sims.call(pile.send(call.Authorize(id_tag="NOSUCHCARD"))).id_tag_info["status"] \
        == "Invalid"
    sims.run(pile.begin, pile.connectors[1], "OCPPCARD01")
    with schema_context(platform.operator.schema_name):
        order = wait_for(lambda: ChargingOrder.objects.filter(
            pile__code=code, state="charging").first(), timeout=30)
        assert order.mode == "card" and order.pile_initiated and order.member_id == member.pk
        # Some energy delivered (real time: about 8 s at 22 kW) before the driver stops.
        wait_for(lambda: Decimal(ChargingOrder.objects.get(pk=order.pk).progress.get("energy_kwh")
                                 or 0) >= Decimal("0.05"), timeout=60)
    sims.run(pile.finish, pile.connectors[1], "Local")
    with schema_context(platform.operator.schema_name):
        settled = wait_for(lambda: ChargingOrder.objects.filter(pk=order.pk,
                                                                state="settled").first(),
                           timeout=30)
        assert settled.total_amount > 0 and settled.stop_reason == "at_pile"
