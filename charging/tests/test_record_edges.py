"""Records from real piles at the edges (issue 23): a 0xB2 record with a fifth price group,
buckets on a tariff the pile never confirmed, physically impossible figures and records for
trade numbers nobody started here. Each: the bill, the flags and the ledger.

The tariff is Guangdong's TOU (flat 1.00, valley 0.38, service 0.50 yuan/kWh); sessions run
07:00–09:00 Shanghai time, an hour of valley then an hour of flat, so a bill priced on the
pile's buckets and one priced by time of day differ and tell which was used.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from billing.tariffs import pricing
from charging import port, services
from charging.models import ChargingOrder, OrderState, RecordPeriod, TransactionRecord
from charging.tests.money import balance, ledger_clean
from settlement.models import Entry, Posting

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 2, 7, 0, tzinfo=SHANGHAI)
STOP = START + timedelta(hours=2)
HOST = {"HTTP_HOST": "tenant-a.testserver"}
# 20 kWh by time of day (start and end only: 10 valley, 10 flat): 10 × 0.88 + 10 × 1.50
BY_TIME = Decimal("23.80")
# 20 kWh on the pile's buckets valley 5, flat 15: 5 × 0.88 + 15 × 1.50
ON_BUCKETS = Decimal("26.90")


@pytest.fixture
def tou(station):
    from billing.tariffs.services import (
        station_tariff_assign,
        tariff_create,
        tariff_version_publish,
    )

    from .conftest import LONG_AGO

    tariff = tariff_create(name="广东分时",
                           draft=pricing.guangdong_tou_tariff(Decimal("1.0"), Decimal("0.5")))
    tariff_version_publish(tariff=tariff, effective_from=LONG_AGO)
    station_tariff_assign(stations=[station], tariff=tariff)
    return tariff


@pytest.fixture
def staff_client(tenant, django_user_model):
    user = django_user_model.objects.create_superuser("review-admin", password="x-pass-123")
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def _charging(member, connector):
    order = services.order_start(member=member, connector=connector)
    services.order_start_result(
        port.StartResult(order.pile.code, 1, order.trade_no, accepted=True, at=START))
    order.refresh_from_db()
    return order


def _confirmed(order) -> dict:
    """The pile confirmed the order's tariff version a day before the session."""
    return {"pile_tariff_version": order.tariff_snapshot["model_number"],
            "pile_tariff_since": START - timedelta(days=1)}


def _record(order, *, kwh="20", buckets=None, started=START, stopped=STOP,
            meter_start="100", meter_stop=None, pile_amount=None, trade_no=None, **extra):
    kwh = Decimal(kwh)
    buckets = {"valley": Decimal("5"), "flat": Decimal("15")} if buckets is None else buckets
    return port.TransactionRecord(
        pile_code=order.pile.code if order else "44010600000101", connector_no=1,
        trade_no=trade_no or order.trade_no, started_at=started, stopped_at=stopped,
        meter_start_kwh=Decimal(meter_start),
        meter_stop_kwh=Decimal(meter_stop) if meter_stop else Decimal(meter_start) + kwh,
        energy_kwh=kwh,
        pile_amount_yuan=Decimal(pile_amount) if pile_amount is not None else ON_BUCKETS,
        stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
        energy_by_period=buckets, **extra,
    )


def _settle(event) -> ChargingOrder:
    services.record_store(event)
    return services.record_settle(record_id=TransactionRecord.objects.get(trade_no=event.trade_no).pk)


def _charged(order) -> Decimal:
    """Yuan the ledger's charge posting of the order moved (its debit side; 0 if none)."""
    entries = Entry.objects.filter(posting__key=f"order:{order.number}:charge", amount__gt=0)
    return sum((e.amount for e in entries), Decimal("0"))


# ---------------------------------------------------------------- whose buckets


