"""The domain side of interconnection (T/CEC partner platforms): the port's station and
order views, and partner orders started and stopped through the charging services.

Called by ``charging.handlers`` for :class:`port.StationsQuery`, :class:`port.OrdersQuery`,
:class:`port.PartnerStart` and :class:`port.PartnerStop`; nothing here knows the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from django.db.models import Prefetch

from billing.tariffs import pricing
from evplatform import money
from stations.models import Connector, Pile, Station

from . import port, services
from .models import ACTIVE_STATES, ChargingOrder, OrderState, PaymentMode

_STOP = {value.value: value for value in port.StopReason}


def stations_view(query: port.StationsQuery) -> tuple[port.StationView, ...]:
    """The operator's stations with piles and connectors (see :class:`port.StationsQuery`)."""
    stations = Station.objects.order_by("pk").prefetch_related(
        Prefetch("piles", queryset=Pile.objects.order_by("code").prefetch_related(
            Prefetch("connectors", queryset=Connector.objects.order_by("number"))
        ))
    )
    if query.station_ids is not None:
        stations = stations.filter(pk__in=query.station_ids)
    if query.changed_since is not None:
        stations = stations.filter(updated_at__gte=query.changed_since)
    return tuple(_station(s) for s in stations)


def _station(s: Station) -> port.StationView:
    return port.StationView(
        id=s.pk, code=s.code, name=s.name, address=s.address, area_code=s.area_code or "",
        latitude=s.latitude, longitude=s.longitude, station_type=s.station_type, status=s.status,
        phone=s.phone, opening_hours=s.opening_hours, parking_fee_note=s.parking_fee_note,
        time_zone=s.time_zone, updated_at=s.updated_at,
        piles=tuple(
            port.PileView(
                code=p.code, name=p.name, current_type=p.current_type, power_kw=p.rated_power_kw,
                vendor=p.vendor, model=p.model, online=p.online,
                connectors=tuple(
                    port.ConnectorView(
                        connector_no=c.number, name=f"{p.name or p.code}-{c.number}",
                        status=_status(c, p, s), connector_type=c.connector_type,
                        power_kw=c.rated_power_kw, voltage_v=c.rated_voltage_v,
                        current_a=c.rated_current_a, status_changed_at=c.status_changed_at,
                    )
                    for c in p.connectors.all()
                ),
            )
            for p in s.piles.all()
        ),
    )


# A station staff closed, put into maintenance or still build: its connectors cannot serve.
_OUT_OF_SERVICE = (Station.Status.BUILDING, Station.Status.CLOSED, Station.Status.MAINTENANCE)


def _status(connector: Connector, pile: Pile, station: Station | None = None) -> port.ConnectorStatus:
    """The connector's status as partners see it: offline with its pile; ``fault`` (not
    usable) while staff keep the pile disabled (e.g. in maintenance) or the station closed,
    in maintenance or under construction; else what the pile reported."""
    if not pile.online:
        return port.ConnectorStatus.OFFLINE
    if not pile.enabled or (station is not None and station.status in _OUT_OF_SERVICE):
        return port.ConnectorStatus.FAULT
    try:
        return port.ConnectorStatus(connector.status)
    except ValueError:
        return port.ConnectorStatus.OFFLINE


def orders_view(query: port.OrdersQuery) -> tuple[port.OrderView, ...]:
    """Orders as partners and regulators see them (see :class:`port.OrdersQuery`)."""
    orders = ChargingOrder.objects.select_related("pile", "connector").order_by("pk")
    if query.order_ids is not None:
        orders = orders.filter(pk__in=query.order_ids)
    if query.partner:
        orders = orders.filter(partner=query.partner)
    if query.partner_seq:
        orders = orders.filter(partner_seq=query.partner_seq)
    if query.settled_from is not None:
        orders = orders.filter(settled_at__gte=query.settled_from)
    if query.settled_to is not None:
        orders = orders.filter(settled_at__lt=query.settled_to)
    if query.active:
        orders = orders.filter(state__in=ACTIVE_STATES)
    return tuple(order_view(o) for o in orders)


