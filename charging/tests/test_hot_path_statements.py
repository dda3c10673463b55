"""SQL statements on the two hot paths of issue #22, pinned as upper bounds so that a
regression fails: a YKC pile's reconnection (the domain calls a login makes) and an order's
settlement on its transaction record (``record_settle``)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from charging import handlers, port, services
from charging.models import OrderState, TransactionRecord


def _domain(schema, event):
    """``handlers.dispatch`` without its connection check (which would end the test's
    transaction)."""
    with schema_context(schema or get_public_schema_name()):
        return handlers.handle(event)


def _count(fn, *args, **kwargs):
    with CaptureQueriesContext(connection) as sent:
        result = fn(*args, **kwargs)
    return result, [q["sql"] for q in sent.captured_queries]


@pytest.fixture
def registered_pile(tenant, pile, tariff, monkeypatch):
    from tenants.models import PileRegistration

    # ``handlers.dispatch`` drops a connection left in a transaction: the test's is.
    monkeypatch.setattr(connection, "close_if_unusable_or_obsolete", lambda: None)

    with schema_context(get_public_schema_name()):
        PileRegistration.objects.create(code=pile.code, operator=tenant)
    connection.set_tenant(tenant)
    return pile


def _reconnect(pile, model_no: str):
    """What a reconnecting YKC pile costs the domain: the dropped link's offline mark, the
    login decision, the online mark, its 0x05 verification and (first time) 0x09 → 0x0A."""
    from protocols import adapters

    schema = connection.schema_name
    counts = {}
    now = timezone.now()
    _, counts["offline"] = _count(_domain, schema, port.PileOffline(pile.code, now))
    outcome, counts["login"] = _count(_domain, None, port.PileLogin(
        pile_code=pile.code, peer="10.0.0.5:4001", at=now, firmware_version="V1.0",
        iccid="89860000000000000001", protocol="ykc"))
    assert outcome.accepted
    _, counts["online"] = _count(_domain, schema, port.PileOnline(pile.code, now))
    answers, counts["verify"] = _count(adapters.billing_models_verified, {pile.code: model_no})
    model = None
    if not answers[pile.code]:
        model, counts["0x09"] = _count(adapters.billing_model_for, pile.code)
        _, counts["0x0A"] = _count(adapters.billing_model_delivered, pile.code, model)
    return counts, model


# Statements as the test counts them: inside the test's transaction an atomic block adds
# SAVEPOINT / RELEASE (BEGIN / COMMIT in production, not counted), and every change of
# schema a SET search_path. Before issue #22's cuts: 31 for a reconnection, 53 for a first
# login (its 0x09 → 0x0A); after: 26 and 35; with the online mark one statement (data-
# modifying CTEs) and the 0x05's records locked, rewritten and created in one: 22 and 31.
RECONNECT_MAX = 22
FIRST_LOGIN_MAX = 31


def test_a_reconnecting_piles_login_stays_within_its_statements(registered_pile):
    from protocols.ykc.models import PileBillingModel
    from stations.models import Connector, Fault

    first, model = _reconnect(registered_pile, "0000")
    assert model is not None  # a first login: its model differs, the pile asks for it
    assert sum(len(v) for v in first.values()) <= FIRST_LOGIN_MAX, first
    state = PileBillingModel.objects.get(pile=registered_pile)
    assert (state.model_number_acked, state.last_result) == (int(model.model_no), "ok")
    assert state.held_since is not None and len(state.slots_acked) == 48

    again, model_again = _reconnect(registered_pile, model.model_no)
    assert model_again is None  # it holds today's model: verified the same
    assert sum(len(v) for v in again.values()) <= RECONNECT_MAX, again
    assert again["login"] and len(again["login"]) <= 3  # no write when nothing changed
    registered_pile.refresh_from_db()
    assert registered_pile.online
    assert set(Connector.objects.filter(pile=registered_pile).values_list("status", flat=True)) \
        == {Connector.Status.IDLE}
    assert not Fault.objects.filter(pile=registered_pile, cleared_at__isnull=True).exists()
    assert PileBillingModel.objects.get(pile=registered_pile).held_since == state.held_since


# A storm's login decisions (port.PileLogins): the registry and operators of all the piles
# in one statement, each operator's piles and connectors in one more, whatever their number.
LOGINS_MAX = 4


def test_a_storms_logins_cost_a_fixed_number_of_statements(registered_pile, station):
    from stations.models import Pile

    others = [Pile.objects.create(station=station, code=f"4401060000{n:04d}", rated_power_kw=60,
                                  connector_count=1) for n in range(1, 6)]
    from tenants.models import PileRegistration

    tenant_schema = connection.schema_name
    with schema_context(get_public_schema_name()):
        operator = PileRegistration.objects.get(code=registered_pile.code).operator
        for pile in others:
            PileRegistration.objects.create(code=pile.code, operator=operator)
    now = timezone.now()
    codes = [registered_pile.code, *(p.code for p in others), "99999999999999"]
    logins = tuple(port.PileLogin(pile_code=code, peer="10.0.0.5:4001", at=now,
                                  firmware_version="", iccid="", protocol="ykc")
                   for code in codes[:-1])

    decisions, sent = _count(_domain, None, port.PileLogins(logins))

    assert len(sent) <= LOGINS_MAX, "\n".join(sent)
    assert [d.accepted for d in decisions] == [True] * 6
    assert {d.schema for d in decisions} == {tenant_schema}
    # An unknown pile among them is refused (and listed) while the others log in.
    decisions = _domain(None, port.PileLogins((logins[0], port.PileLogin(
        pile_code=codes[-1], peer="10.0.0.5:4001", at=now, protocol="ykc"), logins[1])))
    assert [(d.accepted, d.refusal) for d in decisions] == [
        (True, None), (False, port.LoginRefusal.UNKNOWN), (True, None)]


def _settle_record(member, connector, at):
    order = services.order_start(member=member, connector=connector)
    services.order_start_result(port.StartResult(order.pile.code, connector.number,
                                                 order.trade_no, accepted=True,
                                                 at=at - timedelta(minutes=30)))
    services.record_store(port.TransactionRecord(
        pile_code=order.pile.code, connector_no=connector.number, trade_no=order.trade_no,
        started_at=at - timedelta(minutes=30), stopped_at=at,
        meter_start_kwh=Decimal("1000.0000"), meter_stop_kwh=Decimal("1010.0000"),
        energy_kwh=Decimal("10.0000"), pile_amount_yuan=Decimal("15.0000"),
        stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40, raw_hex="68..."))
    return TransactionRecord.objects.get(trade_no=order.trade_no)


# A member's settlement once the accounts, the points account and the rule exist (the
# steady state), counted as above: 52 before issue #22's cuts, 37 after.
SETTLEMENT_MAX = 37


def test_a_settlement_stays_within_its_statements_and_adds_up(funded_member, connector, tariff):
    from charging.tests.money import balance, ledger_clean
    from marketing.points import points_balance
    from settlement.models import Posting

    first = _settle_record(funded_member, connector, timezone.now() - timedelta(hours=2))
    services.record_settle(record_id=first.pk)  # accounts, points and rule made on first use
    record = _settle_record(funded_member, connector, timezone.now())

    order, sent = _count(services.record_settle, record_id=record.pk)

    assert len(sent) <= SETTLEMENT_MAX, "\n".join(sent)
    assert order.state == OrderState.SETTLED and order.paid_amount == Decimal("15.00")
    assert balance(funded_member).available == Decimal("70.00")  # 100 − 2 × 15
    assert Posting.objects.filter(key=f"order:{order.number}:charge").count() == 1
    assert points_balance(funded_member) == 30
    ledger_clean()
    # Settling again changes nothing (exactly once).
    again, resent = _count(services.record_settle, record_id=record.pk)
    assert again.state == OrderState.SETTLED and len(resent) <= 5
    assert balance(funded_member).available == Decimal("70.00")


# --- a storm's dropped links and first real-time reports, one batch per window ------------


def _storm_piles(station, count: int, first: int, *, status: str = "idle") -> list[str]:
    """``count`` online piles of two connectors each (``status``), codes from ``first``."""
    from stations.models import Connector, Pile

    codes = []
    for n in range(first, first + count):
        pile = Pile.objects.create(station=station, code=f"4401070000{n:04d}",
                                   rated_power_kw=Decimal("120.0"), online=True,
                                   connector_count=2)
        Connector.objects.bulk_create([
            Connector(pile=pile, number=no, rated_power_kw=Decimal("60.0"),
                      qr_code=f"qr-{n}-{no}", status=status) for no in (1, 2)])
        codes.append(pile.code)
    return codes


# The offline marks of a window's dropped links (port.PilesOffline): the piles locked, one
# Redis read, the piles and their connectors written and their open offline faults read in
# one statement, the missing faults inserted, and the latest orders for occupancy —
# whatever the number of piles (10 before the one statement).
OFFLINES_MAX = 7


def test_a_storms_offline_marks_cost_a_fixed_number_of_statements(tenant, station,
                                                                  monkeypatch):
    from stations import live
    from stations.models import Connector, Fault, Pile

    schema = connection.schema_name
    two, six = _storm_piles(station, 2, 1), _storm_piles(station, 6, 10)
    now = timezone.now()
    live.piles_seen(schema, dict.fromkeys(two + six, now - timedelta(seconds=3)))
    # One of the six sends a frame between the decision and the lock (it is back, on
    # another gateway): Redis's second read sees it.
    reads, read = [], live.piles_last_seen

    def last_seen(schema_, codes):
        reads.append(codes)
        if six[-1] in codes and len(reads) % 2 == 0:
            live.pile_seen(schema, six[-1], now + timedelta(seconds=1))
        return read(schema_, codes)

    monkeypatch.setattr(live, "piles_last_seen", last_seen)

    def offline(codes):
        return _domain(schema, port.PilesOffline(tuple(port.PileOffline(code, now)
                                                       for code in codes)))

    marked_two, sent_two = _count(offline, two)
    marked_six, sent_six = _count(offline, six)

    assert len(sent_two) == len(sent_six) <= OFFLINES_MAX, "\n".join(sent_six)
    assert marked_two == tuple(two) and marked_six == tuple(six[:-1])
    gone = two + six[:-1]
    assert not Pile.objects.filter(code__in=gone, online=True).exists()
    assert set(Connector.objects.filter(pile__code__in=gone).values_list("status", flat=True)) \
        == {Connector.Status.OFFLINE}
    assert Pile.objects.get(code=six[-1]).online
    assert Connector.objects.filter(pile__code=six[-1], status="idle").count() == 2
    opened = Fault.objects.filter(source=Fault.Source.OFFLINE, cleared_at__isnull=True)
    assert sorted(opened.values_list("pile__code", flat=True)) == sorted(gone)
    # The last frame before the close is the pile's last-seen time and its outage's start.
    assert {f.started_at for f in opened} == {now - timedelta(seconds=3)}
    # Marked again (a second gateway's close): nothing changes, no second fault.
    assert offline(two) == ()
    assert opened.count() == len(gone)


# The first 0x13 of a window's piles (port.ConnectorReports): the statuses in one UPDATE,
# the idle connectors' latest orders and their stations' queues in one read each, the fault
# sets (piles locked, open faults read), the readings' orders — whatever their number.
REPORTS_MAX = 13


def test_a_storms_first_realtime_reports_cost_a_fixed_number_of_statements(tenant, station):
    from stations.models import Connector, Fault

    schema = connection.schema_name
    two = _storm_piles(station, 2, 1, status="offline")
    six = _storm_piles(station, 6, 10, status="offline")
    now = timezone.now()

    def reports(codes):
        pairs = [(code, no) for code in codes for no in (1, 2)]
        return _domain(schema, port.ConnectorReports(
            statuses=tuple(port.ConnectorStatusChanged(code, no, port.ConnectorStatus.IDLE, now)
                           for code, no in pairs),
            faults=tuple(port.FaultsReported(code, no, (), now) for code, no in pairs),
            readings=tuple(port.Progress(code, no, port.ConnectorStatus.IDLE, now,
                                         trade_no="0" * 32) for code, no in pairs)))

    applied_two, sent_two = _count(reports, two)
    applied_six, sent_six = _count(reports, six)

    assert len(sent_two) == len(sent_six) <= REPORTS_MAX, "\n".join(sent_six)
    assert applied_two == applied_six == 0  # no session runs on them
    assert set(Connector.objects.filter(pile__code__in=two + six)
               .values_list("status", flat=True)) == {Connector.Status.IDLE}
    assert not Fault.objects.exists()


def test_a_connectors_fault_sets_in_one_batch_apply_in_order(tenant, station):
    from stations.models import Fault

    schema = connection.schema_name
    code, other = _storm_piles(station, 2, 1)
    now = timezone.now()
    ground = port.ActiveFault(port.FaultCode.GROUND, port.FaultSeverity.CRITICAL, "bit 3")
    fan = port.ActiveFault(port.FaultCode.FAN, port.FaultSeverity.MINOR, "bit 7")

    _domain(schema, port.ConnectorReports(faults=(
        port.FaultsReported(code, 1, (ground,), now),
        port.FaultsReported(other, 2, (fan,), now),
        port.FaultsReported(code, 1, (fan,), now + timedelta(seconds=15)),  # ground cleared
        port.FaultsReported(code, 1, (fan,), now + timedelta(seconds=30)),  # fan seen again
        port.FaultsReported(code, 9, (fan,), now),  # no such connector: nothing
        port.FaultsReported("99999999999999", 1, (fan,), now),  # no such pile: nothing
    )))

    rows = {(f.pile.code, f.connector.number, f.code): (f.started_at, f.last_seen_at,
                                                         f.cleared_at)
            for f in Fault.objects.select_related("pile", "connector")}
    assert rows == {
        (code, 1, "ground"): (now, now, now + timedelta(seconds=15)),
        (code, 1, "fan"): (now + timedelta(seconds=15), now + timedelta(seconds=30), None),
        (other, 2, "fan"): (now, now, None),
    }