def test_a_pile_on_our_confirmed_model_is_billed_on_its_buckets(funded_member, connector, tou):
    order = _charging(funded_member, connector)
    settled = _settle(_record(order, **_confirmed(order)))
    assert settled.state == OrderState.SETTLED and not settled.review_reason
    assert settled.total_amount == ON_BUCKETS and settled.bill["source"] == "pile"
    assert "by_time_because" not in settled.bill
    assert balance(funded_member).available == Decimal("100.00") - ON_BUCKETS
    ledger_clean()


@pytest.mark.parametrize(("version", "since", "why"), [
    (None, None, "从未确认"),
    (9999, START - timedelta(days=1), "9999"),
    ("ours", START + timedelta(minutes=30), "之后才确认"),
])
def test_a_pile_that_never_confirmed_our_model_is_billed_by_time_of_day(
    funded_member, connector, tou, version, since, why
):
    order = _charging(funded_member, connector)
    version = order.tariff_snapshot["model_number"] if version == "ours" else version
    settled = _settle(_record(order, pile_tariff_version=version, pile_tariff_since=since))
    # Its buckets are its own periods: the total is split by time of day instead.
    assert settled.total_amount == BY_TIME and settled.bill["source"] == "meter"
    assert why in settled.bill["by_time_because"]
    # Billing by time of day is the right bill, not a doubt: charged, nothing to review.
    assert settled.state == OrderState.SETTLED and not settled.review_reason
    assert _charged(settled) == BY_TIME
    assert balance(funded_member).available == Decimal("100.00") - BY_TIME
    ledger_clean()


def test_an_unconfirmed_pile_is_billed_along_its_meter_samples(funded_member, connector, tou):
    from charging.models import MeterSample

    order = _charging(funded_member, connector)
    # 16 kWh in the valley hour, 4 in the flat one: 16 × 0.88 + 4 × 1.50 = 20.08
    MeterSample.objects.create(order=order, pile_code=order.pile.code, connector_no=1,
                               at=START + timedelta(hours=1), energy_kwh=Decimal("16"))
    settled = _settle(_record(order))
    assert settled.total_amount == Decimal("20.08") and settled.state == OrderState.SETTLED


# ---------------------------------------------------------------- 0xB2: a fifth price group


def _five_groups(order, groups, total="20"):
    """A YKC 0x3B of length 0xB2 (five price groups) through the codec and the gateway's
    conversion, as a pile sends it."""
    from protocols.ykc import messages as m
    from protocols.ykc.frame import decode_frame, encode_frame
    from protocols.ykc.gateway.frames import record_event

    zero = Decimal("0")
    usage = [m.PeriodUsage(Decimal("1.00000"), Decimal(e), Decimal(e), zero) for e in groups]
    e = Decimal(total)
    message = m.TransactionRecord(
        order.trade_no, order.pile.code, 1, START, STOP, tuple(usage), Decimal("100"),
        Decimal("100") + e, e, e, ON_BUCKETS, "LGAG4PY33S6013235", 1, STOP, 0x40, "0" * 16)
    raw = encode_frame(message, 7)
    assert raw[1] == 0xB2  # the frame's length byte: the non-standard record
    frame = decode_frame(raw)
    assert len(frame.message.periods) == 5
    return record_event(order.pile.code, frame.message, raw.hex().upper(), timezone.now(),
                        (order.tariff_snapshot["model_number"], START - timedelta(days=1)))


def test_a_fifth_group_is_kept_and_the_whole_total_billed_by_time(funded_member, connector, tou):
    order = _charging(funded_member, connector)
    # sharp, peak, flat, valley, and 5 kWh in the pile's fifth group; they add up to 20.
    event = _five_groups(order, ["0", "0", "10", "5", "5"])
    assert event.energy_by_period["group5"] == Decimal("5")
    settled = _settle(event)
    record = TransactionRecord.objects.get(trade_no=order.trade_no)
    assert RecordPeriod.objects.get(record=record, period="group5").energy_kwh == Decimal("5")
    # Before: the fifth group dropped, 15 kWh priced out of 20 delivered. Now all 20, by time.
    assert settled.bill["energy_kwh"] == "20.0000" and settled.total_amount == BY_TIME
    assert "四个标准时段之外" in settled.bill["by_time_because"]
    assert settled.state == OrderState.SETTLED and not settled.review_reason
    assert balance(funded_member).available == Decimal("100.00") - BY_TIME
    ledger_clean()


