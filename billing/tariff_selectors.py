"""Reads of tariffs: the version in force, a connector's snapshot, station prices, pile sync.

The version in force at instant t is the tariff's latest version with ``effective_from <= t``.
A pile's tariff is its own (:class:`PileTariff`) if it has one, else its station's default
(:class:`StationTariff`). Snapshots are read on the station's wall clock: the version's
snapshot with ``timezone`` set to the station's zone.

For the YKC gateway (plain data only; the gateway wraps it in the codec's BillingModel):
:func:`pile_billing_model`, :func:`piles_due_billing_model`. Slot maps in
:class:`PileBillingModel` are 48-character strings of YKC slot codes 0..3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.utils import timezone

from stations.models import Connector, Pile, Station

from . import pricing
from .models import PileBillingModel, Tariff, TariffVersion

__all__ = [
    "local_date",
    "pile_billing_model",
    "pile_billing_model_due",
    "pile_tariff_snapshot",
    "piles_due_billing_model",
    "slots_code",
    "snapshot_for_connector",
    "station_price_today",
    "tariff_for_pile",
    "tariff_for_station",
    "tariff_list_visible",
    "tariff_version_effective",
    "version_snapshot",
]


def local_date(station: Station, at: datetime) -> date:
    """The station's local calendar date at aware instant ``at``."""
    return at.astimezone(ZoneInfo(station.time_zone)).date()


def version_snapshot(
    version: TariffVersion, *, time_zone: str | None = None
) -> pricing.TariffSnapshot:
    """The version's snapshot, read in ``time_zone`` (a station's IANA zone) when given.

    The stored snapshot is valid by construction (published through the services); raises
    :class:`billing.pricing.TariffError` only if the row was tampered with.
    """
    snapshot = pricing.TariffSnapshot.from_dict(version.snapshot)
    if snapshot.model_number != version.model_number:
        snapshot = dataclasses.replace(snapshot, model_number=version.model_number)
    if time_zone and snapshot.timezone != time_zone:
        snapshot = dataclasses.replace(snapshot, timezone=time_zone)
    return snapshot


def tariff_version_effective(tariff: Tariff | int, at: datetime) -> TariffVersion | None:
    """The tariff's version in force at aware ``at`` (latest ``effective_from <= at``)."""
    tariff_id = tariff.pk if isinstance(tariff, Tariff) else tariff
    return (
        TariffVersion.objects.filter(tariff_id=tariff_id, effective_from__lte=at)
        .order_by("-effective_from")
        .first()
    )


def _effective_versions(tariff_ids: Iterable[int], at: datetime) -> dict[int, TariffVersion]:
    """{tariff id: version in force at ``at``} in one query (PostgreSQL DISTINCT ON)."""
    ids = {i for i in tariff_ids if i is not None}
    if not ids:
        return {}
    rows = (
        TariffVersion.objects.filter(tariff_id__in=ids, effective_from__lte=at)
        .order_by("tariff_id", "-effective_from")
        .distinct("tariff_id")
    )
    return {v.tariff_id: v for v in rows}


def _pile_tariff_id(pile: Pile) -> int | None:
    own = getattr(pile, "tariff_assignment", None)
    if own is not None:
        return own.tariff_id
    default = getattr(pile.station, "tariff_assignment", None)
    return default.tariff_id if default is not None else None


def _with_assignments(piles: QuerySet[Pile]) -> QuerySet[Pile]:
    return piles.select_related("station", "tariff_assignment", "station__tariff_assignment")


def tariff_for_station(station: Station, at: datetime) -> TariffVersion | None:
    """The version of the station's default tariff in force at aware ``at``, or None."""
    assignment = getattr(station, "tariff_assignment", None)
    if assignment is None:
        return None
    return tariff_version_effective(assignment.tariff_id, at)


def tariff_for_pile(pile: Pile, at: datetime) -> TariffVersion | None:
    """The version in force at aware ``at`` for ``pile``: its own tariff, else its station's."""
    tariff_id = _pile_tariff_id(pile)
    return None if tariff_id is None else tariff_version_effective(tariff_id, at)