def order_view(order: ChargingOrder) -> port.OrderView:
    """The order as partners and regulators see it. Its money always adds up: total =
    electricity + service, where service carries whatever is not energy priced at the
    electricity price (the service fee, a minimum-charge top-up, an occupancy fee, less a
    discount). While charging, the figures are the running estimate the driver sees (the
    energy so far priced from the order's tariff snapshot); settled, the bill's."""
    progress = order.progress or {}
    live = _live_bill(order) if order.state in ACTIVE_STATES else None
    if live is not None:
        electricity, total = live.electricity_yuan, live.total_yuan
        lines = [_line(line) for line in live.lines]
        segments = [_segment(s) for s in live.segments]
    else:
        electricity, total = order.electricity_amount, _live_total(order)
        lines = [_line(line) for line in (order.bill or {}).get("lines", [])]
        segments = _settled_segments(order) if lines else []
    electricity = min(electricity, total)
    return port.OrderView(
        id=order.pk, number=order.number, partner=order.partner, partner_seq=order.partner_seq,
        station_id=order.station_id, pile_code=order.pile.code, connector_no=order.connector.number,
        connector_status=_status(order.connector, order.pile), state=order.state,
        stop_reason=_STOP.get(order.stop_reason), created_at=order.created_at,
        started_at=order.started_at, stopped_at=order.stopped_at, settled_at=order.settled_at,
        energy_kwh=_live_energy(order), electricity_yuan=electricity,
        service_yuan=total - electricity, total_yuan=total,
        voltage_v=_dec(progress.get("voltage_v")), current_a=_dec(progress.get("current_a")),
        soc_percent=progress.get("soc_percent"), details=_details(order, lines, segments),
    )


def _dec(value) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _live_energy(order: ChargingOrder) -> Decimal:
    if order.state in ACTIVE_STATES:
        return _dec((order.progress or {}).get("energy_kwh")) or order.energy_kwh
    return order.energy_kwh


def _live_total(order: ChargingOrder) -> Decimal:
    if order.state in ACTIVE_STATES:
        return _dec((order.progress or {}).get("amount_yuan")) or order.total_amount
    return order.total_amount


def _live_bill(order: ChargingOrder) -> pricing.Bill | None:
    """The running bill of a charging order: the energy so far priced from its snapshot,
    split by time of day between the start and the latest reading (what
    ``services.progress.estimate_amount`` shows the driver). None before any energy."""
    progress = order.progress or {}
    energy, at = _dec(progress.get("energy_kwh")), progress.get("at")
    start = order.started_at or order.created_at
    if not order.tariff_snapshot or not energy or energy <= 0 or not at:
        return None
    at = datetime.fromisoformat(at)
    if at <= start:
        return None
    try:
        snapshot = pricing.TariffSnapshot.from_dict(order.tariff_snapshot)
        return pricing.price_meter_readings(snapshot, [(start, Decimal("0")), (at, energy)])
    except pricing.PricingError:
        return None


@dataclass(frozen=True)
class _Line:
    periods: frozenset[str]
    energy_kwh: Decimal
    electricity_price: Decimal
    service_price: Decimal
    electricity_yuan: Decimal
    service_yuan: Decimal


@dataclass(frozen=True)
class _Stretch:
    start: datetime
    end: datetime
    period: str
    energy_kwh: Decimal


def _line(line) -> _Line:
    """A bill line (``pricing.BillLine`` or its stored dict) as plain figures."""
    if isinstance(line, dict):
        return _Line(frozenset(line.get("periods") or ()), Decimal(line["energy_kwh"]),
                     Decimal(line["electricity_price"]), Decimal(line["service_price"]),
                     Decimal(line["electricity_yuan"]), Decimal(line["service_yuan"]))
    return _Line(frozenset(p.value for p in line.periods), line.energy_kwh, line.electricity_price,
                 line.service_price, line.electricity_yuan, line.service_yuan)


def _segment(segment) -> _Stretch:
    """A bill segment (``pricing.Segment`` or its stored dict)."""
    if isinstance(segment, dict):
        return _Stretch(datetime.fromisoformat(segment["start"]), datetime.fromisoformat(segment["end"]),
                        segment["period"], Decimal(segment["energy_kwh"]))
    return _Stretch(segment.start, segment.end, segment.period.value, segment.energy_kwh)


def _settled_segments(order: ChargingOrder) -> list[_Stretch]:
    """When in the session each tariff period was: the bill's own segments (priced from
    the meter timeline), else (the pile priced its buckets, YKC 0x3B) the session's
    timeline from its samples split at the snapshot's period boundaries."""
    stored = (order.bill or {}).get("segments") or []
    if stored:
        return [_segment(s) for s in stored]
    start, end = order.started_at, order.stopped_at
    if not order.tariff_snapshot or start is None or end is None or end <= start:
        return []
    readings = [(start, Decimal("0"))]
    readings += [(s.at, s.energy_kwh) for s in order.samples.filter(at__gt=start, at__lt=end)
                 .order_by("at") if Decimal("0") <= s.energy_kwh <= order.energy_kwh]
    readings.append((end, max(order.energy_kwh, readings[-1][1])))
    snapshot = pricing.TariffSnapshot.from_dict(order.tariff_snapshot)
    for points in (readings, [readings[0], readings[-1]]):
        try:
            return [_segment(s) for s in pricing.split_meter_readings(snapshot, points).segments]
        except pricing.PricingError:
            continue
    return []