def test_groups_that_do_not_add_up_hold_the_order_for_review(funded_member, connector, tou):
    order = _charging(funded_member, connector)
    event = _five_groups(order, ["0", "0", "10", "5", "3"])  # 18 of 20 kWh
    settled = _settle(event)
    assert settled.state == OrderState.REVIEW and settled.abnormal
    assert "合计 18.0000 kWh" in settled.review_reason
    assert settled.total_amount == BY_TIME  # the total, by time of day
    assert _charged(settled) == 0  # held: nothing captured, the hold stays
    assert balance(funded_member).available == Decimal("0.00")
    # Settling again (the reconciler, a retried task) leaves it held.
    services.orders_reconcile(now=timezone.now() + timedelta(hours=1))
    assert ChargingOrder.objects.get(pk=order.pk).state == OrderState.REVIEW
    assert _charged(settled) == 0
    approved = services.order_review_approve(order_id=order.pk, user=_user(), reason="核对无误")
    assert approved.state == OrderState.SETTLED and approved.paid_amount == BY_TIME
    assert balance(funded_member).available == Decimal("100.00") - BY_TIME
    assert "核对无误" in approved.transitions.last().reason
    ledger_clean()


def test_four_standard_groups_short_of_the_total_are_flagged(funded_member, connector, tou):
    order = _charging(funded_member, connector)
    settled = _settle(_record(order, buckets={"valley": Decimal("5"), "flat": Decimal("10")},
                              **_confirmed(order)))
    assert settled.state == OrderState.REVIEW
    assert settled.total_amount == BY_TIME and "合计 15.0000 kWh" in settled.review_reason


def test_rounding_within_the_piles_precision_is_not_a_difference(funded_member, connector, tou):
    order = _charging(funded_member, connector)
    settled = _settle(_record(order, buckets={"valley": Decimal("5.0001"),
                                              "flat": Decimal("15.0001")}, **_confirmed(order)))
    assert settled.state == OrderState.SETTLED and not settled.review_reason


# ---------------------------------------------------------------- impossible records


def _user():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get_or_create(username="reviewer")[0]


@pytest.mark.parametrize(("changes", "why"), [
    # 60 kW connector × 2 h × 1.10 + 0.1 = 132.1 kWh at most
    ({"kwh": "200", "buckets": {}}, "超过 60.0 kW"),
    ({"meter_start": "100", "meter_stop": "90"}, "小于起码"),
    ({"started": STOP, "stopped": START}, "早于开始时间"),
    ({"pile_amount": "0"}, "充电桩金额为 ¥0.00"),
])
def test_an_impossible_record_is_held_and_never_charged_silently(
    funded_member, connector, tou, changes, why
):
    order = _charging(funded_member, connector)
    settled = _settle(_record(order, **{**_confirmed(order), **changes}))
    assert settled.state == OrderState.REVIEW and settled.abnormal
    assert why in settled.review_reason
    assert _charged(settled) == 0 and settled.paid_amount == 0
    assert settled.transitions.last().to_state == OrderState.REVIEW
    assert why in settled.transitions.last().reason
    # Rejected: nothing charged, the hold goes back.
    rejected = services.order_review_reject(order_id=order.pk, user=_user(), reason="电表异常")
    assert rejected.state == OrderState.SETTLED and rejected.total_amount == 0
    assert _charged(rejected) == 0 and balance(funded_member).available == Decimal("100.00")
    ledger_clean()


def test_a_plausible_fast_session_is_not_flagged(funded_member, connector, tou):
    order = _charging(funded_member, connector)
    settled = _settle(_record(order, kwh="110", buckets={}, pile_amount="1", **_confirmed(order)))
    assert settled.state == OrderState.SETTLED and not settled.review_reason


