"""Reads of tariffs: the version in force, a connector's or pile's snapshot, station prices.

The version in force at instant t is the tariff's latest version with ``effective_from <= t``.
A pile's tariff is its own (:class:`PileTariff`) if it has one, else its station's default
(:class:`StationTariff`). Snapshots are read on the station's wall clock: the version's
snapshot with ``timezone`` set to the station's zone.

For protocols that keep a tariff on the pile: :func:`pile_snapshot`, :func:`pile_snapshots`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Q, QuerySet

from stations.models import Connector, Pile, Station

from . import pricing
from .models import Tariff, TariffVersion

__all__ = [
    "PileSnapshot",
    "local_date",
    "pile_snapshot",
    "pile_snapshots",
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
    :class:`billing.tariffs.pricing.TariffError` only if the row was tampered with.
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


def _effective_versions(tariff_ids: Iterable[int], at: datetime, *, with_snapshot: bool = True
                        ) -> dict[int, TariffVersion]:
    """{tariff id: version in force at ``at``} in one query (PostgreSQL DISTINCT ON); the
    versions' snapshots deferred unless ``with_snapshot``."""
    ids = {i for i in tariff_ids if i is not None}
    if not ids:
        return {}
    rows = (
        TariffVersion.objects.filter(tariff_id__in=ids, effective_from__lte=at)
        .order_by("tariff_id", "-effective_from")
        .distinct("tariff_id")
    )
    if not with_snapshot:
        rows = rows.defer("snapshot")
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
    :func:`billing.tariffs.services.tariff_version_lock` on the version in the same
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
    for first, end, cell in pricing.day_runs(cells):
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


# ---------------------------------------------------------------- piles


def pile_snapshot(pile: Pile, at: datetime) -> pricing.TariffSnapshot | None:
    """The snapshot in force for ``pile`` at aware ``at`` (its own tariff, else its station's),
    read on the station's zone and carrying the version's model number; None without tariff."""
    version = tariff_for_pile(pile, at)
    return None if version is None else version_snapshot(version, time_zone=pile.station.time_zone)


class PileSnapshot(NamedTuple):
    """A pile's tariff at an instant, as :func:`pile_snapshots` gives it: its ``code`` and
    ``pile_id``, its station's IANA ``time_zone``, and the ``snapshot`` in force (read on
    that zone, carrying the version's model number; None without tariff)."""

    code: str
    pile_id: int
    time_zone: str
    snapshot: pricing.TariffSnapshot | None


def pile_snapshots(piles: QuerySet[Pile], at: datetime) -> list[PileSnapshot]:
    """Each of ``piles`` with :func:`pile_snapshot` at ``at``, in the queryset's order, in two
    queries whatever the number of piles (a login storm verifies hundreds at once): the
    piles' codes, zones and tariff ids in one, the versions in force in one more, their
    snapshots not read. A version's snapshot is immutable, so it is parsed once per
    process, schema, version and zone (:func:`_version_snapshot_cached`) and read from
    the database only the first time (one query per such version)."""
    rows = list(piles.values_list(
        "code", "pk", "station__time_zone", "tariff_assignment__tariff_id",
        "station__tariff_assignment__tariff_id"))
    tariff_ids = [own if own is not None else default for *_r, own, default in rows]
    versions = _effective_versions(tariff_ids, at, with_snapshot=False)
    out = []
    for (code, pk, time_zone, _own, _default), tariff_id in zip(rows, tariff_ids, strict=True):
        version = versions.get(tariff_id) if tariff_id is not None else None
        snapshot = None if version is None else _version_snapshot_cached(
            connection.schema_name, version.pk, version.model_number, version.created_at,
            time_zone)
        out.append(PileSnapshot(code, pk, time_zone, snapshot))
    return out


@functools.lru_cache(maxsize=1024)
def _version_snapshot_cached(schema: str, version_id: int, model_number: int,
                             created_at: datetime, time_zone: str) -> pricing.TariffSnapshot:
    """:func:`version_snapshot` of version ``version_id`` of ``schema`` read on ``time_zone``.
    Cached: a version's snapshot and model number never change once written (a change of
    tariff is a new version; the model number is in the key all the same, and its creation
    time, so that a schema made again with the same name cannot hit an old entry), so no
    invalidation is needed — a deleted version is simply no longer in force. Bounded
    (1,024 entries: versions × zones in use). Raises ``TariffVersion.DoesNotExist`` when the
    version was deleted between the read of the versions in force and this one."""
    version = TariffVersion.objects.only("snapshot", "model_number").get(pk=version_id)
    return version_snapshot(version, time_zone=time_zone)


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
