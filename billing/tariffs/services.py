"""Writes for tariffs: drafts, versions, locking, assignment, station prices.

Each public function is one transaction (nested calls become savepoints). Errors are
:class:`TariffServiceError` subclasses with a stable ``code`` (and ``field`` for invalid
tariffs), so the admin and any API can turn them into a 4xx with a specific code.

Consequences: assigning a tariff or publishing a version that is already in force rewrites the
affected stations' ``price_today`` here, and sends :data:`billing.tariffs.signals.tariffs_changed`
for their piles, on which a protocol that keeps a tariff on the pile (YKC's billing model)
records what each pile is now due — the domain does not know pile protocols.
:func:`tariffs_refresh` (Celery, every few minutes per operator) catches versions that become
effective later, seasons, special dates and local midnight.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit
from evplatform.errors import DomainError
from stations.models import Pile, Station

from . import pricing, selectors
from .models import (
    MODEL_NUMBER_MAX,
    PileTariff,
    StationTariff,
    Tariff,
    TariffVersion,
)
from .signals import tariffs_changed

__all__ = [
    "InvalidTariff",
    "ModelNumbersExhausted",
    "TariffServiceError",
    "TariffVersionLocked",
    "pile_tariff_assign",
    "station_prices_refresh",
    "station_tariff_assign",
    "tariff_create",
    "tariff_update",
    "tariff_version_delete",
    "tariff_version_lock",
    "tariff_version_publish",
    "tariff_version_reschedule",
    "tariffs_refresh",
]


class TariffServiceError(DomainError):
    """A refused tariff operation; ``code`` is stable (per subclass), the message translated,
    ``field`` the snapshot path at fault if any."""

    code = "tariff_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(detail=message, fields={field: [message]} if field else None)
        self.message = message
        self.field = field


class InvalidTariff(TariffServiceError):
    """The tariff data is invalid; ``field`` is the snapshot path, e.g. ``slots[17]``."""

    code = "tariff_invalid"


class TariffVersionLocked(TariffServiceError):
    code = "tariff_version_locked"


class ModelNumbersExhausted(TariffServiceError):
    code = "tariff_model_numbers_exhausted"


def _snapshot(data: pricing.TariffSnapshot | dict[str, Any]) -> pricing.TariffSnapshot:
    if isinstance(data, pricing.TariffSnapshot):
        return data
    try:
        return pricing.TariffSnapshot.from_dict(data)
    except pricing.TariffError as exc:
        raise InvalidTariff(str(exc), field=exc.field) from exc


# ---------------------------------------------------------------- tariffs and versions


@transaction.atomic
def tariff_create(
    *,
    name: str,
    draft: pricing.TariffSnapshot | dict[str, Any],
    description: str = "",
) -> Tariff:
    """A new tariff whose working copy is ``draft`` (kind taken from it); no version yet.

    Raises :class:`InvalidTariff`.
    """
    snapshot = _snapshot(draft)
    return Tariff.objects.create(
        name=name, kind=snapshot.kind.value, description=description, draft=snapshot.to_dict()
    )


@transaction.atomic
def tariff_update(
    *,
    tariff: Tariff,
    draft: pricing.TariffSnapshot | dict[str, Any],
    name: str | None = None,
    description: str | None = None,
) -> Tariff:
    """Replace the working copy (and optionally name/description). Published versions are
    untouched: publish a new version to change prices. Raises :class:`InvalidTariff`."""
    snapshot = _snapshot(draft)
    tariff.draft = snapshot.to_dict()
    tariff.kind = snapshot.kind.value
    fields = ["draft", "kind", "updated_at"]
    if name is not None:
        tariff.name = name
        fields.append("name")
    if description is not None:
        tariff.description = description
        fields.append("description")
    tariff.save(update_fields=fields)
    return tariff


def _next_model_number() -> int:
    # One allocator per operator schema: serialise publishers on a transaction-scoped
    # advisory lock so two concurrent publishes cannot pick the same number.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            [f"{connection.schema_name}:billing.model_number"],
        )
    highest = TariffVersion.objects.aggregate(m=Max("model_number"))["m"] or 0
    if highest < MODEL_NUMBER_MAX:
        return highest + 1
    used = set(TariffVersion.objects.values_list("model_number", flat=True))
    free = next((n for n in range(1, MODEL_NUMBER_MAX + 1) if n not in used), None)
    if free is None:
        raise ModelNumbersExhausted(_("All 9999 YKC billing model numbers are in use."))
    return free


@transaction.atomic
def tariff_version_publish(
    *,
    tariff: Tariff,
    effective_from: datetime,
    created_by=None,
    draft: pricing.TariffSnapshot | dict[str, Any] | None = None,
) -> TariffVersion:
    """Freeze the working copy (or ``draft``) as a new version in force from aware
    ``effective_from`` (UTC stored), with the next free YKC model number 1..9999.

    If it is already in force, station prices and pile billing models are refreshed now;
    otherwise :func:`tariffs_refresh` picks it up. Raises :class:`InvalidTariff` (also for a
    naive time or a second version at the same instant) and :class:`ModelNumbersExhausted`.
    """
    if timezone.is_naive(effective_from):
        raise InvalidTariff(_("The effective time needs a time zone."), field="effective_from")
    if TariffVersion.objects.filter(tariff=tariff, effective_from=effective_from).exists():
        raise InvalidTariff(
            _("This tariff already has a version taking effect at that time."),
            field="effective_from",
        )
    snapshot = _snapshot(tariff.draft if draft is None else draft)
    number = _next_model_number()
    data = snapshot.to_dict()
    data["model_number"] = number
    version = TariffVersion.objects.create(
        tariff=tariff,
        effective_from=effective_from,
        snapshot=data,
        model_number=number,
        created_by=created_by,
    )
    if created_by is not None:
        audit.record(created_by, "tariff.publish", tariff, changes={
            "model_number": [None, number], "effective_from": [None, effective_from.isoformat()]})
    now = timezone.now()
    if effective_from <= now:
        _tariff_consequences(tariff, now)
    return version


@transaction.atomic
def tariff_version_lock(version: TariffVersion, *, at: datetime | None = None) -> TariffVersion:
    """Mark ``version`` as used by an order: from now on it can't be edited or deleted.

    Idempotent (the first lock time stays); call it in the transaction that creates the
    order. Returns the version with ``locked_at`` set.
    """
    at = at or timezone.now()
    TariffVersion.objects.filter(pk=version.pk, locked_at__isnull=True).update(locked_at=at)
    version.locked_at = TariffVersion.objects.values_list("locked_at", flat=True).get(pk=version.pk)
    return version


def _refuse_locked(version: TariffVersion) -> TariffVersion:
    # Re-read under a row lock: an order may have locked it since the caller loaded it.
    current = TariffVersion.objects.select_for_update().get(pk=version.pk)
    if current.locked:
        raise TariffVersionLocked(
            _("Version %(number)04d is used by orders and can no longer be changed.")
            % {"number": current.model_number}
        )
    return current


@transaction.atomic
def tariff_version_reschedule(*, version: TariffVersion, effective_from: datetime) -> TariffVersion:
    """Move an unlocked version's effective time. Raises :class:`TariffVersionLocked`,
    :class:`InvalidTariff` (naive time, or clash with another version of the tariff)."""
    current = _refuse_locked(version)
    if timezone.is_naive(effective_from):
        raise InvalidTariff(_("The effective time needs a time zone."), field="effective_from")
    clash = TariffVersion.objects.filter(tariff_id=current.tariff_id, effective_from=effective_from)
    if clash.exclude(pk=current.pk).exists():
        raise InvalidTariff(
            _("This tariff already has a version taking effect at that time."),
            field="effective_from",
        )
    current.effective_from = effective_from
    current.save(update_fields=["effective_from"])
    _tariff_consequences(current.tariff, timezone.now())
    version.effective_from, version.locked_at = current.effective_from, current.locked_at
    return current


@transaction.atomic
def tariff_version_delete(*, version: TariffVersion) -> None:
    """Delete an unlocked version. Raises :class:`TariffVersionLocked`."""
    current = _refuse_locked(version)
    tariff = current.tariff
    current.delete()
    _tariff_consequences(tariff, timezone.now())


# ---------------------------------------------------------------- assignment


def _stations_of(tariff: Tariff) -> list[Station]:
    return list(
        Station.objects.filter(
            Q(tariff_assignment__tariff=tariff) | Q(piles__tariff_assignment__tariff=tariff)
        ).distinct()
    )


def _piles_changed(piles, at: datetime) -> int:
    """Tell the protocols that keep tariffs on piles (YKC billing models) that ``piles``' tariff
    may have changed; returns how many of their records changed."""
    replies = tariffs_changed.send(sender=Tariff, piles=piles, at=at)
    return sum(changed for _receiver, changed in replies)


def _tariff_consequences(tariff: Tariff, at: datetime) -> None:
    stations = _stations_of(tariff)
    station_prices_refresh(stations=stations, at=at)
    _piles_changed(Pile.objects.filter(station__in=stations), at)


@transaction.atomic
def station_tariff_assign(*, stations: Iterable[Station], tariff: Tariff | None) -> int:
    """Make ``tariff`` the default of each station (None removes the default).

    Rewrites their ``price_today`` and their piles' due billing models. Returns the number of
    stations whose assignment changed.
    """
    stations = list(stations)
    changed = 0
    for station in stations:
        current = StationTariff.objects.filter(station=station).first()
        if tariff is None:
            if current is not None:
                current.delete()
                changed += 1
        elif current is None:
            StationTariff.objects.create(station=station, tariff=tariff)
            changed += 1
        elif current.tariff_id != tariff.pk:
            current.tariff = tariff
            current.save(update_fields=["tariff", "assigned_at"])
            changed += 1
        # Drop the cached reverse one-to-one so the caller's object sees the new assignment.
        station._state.fields_cache.pop("tariff_assignment", None)
    now = timezone.now()
    station_prices_refresh(stations=stations, at=now)
    _piles_changed(Pile.objects.filter(station__in=stations), now)
    return changed


@transaction.atomic
def pile_tariff_assign(*, pile: Pile, tariff: Tariff | None) -> bool:
    """Give ``pile`` its own tariff overriding the station's (None: back to the station's).

    Refreshes the pile's due billing model. Returns whether the assignment changed.
    """
    current = PileTariff.objects.filter(pile=pile).first()
    changed = True
    if tariff is None:
        if current is None:
            changed = False
        else:
            current.delete()
    elif current is None:
        PileTariff.objects.create(pile=pile, tariff=tariff)
    elif current.tariff_id != tariff.pk:
        current.tariff = tariff
        current.save(update_fields=["tariff", "assigned_at"])
    else:
        changed = False
    _piles_changed(Pile.objects.filter(pk=pile.pk), timezone.now())
    return changed


# ---------------------------------------------------------------- refreshes


@transaction.atomic
def station_prices_refresh(
    *, stations: Iterable[Station] | None = None, at: datetime | None = None
) -> int:
    """Rewrite ``Station.price_today`` (see :func:`tariff_selectors.station_price_today`) for
    ``stations`` (default: all) at aware ``at`` (default now), writing only those that
    changed. Returns how many were written."""
    at = at or timezone.now()
    ids = None if stations is None else [s.pk for s in stations]
    rows = Station.objects.select_related("tariff_assignment")
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    written = 0
    for station in rows:
        prices = selectors.station_price_today(station, at)
        if prices != station.price_today:
            Station.objects.filter(pk=station.pk).update(price_today=prices)
            written += 1
    return written


def tariffs_refresh(*, at: datetime | None = None) -> tuple[int, int]:
    """The periodic job for one operator: station prices, and (through ``tariffs_changed``
    for all piles) the protocols' pile tariffs, at ``at``.

    Returns ``(stations written, pile records changed by the protocols)``.
    """
    at = at or timezone.now()
    return station_prices_refresh(at=at), _piles_changed(None, at)
