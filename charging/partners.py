"""The domain side of interconnection (T/CEC partner platforms): the port's station and
order views, and partner orders started and stopped through the charging services.

Called by ``charging.handlers`` for :class:`port.StationsQuery`, :class:`port.OrdersQuery`,
:class:`port.PartnerStart` and :class:`port.PartnerStop`; nothing here knows the protocol.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Prefetch

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
    progress = order.progress or {}
    return port.OrderView(
        id=order.pk, number=order.number, partner=order.partner, partner_seq=order.partner_seq,
        station_id=order.station_id, pile_code=order.pile.code, connector_no=order.connector.number,
        connector_status=_status(order.connector, order.pile), state=order.state,
        stop_reason=_STOP.get(order.stop_reason), created_at=order.created_at,
        started_at=order.started_at, stopped_at=order.stopped_at, settled_at=order.settled_at,
        energy_kwh=_live_energy(order), electricity_yuan=order.electricity_amount,
        service_yuan=order.service_amount, total_yuan=_live_total(order),
        voltage_v=_dec(progress.get("voltage_v")), current_a=_dec(progress.get("current_a")),
        soc_percent=progress.get("soc_percent"), details=_details(order),
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


def _details(order: ChargingOrder) -> tuple[port.OrderDetail, ...]:
    bill = order.bill or {}
    start, end = order.started_at or order.created_at, order.stopped_at or order.started_at
    details = []
    for line in bill.get("lines", []):
        segments = line.get("segments") or []
        first = datetime.fromisoformat(segments[0]["start"]) if segments else start
        last = datetime.fromisoformat(segments[-1]["end"]) if segments else end
        details.append(port.OrderDetail(
            start=first, end=last or first, energy_kwh=Decimal(line["energy_kwh"]),
            electricity_price=Decimal(line["electricity_price"]),
            service_price=Decimal(line["service_price"]),
            electricity_yuan=Decimal(line["electricity_yuan"]),
            service_yuan=Decimal(line["service_yuan"]),
        ))
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