def snapshot_for_connector(
    connector: Connector, at: datetime
) -> tuple[TariffVersion, pricing.TariffSnapshot] | None:
    """What charging locks onto an order started at aware ``at`` on ``connector``.

    Returns ``(version, snapshot)`` — the snapshot read on the station's time zone and
    carrying the version's YKC model number — or None when neither the pile nor its station
    has a tariff with a version in force. Call
    :func:`billing.tariff_services.tariff_version_lock` on the version in the same
    transaction that creates the order.
    """
    version = tariff_for_pile(connector.pile, at)
    if version is None:
        return None
    return version, version_snapshot(version, time_zone=connector.pile.station.time_zone)


# ---------------------------------------------------------------- station prices


def _fmt(value) -> str:
    return f"{value:.5f}"


def _hhmm(slot: int) -> str:
    minutes = slot * 30
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def station_price_today(station: Station, at: datetime) -> dict[str, Any] | None:
    """``Station.price_today`` for the station's local date at aware ``at``; None untariffed.

    ``{"date": "YYYY-MM-DD", "slots": [48 × "electricity+service" yuan/kWh],
    "periods": [{"start": "HH:MM", "end": "HH:MM" (24:00 = end of day), "period",
    "electricity", "service"}]}``; prices are strings with 5 decimals. Each half-hour slot is
    priced by the version in force at the slot's start, so a version taking effect later
    today already shows from its slot on.
    """
    assignment = getattr(station, "tariff_assignment", None)
    if assignment is None:
        return None
    zone = ZoneInfo(station.time_zone)
    day = at.astimezone(zone).date()
    day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    versions = list(
        TariffVersion.objects.filter(tariff_id=assignment.tariff_id, effective_from__lt=day_end)
        .order_by("-effective_from")
        .only("id", "effective_from", "snapshot", "model_number")
    )
    # Only the last version starting at or before midnight, and those starting later today.
    day_start = datetime.combine(day, time(0), tzinfo=zone)
    candidates = []
    for version in versions:
        candidates.append(version)
        if version.effective_from <= day_start:
            break
    if not candidates or candidates[-1].effective_from >= day_end:
        return None
    snapshots = {v.pk: version_snapshot(v, time_zone=station.time_zone) for v in candidates}
    cells: list[tuple[pricing.Period, Any, Any] | None] = []
    for slot in range(pricing.SLOTS_PER_DAY):
        start = datetime.combine(day, time(slot // 2, slot % 2 * 30), tzinfo=zone)
        version = next((v for v in candidates if v.effective_from <= start), None)
        if version is None:
            cells.append(None)
            continue
        snapshot = snapshots[version.pk]
        period = snapshot.slots_on(day)[slot]
        price = snapshot.price_of(period)
        cells.append((period, price.electricity, price.service))
    if all(cell is None for cell in cells):
        return None
    periods: list[dict[str, str]] = []
    for first, end, cell in pricing._runs(cells):
        if cell is None:
            continue
        period, electricity, service = cell
        periods.append(
            {
                "start": _hhmm(first),
                "end": "24:00" if end == pricing.SLOTS_PER_DAY else _hhmm(end),
                "period": period.value,
                "electricity": _fmt(electricity),
                "service": _fmt(service),
            }
        )
    return {
        "date": day.isoformat(),
        "slots": [None if cell is None else _fmt(cell[1] + cell[2]) for cell in cells],
        "periods": periods,
    }


# ---------------------------------------------------------------- YKC pile sync


def slots_code(model: pricing.YkcBillingModel | dict) -> str:
    """The model's 48 slot codes as a string such as ``"3333…2211…"``."""
    return "".join(str(code) for code in model["slots"])


def _pile_model(
    pile: Pile, version: TariffVersion | None, day: date, cache: dict | None = None
) -> dict[str, Any] | None:
    if version is None:
        return None
    cache = {} if cache is None else cache
    key = (version.pk, pile.station.time_zone)
    if key not in cache:
        cache[key] = version_snapshot(version, time_zone=pile.station.time_zone)
    model = dict(pricing.to_ykc_billing_model(cache[key], day))
    model["model_number"] = version.model_number
    return model


def pile_tariff_snapshot(
    pile_code: str, on_date: date | None = None
) -> tuple[date, pricing.TariffSnapshot] | None:
    """``(local date, snapshot)`` of the tariff pile ``pile_code`` applies on its local
    ``on_date`` (None: today, the version in force now; another day: the version in force at
    its start), read on the station's clock; None when the pile is unknown or has no tariff
    in force. The snapshot's ``model_number`` is the version's number."""
    pile = _with_assignments(Pile.objects.filter(code=pile_code)).first()
    if pile is None:
        return None
    now = timezone.now()
    today = local_date(pile.station, now)
    day = on_date or today
    at = (
        now
        if day == today
        else datetime.combine(day, time(0), tzinfo=ZoneInfo(pile.station.time_zone))
    )
    version = tariff_for_pile(pile, at)
    if version is None:
        return None
    return day, version_snapshot(version, time_zone=pile.station.time_zone)


def pile_billing_model(pile_code: str, on_date: date | None = None) -> dict[str, Any] | None:
    """The YKC billing model (0x0A / 0x58) for pile ``pile_code`` on its local ``on_date``.

    ``on_date`` None means the pile's local today. The version is the one in force now when
    ``on_date`` is today, else the one in force at the start of ``on_date``. Returns
    :func:`billing.pricing.to_ykc_billing_model`'s dict (``model_number`` = the version's YKC
    model number, ``rates`` 8 Decimals yuan/kWh sharp..valley electricity then service — use
    ``pricing.ykc_wire_rates`` for wire order —, ``loss_ratio``, ``slots`` 48 ints 0..3), or
    None when the pile is unknown or has no tariff in force.
    """
    pile = _with_assignments(Pile.objects.filter(code=pile_code)).first()
    if pile is None:
        return None
    now = timezone.now()
    today = local_date(pile.station, now)
    day = on_date or today
    at = (
        now
        if day == today
        else datetime.combine(day, time(0), tzinfo=ZoneInfo(pile.station.time_zone))
    )
    return _pile_model(pile, tariff_for_pile(pile, at), day)


def pile_billing_model_due(
    pile: Pile, at: datetime, cache: dict | None = None
) -> tuple[int, str] | None:
    """``(model number, slot map)`` the pile should hold at ``at``, or None without tariff."""
    version = tariff_for_pile(pile, at)
    model = _pile_model(pile, version, local_date(pile.station, at), cache)
    return None if model is None else (model["model_number"], slots_code(model))


def _dues(piles: QuerySet[Pile], at: datetime) -> list[tuple[Pile, tuple[int, str] | None]]:
    """Each YKC pile with the (model number, slot map) it is due at ``at``, in few queries."""
    piles = list(_with_assignments(piles).select_related("billing_model"))
    versions = _effective_versions((_pile_tariff_id(p) for p in piles), at)
    cache: dict = {}
    out = []
    for pile in piles:
        tariff_id = _pile_tariff_id(pile)
        version = versions.get(tariff_id) if tariff_id is not None else None
        model = _pile_model(pile, version, local_date(pile.station, at), cache)
        out.append((pile, None if model is None else (model["model_number"], slots_code(model))))
    return out


def _acked(pile: Pile) -> tuple[int | None, str]:
    state = getattr(pile, "billing_model", None)
    if state is None:
        return (None, "")
    return (state.model_number_acked, state.slots_acked)


def piles_due_billing_model() -> list[str]:
    """Codes of YKC piles whose due billing model (number and today's slot map) differs from
    what they acknowledged, sorted. Piles without a tariff in force are never due."""
    now = timezone.now()
    ykc = Pile.objects.filter(protocol=Pile.Protocol.YKC)
    return sorted(
        pile.code for pile, due in _dues(ykc, now) if due is not None and due != _acked(pile)
    )


def tariff_list_visible(user) -> QuerySet[Tariff]:
    """Tariffs ``user`` may see: all for operator staff who may change tariffs, otherwise
    those assigned to the user's own stations or their piles (station owners)."""
    tariffs = Tariff.objects.all()
    if user.is_superuser or user.has_perm("billing.change_tariff"):
        return tariffs
    return tariffs.filter(
        Q(station_assignments__station__owners=user)
        | Q(pile_assignments__pile__station__owners=user)
    ).distinct()


def pile_billing_model_states(piles: QuerySet[Pile] | None = None) -> QuerySet[PileBillingModel]:
    """Recorded sync states (admin lists)."""
    states = PileBillingModel.objects.select_related("pile", "pile__station")
    return states if piles is None else states.filter(pile__in=piles)
