"""The domain side of the pile port: ``dispatch`` and one handler per port message.

Gateways (``protocols.*``) call :func:`dispatch` with an event or query from
``charging.port``; the handler for its type calls the domain's service and returns the
reply the gateway needs (or None). A new protocol speaks these same messages and needs no
change here; a new kind of message is one dataclass in ``port`` and one entry in
``HANDLERS``. :func:`live_queue` is the one non-blocking seam: the gateways' batched
Redis live-state writes, laid out by ``stations.live``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import port


def _login(event: port.PileLogin) -> port.LoginDecision:
    from stations import login

    outcome = login.pile_login(pile_code=event.pile_code, peer=event.peer,
                                  firmware_version=event.firmware_version, iccid=event.iccid,
                                  at=event.at, protocol=event.protocol,
                                  password=event.password)
    if not outcome.accepted:
        return port.LoginDecision(accepted=False, refusal=port.LoginRefusal(outcome.reason))
    return port.LoginDecision(accepted=True, schema=outcome.schema,
                              heartbeat_interval_s=outcome.heartbeat_interval_s,
                              connectors=outcome.connectors)


def _logins(event: port.PileLogins) -> tuple[port.LoginDecision, ...]:
    from stations import login

    outcomes = login.piles_login(attempts=[login.LoginAttempt(
        pile_code=one.pile_code, peer=one.peer, firmware_version=one.firmware_version,
        iccid=one.iccid, at=one.at, protocol=one.protocol, password=one.password)
        for one in event.logins])
    return tuple(
        port.LoginDecision(accepted=True, schema=outcome.schema,
                           heartbeat_interval_s=outcome.heartbeat_interval_s,
                           connectors=outcome.connectors) if outcome.accepted
        else port.LoginDecision(accepted=False, refusal=port.LoginRefusal(outcome.reason))
        for outcome in outcomes)


def _takeover_refused(event: port.PileTakeoverRefused) -> None:
    from stations import login

    login.takeover_refused(pile_code=event.pile_code, peer=event.peer,
                           holder_peer=event.holder_peer, at=event.at)


def _firmware_status(event: port.FirmwareStatus) -> None:
    from stations import firmware

    firmware.firmware_status_record(pile_code=event.pile_code, status=event.status,
                                    at=event.at, detail=event.detail)


def _online(event: port.PileOnline) -> None:
    from stations import services

    services.pile_mark_online(pile_code=event.pile_code, at=event.at)


def _online_many(event: port.PilesOnline) -> tuple[str, ...]:
    from stations import services

    return tuple(services.piles_mark_online(marks=[(mark.pile_code, mark.at)
                                                   for mark in event.marks]))


def _offline(event: port.PileOffline) -> None:
    _offline_many(port.PilesOffline((event,)))


def _offline_many(event: port.PilesOffline) -> tuple[str, ...]:
    from stations import services

    marks = [(mark.pile_code, mark.at) for mark in event.marks]
    marked = services.piles_mark_disconnected(marks=marks)
    # A car left after its session is charged occupancy up to here (see services.occupancy).
    from .services import occupancy

    occupancy.occupancy_piles_offline(marks=marks)
    return tuple(marked)


def _connector_status(event: port.ConnectorStatusChanged) -> None:
    _connector_statuses((event,))


def _connector_statuses(events: tuple[port.ConnectorStatusChanged, ...]) -> None:
    """The status changes of :class:`port.ConnectorStatusChanged` (one or a batch): the
    connectors' statuses in one write, partners told of each that changed, and for each
    connector reported idle its session's occupancy stopped and its station's queue
    offered it."""
    from django.db import transaction

    from evplatform.queue import task_queue_on_commit, task_queue_on_commit_batched
    from stations import services

    if not events:
        return
    changed = services.connector_statuses_save(changes=[
        (e.pile_code, e.connector_no, str(e.status), e.at) for e in events])
    for pile_code, connector_no in sorted(changed):
        # Partners and regulators hear of it (notification_stationStatus); a gateway's
        # batch of jobs sends the changes of the batch as one task.
        task_queue_on_commit_batched("cec.connector_statuses", [pile_code, connector_no])
    idle = [e for e in events if e.status == port.ConnectorStatus.IDLE]
    if not idle:
        return
    # The car left: its session's occupancy fee stops here (charged if settled) ...
    from .services import occupancy

    occupancy.occupancy_connectors_unplugged(
        reports=[(e.pile_code, e.connector_no, e.at) for e in idle])
    # ... and the next driver in the station's queue is offered the connector.
    from .models import QueueEntry

    stations = sorted(set(QueueEntry.objects.filter(
        state="waiting", station__piles__code__in={e.pile_code for e in idle},
    ).values_list("station_id", flat=True)))
    for station_id in stations:
        with transaction.atomic():
            task_queue_on_commit("charging.station_schedule", station_id, "connector idle")


def tariff_day(snapshot, day) -> port.TariffDay:
    """Billing's ``TariffSnapshot`` as the port's :class:`port.TariffDay` for local date ``day``
    (its season / special-day map; prices as stored, yuan/kWh)."""
    return port.TariffDay(
        version_number=snapshot.model_number,
        prices={str(p.period): (p.electricity, p.service) for p in snapshot.prices},
        slots=tuple(str(period) for period in snapshot.slots_on(day)),
        loss_ratio=snapshot.loss_ratio,
    )


def _faults(event: port.FaultsReported) -> None:
    _faults_many((event,))


def _faults_many(events: tuple[port.FaultsReported, ...]) -> None:
    from stations import faults

    faults.faults_report_many(reports=[faults.FaultsReport(
        pile_code=e.pile_code, connector_no=e.connector_no, at=e.at,
        faults=tuple(faults.ReportedFault(str(f.code), str(f.severity), f.protocol_code)
                     for f in e.faults)) for e in events])


def _pile_tariff(query: port.PileTariffQuery) -> port.TariffDay | None:
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from billing.tariffs import selectors as tariffs
    from stations.models import Pile

    pile = Pile.objects.select_related("station").filter(code=query.pile_code).first()
    if pile is None:
        return None
    zone = ZoneInfo(pile.station.time_zone)
    now = timezone.now()
    today = now.astimezone(zone).date()
    day = query.on_date or today
    # Today: the version in force now; another day: the one in force at its start.
    at = now if day == today else datetime.combine(day, time(0), tzinfo=zone)
    snapshot = tariffs.pile_snapshot(pile, at)
    return None if snapshot is None else tariff_day(snapshot, day)


def _pile_tariffs(query: port.PileTariffsQuery) -> port.PileTariffs:
    from datetime import date
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from billing.tariffs import selectors as tariffs
    from stations.models import Pile

    at = query.at or timezone.now()
    piles = Pile.objects.all()
    if query.pile_codes is not None:
        piles = piles.filter(code__in=query.pile_codes)
    if query.protocol:
        piles = piles.filter(protocol=query.protocol)
    out: dict[str, port.PileTariff] = {}
    # Each snapshot's day once per call (every pile of a station shares one; billing keeps
    # the snapshot object per version and zone): keyed by identity, the rows hold them alive.
    days: dict[tuple[int, date], port.TariffDay] = {}
    for row in tariffs.pile_snapshots(piles.order_by("code"), at):
        day = at.astimezone(ZoneInfo(row.time_zone)).date()
        if row.snapshot is not None and (id(row.snapshot), day) not in days:
            days[(id(row.snapshot), day)] = tariff_day(row.snapshot, day)
        out[row.code] = port.PileTariff(
            pile_code=row.code, pile_id=row.pile_id, on_date=day,
            day=None if row.snapshot is None else days[(id(row.snapshot), day)],
            missing=port.TariffMissing.NO_TARIFF if row.snapshot is None else None,
        )
    unknown = ()
    missing = set(query.pile_codes or ()) - out.keys()
    if missing:  # absent, or of another protocol: read which exist only then
        known = set(Pile.objects.filter(code__in=missing).values_list("code", flat=True))
        unknown = tuple(sorted(missing - known))
    return port.PileTariffs(piles=out, unknown=unknown)


def _pile_infos(piles) -> tuple[port.PileInfo, ...]:
    rows = piles.order_by("code").values_list(
        "code", "pk", "name", "protocol", "enabled", "connector_count", "rated_power_kw")
    return tuple(port.PileInfo(*row) for row in rows)


def _piles(query: port.PilesQuery) -> tuple[port.PileInfo, ...]:
    from stations.models import Pile

    piles = Pile.objects.all()
    if query.pile_codes is not None:
        piles = piles.filter(code__in=query.pile_codes)
    if query.protocol:
        piles = piles.filter(protocol=query.protocol)
    if query.enabled_only:
        piles = piles.filter(enabled=True)
    return _pile_infos(piles)


def _visible_piles(query: port.VisiblePilesQuery) -> port.VisiblePiles:
    from stations import selectors
    from stations.models import Pile

    sees_all = selectors.sees_all_stations(query.user)
    piles = Pile.objects.filter(station__in=selectors.stations_visible_to(query.user))
    return port.VisiblePiles(sees_all=sees_all, piles=_pile_infos(piles))


def _operator(query: port.OperatorQuery) -> str | None:
    from tenants.selectors import operator_get_by_slug

    operator = operator_get_by_slug(query.slug)
    return None if operator is None else operator.schema_name


def _progress(event: port.Progress) -> None:
    from . import services

    services.order_progress(event)


def _progress_batch(event: port.ProgressBatch) -> int:
    from . import services

    orders = services.order_progress_batch(events=event.readings)
    return sum(order is not None for order in orders)


def _connector_reports(event: port.ConnectorReports) -> int:
    from . import services

    _connector_statuses(event.statuses)
    if event.faults:
        _faults_many(event.faults)
    if not event.readings:
        return 0
    orders = services.order_progress_batch(events=event.readings)
    return sum(order is not None for order in orders)


def _samples(event: port.ReadingsSampled) -> None:
    from . import samples

    samples.samples_store(event.readings)


def _start_result(event: port.StartResult) -> None:
    from . import services

    services.order_start_result(event)


def _stop_result(event: port.StopResult) -> None:
    from . import services

    services.order_stop_result(event)


def _record(event: port.TransactionRecord) -> port.RecordAck:
    from . import services

    return services.record_store(event)


def _record_review(query: port.RecordReviewQuery) -> port.RecordReview | None:
    from .models import TransactionRecord

    record = TransactionRecord.objects.select_related("order").filter(
        trade_no=query.trade_no).first()
    if record is None:
        return None
    order = record.order
    if order is None:
        return port.RecordReview(None, "", "", "", "")
    return port.RecordReview(order.pk, order.number, order.get_state_display(),
                             order.review_reason,
                             str((order.bill or {}).get("by_time_because", "")))


def _card_start(event: port.CardStartRequest) -> port.CardStartDecision:
    from . import cards

    return cards.card_start_decide(event)


def _credential(query: port.CredentialQuery) -> port.CredentialDecision:
    from . import cards

    return cards.credential_check(query)


def _stations(query: port.StationsQuery) -> tuple[port.StationView, ...]:
    from . import partners

    return partners.stations_view(query)


def _orders(query: port.OrdersQuery) -> tuple[port.OrderView, ...]:
    from . import partners

    return partners.orders_view(query)


def _partner_start(request: port.PartnerStart) -> port.PartnerOrderReply:
    from . import partners

    return partners.partner_start(request)


def _partner_stop(request: port.PartnerStop) -> port.PartnerOrderReply:
    from . import partners

    return partners.partner_stop(request)


def _partner_stations(event: port.PartnerStationsPulled) -> int:
    from stations import services

    return services.partner_stations_save(
        partner=event.partner, partner_name=event.partner_name,
        our_operator_id=event.our_operator_id, at=event.at,
        stations=[services.PartnerStationData(
            station_id=s.station_id, name=s.name, address=s.address, latitude=s.latitude,
            longitude=s.longitude, status=s.status, price_note=s.price_note,
            opening_hours=s.opening_hours, phone=s.phone,
            connectors=tuple(services.PartnerConnectorData(
                connector_id=c.connector_id, equipment_id=c.equipment_id,
                connector_type=c.connector_type, power_kw=c.power_kw, status=str(c.status))
                for c in s.connectors))
            for s in event.stations])


def _partner_connector(event: port.PartnerConnectorChanged) -> bool:
    from stations import services

    return services.partner_connector_status_save(
        partner=event.partner, connector_id=event.connector_id, status=str(event.status), at=event.at)


def _roaming(name: str) -> Callable[[Any], Any]:
    """The handler that calls ``charging.roaming.<name>`` with the message."""

    def handler(message):
        from . import roaming

        return getattr(roaming, name)(message)

    handler.__name__ = f"_roaming_{name}"
    return handler


def _partner_balance(query: port.PartnerBalanceQuery):
    from settlement import selectors

    return selectors.partner_receivable(query.partner)


HANDLERS: dict[type, Callable[[Any], Any]] = {
    port.PileLogin: _login,
    port.PileLogins: _logins,
    port.PileOnline: _online,
    port.PilesOnline: _online_many,
    port.PileTakeoverRefused: _takeover_refused,
    port.FirmwareStatus: _firmware_status,
    port.PileOffline: _offline,
    port.PilesOffline: _offline_many,
    port.ConnectorStatusChanged: _connector_status,
    port.FaultsReported: _faults,
    port.PileTariffQuery: _pile_tariff,
    port.PileTariffsQuery: _pile_tariffs,
    port.PilesQuery: _piles,
    port.VisiblePilesQuery: _visible_piles,
    port.OperatorQuery: _operator,
    port.Progress: _progress,
    port.ProgressBatch: _progress_batch,
    port.ConnectorReports: _connector_reports,
    port.ReadingsSampled: _samples,
    port.StartResult: _start_result,
    port.StopResult: _stop_result,
    port.TransactionRecord: _record,
    port.RecordReviewQuery: _record_review,
    port.CardStartRequest: _card_start,
    port.CredentialQuery: _credential,
    port.StationsQuery: _stations,
    port.OrdersQuery: _orders,
    port.PartnerStart: _partner_start,
    port.PartnerStop: _partner_stop,
    port.PartnerBalanceQuery: _partner_balance,
    # interconnection the other way: our members on partners' piles
    port.PartnerStationsPulled: _partner_stations,
    port.PartnerConnectorChanged: _partner_connector,
    port.RoamingOrdersQuery: _roaming("roaming_orders"),
    port.RoamingStarted: _roaming("roaming_started"),
    port.RoamingProgress: _roaming("roaming_progress"),
    port.RoamingStopped: _roaming("roaming_stopped"),
    port.RoamingBill: _roaming("roaming_bill"),
    port.RoamingReconcile: _roaming("roaming_reconcile"),
}


def handle(event):
    """Route one port message to its handler; returns the reply the gateway needs, else
    None. Raises TypeError for anything that is not a port message."""
    handler = HANDLERS.get(type(event))
    if handler is None:
        raise TypeError(f"not a port event: {event!r}")
    return handler(event)


def dispatch(schema_name: str | None, event):
    """Hand one event to the domain inside operator ``schema_name`` (the public schema for
    ``None``: a :class:`port.PileLogin`); blocking (call it from a thread in async code).
    Returns the reply the gateway needs, else None; the handler's errors propagate. Called
    inside the caller's transaction (a gateway dispatching a batch of events in one), the
    connection is left to the caller: closing it here would end that transaction.
    """
    from django.db import connection
    from django_tenants.utils import get_public_schema_name, schema_context

    with schema_context(schema_name or get_public_schema_name()):
        try:
            return handle(event)
        finally:
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()


# --- domain → protocol notices ----------------------------------------------------------

_LISTENERS: dict[type, list[Callable[[Any], Any]]] = {}


def listen(notice_type: type, listener: Callable[[Any], Any]) -> None:
    """Register ``listener`` for port notices of ``notice_type`` (e.g.
    :class:`port.TariffsChanged`); registering the same function twice is a no-op. Protocols
    call this from their ``AppConfig.ready``."""
    listeners = _LISTENERS.setdefault(notice_type, [])
    if listener not in listeners:
        listeners.append(listener)


def notify(notice) -> list[Any]:
    """Deliver ``notice`` to its listeners, in the caller's schema and transaction; returns
    their replies in registration order (a listener's error propagates)."""
    return [listener(notice) for listener in _LISTENERS.get(type(notice), ())]


def tariffs_changed(sender, *, piles, at, **kwargs) -> int:
    """Receiver of billing's ``tariffs_changed`` (connected in ``ChargingConfig.ready``):
    passes it to the protocols as :class:`port.TariffsChanged` with pile codes (``piles`` a
    pile queryset, or None for all). Returns the number of records they changed."""
    codes = None if piles is None else tuple(piles.values_list("code", flat=True))
    return sum(notify(port.TariffsChanged(pile_codes=codes, at=at)))


def live_queue(pipe, *, seen: dict[str, dict[str, float]],
               connectors: dict[tuple[str, str, int], dict[str, Any]]) -> None:
    """Queue the gateways' batched live state on a Redis pipeline (not executed here).

    ``seen``: schema → {pile code: epoch seconds last heard}; ``connectors``: (schema, pile
    code, connector no) → readings (status, trade_no, energy_kwh, amount_yuan, power_kw,
    voltage_v, current_a, soc_percent, remaining_min). Key layout, expiry and the status
    change log entry of each connector written are ``stations.live``'s.
    """
    from stations import live

    for schema, scores in seen.items():
        pipe.zadd(live.seen_key(schema), scores)
    written: dict[str, list[tuple[str, int]]] = {}
    for (schema, pile_code, no), values in connectors.items():
        key = live.connector_key(schema, pile_code, no)
        pipe.hset(key, mapping=live.live_values(values))
        pipe.expire(key, live.CONNECTOR_TTL_S)
        written.setdefault(schema, []).append((pile_code, no))
    for schema, written_connectors in written.items():
        live.log_queue(pipe, schema, written_connectors)