def _share(total: Decimal, weights: list[Decimal], quantum: Decimal) -> list[Decimal]:
    """``total`` (a multiple of ``quantum``) shared in proportion to ``weights`` by the
    largest remainder: the parts are multiples of ``quantum`` and add up to ``total``."""
    units = int(total / quantum)
    weight = sum(weights, Decimal(0))
    if weight <= 0:
        weights, weight = [Decimal(1)] * len(weights), Decimal(len(weights))
    exact = [units * w / weight for w in weights]
    parts = [int(x.to_integral_value(rounding=ROUND_FLOOR)) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: exact[i] - parts[i], reverse=True)[:units - sum(parts)]:
        parts[i] += 1
    return [quantum * p for p in parts]


def _details(order: ChargingOrder, lines: list[_Line], segments: list[_Stretch]) -> tuple[port.OrderDetail, ...]:
    """The order's priced parts, one per stretch of a tariff period (split at the period
    boundaries), chronological. Each bill line's energy and money are shared among its
    periods' stretches by their energy on the timeline (time when it has none), so the
    parts add up to the line exactly; a line no stretch matches (a pile's clock off) is one
    part spanning the session."""
    start = order.started_at or order.created_at
    end = order.stopped_at or (order.progress or {}).get("at") or start
    end = datetime.fromisoformat(end) if isinstance(end, str) else end
    details = []
    for line in lines:
        mine = [s for s in segments if s.period in line.periods and s.end > s.start]
        if not mine:
            details.append(port.OrderDetail(
                start=start, end=end, energy_kwh=line.energy_kwh,
                electricity_price=line.electricity_price, service_price=line.service_price,
                electricity_yuan=line.electricity_yuan, service_yuan=line.service_yuan))
            continue
        weights = [s.energy_kwh for s in mine]
        if sum(weights, Decimal(0)) <= 0:
            weights = [Decimal((s.end - s.start).total_seconds()) for s in mine]
        parts = zip(mine, _share(line.energy_kwh, weights, money.KWH_QUANTUM),
                    _share(line.electricity_yuan, weights, money.CENT),
                    _share(line.service_yuan, weights, money.CENT), strict=True)
        details += [
            port.OrderDetail(start=s.start, end=s.end, energy_kwh=kwh,
                             electricity_price=line.electricity_price,
                             service_price=line.service_price, electricity_yuan=elec,
                             service_yuan=service)
            for s, kwh, elec, service in parts
        ]
    return tuple(sorted(details, key=lambda d: d.start))


def partner_start(request: port.PartnerStart) -> port.PartnerOrderReply:
    """Start a partner's order through :func:`services.order_create` (mode partner)."""
    connector = (
        Connector.objects.select_related("pile__station")
        .filter(pile__code=request.pile_code, number=request.connector_no)
        .first()
    )
    if connector is None:
        return port.PartnerOrderReply(None, port.StartRefusal.CONNECTOR_UNKNOWN.value)
    try:
        order = services.order_create(
            member=None, connector=connector, mode=PaymentMode.PARTNER, partner=request.partner,
            partner_seq=request.partner_seq, partner_credit=request.credit_yuan,
        )
    except services.OrderRefused as refused:
        code = "seq_reused" if refused.code == "idempotency_key_reused" else refused.code
        return port.PartnerOrderReply(None, code)
    return port.PartnerOrderReply(order_view(_fresh(order.pk)))


def partner_stop(request: port.PartnerStop) -> port.PartnerOrderReply:
    """Stop a partner's order through :func:`services.order_stop` (asked again while
    stopping: the stop is re-sent)."""
    order = ChargingOrder.objects.filter(
        partner=request.partner, partner_seq=request.partner_seq
    ).first()
    if order is None:
        return port.PartnerOrderReply(None, "order_unknown")
    if order.state not in (OrderState.STARTING, OrderState.CHARGING, OrderState.STOPPING):
        return port.PartnerOrderReply(order_view(order), "not_charging")
    services.order_stop(
        order_id=order.pk, actor=services.Actor.SYSTEM, actor_id=request.partner,
        reason=port.StopReason.DRIVER.value,
    )
    return port.PartnerOrderReply(order_view(_fresh(order.pk)))


def _fresh(order_id: int) -> ChargingOrder:
    return ChargingOrder.objects.select_related("pile", "connector").get(pk=order_id)