# ---------------------------------------------------------------- unknown trade numbers


def test_a_record_for_an_unknown_trade_number_is_kept_for_review(funded_member, connector, tou):
    # Even from a pile on our model: a session nobody started here is priced by time of day.
    event = _record(None, trade_no="7" * 32, pile_amount="30.00", pile_tariff_version=1,
                    pile_tariff_since=START - timedelta(days=1))
    settled = _settle(event)
    assert settled.pile_initiated and settled.member is None
    assert settled.state == OrderState.REVIEW and "未发起过" in settled.review_reason
    assert settled.pile_amount == Decimal("30.00")  # the pile's own figures kept
    assert settled.total_amount == BY_TIME and "从未发起" in settled.bill["by_time_because"]
    assert not Posting.objects.filter(ref=settled.number).exists()  # charged to nobody
    approved = services.order_review_approve(order_id=settled.pk, user=_user(), reason="桩离线启动")
    assert approved.state == OrderState.SETTLED and approved.paid_amount == 0
    assert not Posting.objects.filter(ref=settled.number).exists()
    assert balance(funded_member).available == Decimal("100.00")
    ledger_clean()


def test_review_decisions_need_an_order_under_review_and_a_reason(funded_member, connector, tou):
    order = _charging(funded_member, connector)
    with pytest.raises(services.OrderRefused) as refused:
        services.order_review_approve(order_id=order.pk, user=_user(), reason="ok")
    assert refused.value.code == "order_not_in_review"
    with pytest.raises(services.OrderRefused) as refused:
        services.order_review_reject(order_id=order.pk, user=_user(), reason=" ")
    assert refused.value.code == "reason_required"


# ---------------------------------------------------------------- what staff and drivers see


def test_the_order_page_the_filter_and_the_frame_log_say_why(staff_client, funded_member,
                                                            connector, tou):
    from protocols.models import FrameLog

    order = _charging(funded_member, connector)
    event = _five_groups(order, ["0", "0", "10", "5", "3"])
    settled = _settle(event)
    r = staff_client.get("/admin/charging/chargingorder/?review=held", **HOST)
    assert r.status_code == 200 and settled.number in r.content.decode()
    r = staff_client.get("/admin/charging/chargingorder/?review=held&state__exact=settled", **HOST)
    assert settled.number not in r.content.decode()
    page = staff_client.get(f"/admin/charging/chargingorder/{order.pk}/change/", **HOST)
    body = page.content.decode()
    assert page.status_code == 200
    assert "18.0000" in body and "order-review" in body
    assert f"{order.pk}/approve/" in body and f"{order.pk}/reject/" in body
    assert f"?q={order.trade_no}" in body  # the frames of this session
    FrameLog.objects.create(pile_code=order.pile.code, at=timezone.now(), direction="in",
                            frame_type=0x3B, name="TransactionRecord", trade_no=order.trade_no,
                            hex=event.raw_hex)
    row = FrameLog.objects.get(trade_no=order.trade_no)
    log = staff_client.get(f"/admin/protocols/framelog/{row.pk}/change/", **HOST)
    text = log.content.decode()
    assert log.status_code == 200 and settled.number in text and "18.0000" in text
    # The reject form, then the decision.
    url = f"/admin/charging/chargingorder/{order.pk}/reject/"
    assert staff_client.get(url, **HOST).status_code == 200
    assert staff_client.post(url, {"reason": "桩计量故障"}, **HOST).status_code == 302
    order.refresh_from_db()
    assert order.state == OrderState.SETTLED and order.total_amount == 0
    assert balance(funded_member).available == Decimal("100.00")
    ledger_clean()


def test_the_driver_sees_the_order_being_checked(funded_member, connector, tou):
    from charging.api.serializers import OrderOut

    order = _charging(funded_member, connector)
    settled = _settle(_record(order, pile_amount="0"))
    data = OrderOut(settled).data
    assert data["state"] == "review" and data["under_review"] is True
    assert "review_reason" not in data  # staff's words stay with staff
