"""Writes to the operator's estate. Each service is one transaction; the public pile
registry (pile code → operator) is kept in step here and nowhere else."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils.translation import gettext as _

from evplatform.queue import task_queue_on_commit

from . import generation, live
from .models import Connector, Fault, PartnerConnector, PartnerStation, Pile, Station
from .registry import registry_claim, registry_release

logger = logging.getLogger(__name__)

# How stale Pile.last_seen_at may get before a frame writes it again (seconds). Redis has
# the exact time of every frame; the database copy only has to survive a Redis loss.
LAST_SEEN_DB_EVERY_S = 60
# A pile is offline when no frame arrived within this many heartbeat intervals.
OFFLINE_AFTER_HEARTBEATS = 3
OFFLINE_FAULT_CODE = "offline"


def station_availability_changed(station_id: int) -> None:
    """Staff changed whether a station's connectors can serve (its status, a pile enabled
    or disabled, e.g. for maintenance): interconnection partners and regulators hear of each
    connector whose status they see changed (``notification_stationStatus``), after commit."""
    task_queue_on_commit("cec.station_status", station_id)


def station_save(*, station: Station) -> Station:
    """Validate (ValidationError) and save a station; a status change reaches partners."""
    station.full_clean()
    with transaction.atomic():
        old_status = (Station.objects.filter(pk=station.pk).values_list("status", flat=True).first()
                      if station.pk else None)
        station.save()
        if old_status is not None and old_status != station.status:
            station_availability_changed(station.pk)
    return station


def pile_save(*, pile: Pile) -> Pile:
    """Create or update a pile and keep the public registry in step.

    Raises django.core.exceptions.ValidationError (``{"code": [...]}``) for a bad field or
    a pile code another operator has registered. On a code change the old code is
    released in the same transaction.
    """
    pile.full_clean()
    with transaction.atomic():
        old_code, old_enabled = None, None
        if pile.pk:
            old_code, old_enabled = (
                Pile.objects.select_for_update().filter(pk=pile.pk).values_list("code", "enabled").first()
                or (None, None)
            )
        registry_claim(code=pile.code)
        pile.save()
        if old_code and old_code != pile.code:
            registry_release(code=old_code)
        if old_enabled is not None and old_enabled != pile.enabled:
            station_availability_changed(pile.station_id)
    return pile


def pile_create(*, station: Station, code: str, rated_power_kw, **fields) -> Pile:
    """A new pile of ``station`` (rated power in kW). See ``pile_save`` for errors."""
    return pile_save(pile=Pile(station=station, code=code, rated_power_kw=rated_power_kw, **fields))


def pile_delete(*, pile: Pile) -> None:
    """Delete a pile (its connectors and faults go with it) and release its code."""
    with transaction.atomic():
        code = pile.code
        pile.delete()
        registry_release(code=code)


def piles_delete(*, piles: Iterable[Pile]) -> int:
    """Delete many piles in one transaction; returns how many."""
    count = 0
    with transaction.atomic():
        for pile in piles:
            pile_delete(pile=pile)
            count += 1
    return count


def connector_save(*, connector: Connector) -> Connector:
    """Validate and save a connector; a blank ``qr_code`` becomes the connector code."""
    connector.full_clean()
    with transaction.atomic():
        connector.save()
    return connector


def connector_status_save(*, pile_code: str, connector_no: int, status: str,
                          at: datetime) -> bool:
    """``Connector.status`` after a change the pile reported (no-op if already so).
    Returns whether it changed. The batch of one of :func:`connector_statuses_save`."""
    return bool(connector_statuses_save(changes=[(pile_code, connector_no, status, at)]))


def connector_statuses_save(*, changes: Iterable[tuple[str, int, str, datetime]]
                            ) -> set[tuple[str, int]]:
    """:func:`connector_status_save` for many ``(pile code, connector no, status, at)`` of
    the current operator (a storm: the first real-time reports of the piles logged in
    within a moment) in one UPDATE; a connector given twice ends with its last change (in
    the order given). Unknown piles and connectors are ignored. Returns the (pile code,
    connector no) whose status changed.

    The connectors are locked in id order (as the offline marks take them), so two
    batches writing the same connectors cannot deadlock."""
    last: dict[tuple[str, int], tuple[str, datetime]] = {}
    for code, no, status, at in changes:
        last[(code, no)] = (str(status), at)
    if not last:
        return set()
    keys = sorted(last)
    codes, nos = [code for code, _no in keys], [no for _code, no in keys]
    statuses, ats = [last[key][0] for key in keys], [last[key][1] for key in keys]
    quote = connection.ops.quote_name
    piles, connectors = quote(Pile._meta.db_table), quote(Connector._meta.db_table)
    given = "unnest(%s::text[], %s::int[], %s::text[], %s::timestamptz[]) AS v(code, no, status, at)"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connectors} c SET status = v.status, status_changed_at = v.at"
            f" FROM {piles} p, {given}"
            " WHERE p.code = v.code AND c.pile_id = p.id AND c.number = v.no"
            " AND c.status <> v.status AND c.id IN ("
            f"  SELECT c2.id FROM {connectors} c2 JOIN {piles} p2 ON p2.id = c2.pile_id"
            "   JOIN unnest(%s::text[], %s::int[]) AS w(code, no)"
            "    ON p2.code = w.code AND c2.number = w.no"
            "   ORDER BY c2.id FOR UPDATE OF c2)"
            " RETURNING p.code, c.number",
            [codes, nos, statuses, ats, codes, nos])
        changed = {(code, no) for code, no in cursor.fetchall()}
        if changed:
            generation.changed(kind=generation.STATUS)  # raw SQL: the snapshots are told here
    return changed


def pile_mark_online(*, pile_code: str, at: datetime | None = None) -> bool:
    """Record a frame from ``pile_code`` at ``at`` (UTC, default now): gateways call this on
    login and on frames. Returns True when the pile came back online (its connectors
    offline → idle, its open offline fault cleared). The batch of one of
    :func:`piles_mark_online` (the same rules, one code path)."""
    at = at or datetime.now(UTC)
    return bool(piles_mark_online(marks=[(pile_code, at)]))


def piles_mark_online(*, marks: Iterable[tuple[str, datetime]]) -> list[str]:
    """:func:`pile_mark_online` for many piles of the current operator at once (a login
    storm: the piles a gateway logged in within a moment; a gateway's periodic marks of all
    its piles, gathered), each ``(pile code, at)`` (UTC; a code given twice counts with its
    latest time; unknown codes are ignored). Returns the codes that came back online (their
    connectors offline → idle and their open offline faults cleared, at their own times),
    sorted.

    One Redis write (the exact time of every frame) and one SQL statement whatever the
    number of piles (issue #22: a reconnect storm is thousands of these, and a statement's
    round trip through the gateway's busy threads cost more than its work): the piles to
    write — offline ones, and online ones whose ``last_seen_at`` is over
    LAST_SEEN_DB_EVERY_S old (Redis has the exact time; the database copy only has to
    survive a Redis loss) — locked in code order (as every writer of several piles, so two
    batches cannot deadlock on them) and updated; for those that were offline, their open
    offline faults cleared and their offline connectors made idle — those not held by
    another transaction at that moment (it is writing them: the pile's own status report),
    so that this batch never waits on a connector while holding piles. An online pile with
    a recent ``last_seen_at`` is neither locked nor written."""
    latest: dict[str, datetime] = {}
    for code, at in marks:
        latest[code] = max(at, latest.get(code, at))
    if not latest:
        return []
    codes = sorted(latest)
    ats = [latest[code] for code in codes]
    live.piles_seen(connection.schema_name, latest)
    quote = connection.ops.quote_name
    piles, connectors = quote(Pile._meta.db_table), quote(Connector._meta.db_table)
    faults = quote(Fault._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        # Data-modifying CTEs: each runs once, to completion, whether read or not, all on one
        # snapshot; ``s`` reads each locked pile as it was before this statement's write.
        cursor.execute(
            "WITH s AS ("
            f"  SELECT p.id, p.code, p.online AS was_online, v.at FROM {piles} p"
            "   JOIN unnest(%s::text[], %s::timestamptz[]) AS v(code, at) ON p.code = v.code"
            "   WHERE p.code = ANY(%s) AND (NOT p.online OR p.last_seen_at IS NULL"
            "    OR p.last_seen_at <= v.at - %s)"
            "   ORDER BY p.code FOR UPDATE OF p),"
            f" marked AS (UPDATE {piles} p SET updated_at = %s,"
            "   online = true, last_seen_at = greatest(coalesce(p.last_seen_at, s.at), s.at)"
            "   FROM s WHERE p.id = s.id RETURNING p.id),"
            " back AS (SELECT id, code, at FROM s WHERE NOT was_online),"
            f" cleared AS (UPDATE {faults} f SET cleared_at = back.at FROM back"
            "   WHERE f.pile_id = back.id AND f.source = %s AND f.cleared_at IS NULL"
            "   RETURNING f.id),"
            # Without waiting: a connector another transaction holds is being written by it
            # (its status from the pile's own report, in a batch that locks connectors in id
            # order); waiting here, holding piles, could deadlock with an offline mark.
            f" idle AS (UPDATE {connectors} c SET status = %s, status_changed_at = back.at"
            "   FROM back WHERE c.pile_id = back.id AND c.id IN ("
            # coalesce(): the status is never null, but so written no plan reaches the
            # connectors through the status index (a BitmapAnd of every offline connector
            # of the operator with each pile's: 3.5 ms per pile in a storm, when most are).
            f"    SELECT c2.id FROM {connectors} c2 JOIN back b2 ON c2.pile_id = b2.id"
            "     WHERE coalesce(c2.status, '') = %s ORDER BY c2.id FOR UPDATE OF c2 SKIP LOCKED)"
            "   RETURNING c.id)"
            " SELECT code FROM back ORDER BY code",
            [codes, ats, codes, timedelta(seconds=LAST_SEEN_DB_EVERY_S), datetime.now(UTC),
             Fault.Source.OFFLINE, Connector.Status.IDLE, Connector.Status.OFFLINE])
        back_codes = [row[0] for row in cursor.fetchall()]
        if back_codes:
            generation.changed(kind=generation.STATUS)  # the station search's snapshots
    for code in back_codes:
        logger.info("pile %s is back online", code)
    return back_codes


def piles_mark_offline(*, now: datetime | None = None) -> list[str]:
    """Mark offline every online pile that sent no frame within 3 heartbeat intervals.

    The last frame's time is the pile's score in Redis ``live:seen``, or, when Redis lost
    it, ``Pile.last_seen_at`` (which may lag by LAST_SEEN_DB_EVERY_S, allowed for).
    Each such pile goes offline, its connectors ``offline``, and an offline Fault opens
    (one per outage). Returns the codes marked offline.
    """
    now = now or datetime.now(UTC)
    schema = connection.schema_name
    candidates = list(
        Pile.objects.filter(online=True).values_list("code", "heartbeat_interval_s", "last_seen_at")
    )
    if not candidates:
        return []
    scores = live.client().zmscore(live.seen_key(schema), [c[0] for c in candidates])
    stale = []
    for (code, heartbeat_s, db_seen), score in zip(candidates, scores, strict=True):
        window = timedelta(seconds=OFFLINE_AFTER_HEARTBEATS * max(heartbeat_s, 1))
        if score is not None:
            last = datetime.fromtimestamp(score, UTC)
        else:
            last = db_seen
            window += timedelta(seconds=LAST_SEEN_DB_EVERY_S)
        if last is None or last < now - window:
            stale.append((code, last))
    marked = _piles_mark_offline([(code, last, now, last) for code, last in stale])
    if marked:
        logger.info("%d piles went offline: %s", len(marked), ", ".join(marked[:20]))
    return marked


def pile_mark_offline(*, pile_code: str, at: datetime | None = None) -> bool:
    """The pile's connection closed (gateways call this): offline now, its connectors
    ``offline``, an offline Fault opened — unless a frame after ``at`` shows it is back
    (e.g. on another gateway). Frames before ``at`` came on the closed connection, even if
    the gateway's batched last-seen write reaches Redis only now. Returns True when it was
    marked. The batch of one of :func:`piles_mark_disconnected`."""
    at = at or datetime.now(UTC)
    return bool(piles_mark_disconnected(marks=[(pile_code, at)]))


def piles_mark_disconnected(*, marks: Iterable[tuple[str, datetime]]) -> list[str]:
    """:func:`pile_mark_offline` for many piles of the current operator at once (a storm:
    the links a gateway saw close within a moment), each ``(pile code, at)`` (UTC; a code
    given twice counts with its latest time; unknown codes and piles already offline are
    ignored). Returns the codes marked offline, sorted. The same rules as one call per
    pile in a fixed number of statements (see :func:`_piles_mark_offline`)."""
    latest: dict[str, datetime] = {}
    for code, at in marks:
        latest[code] = max(at, latest.get(code, at))
    if not latest:
        return []
    seen = live.piles_last_seen(connection.schema_name, sorted(latest))
    entries = []
    for code, at in latest.items():
        last = seen[code] or at
        entries.append((code, last, at, max(last, at)))
    return _piles_mark_offline(entries)


def _piles_mark_offline(entries: list[tuple[str, datetime | None, datetime, datetime | None]]
                        ) -> list[str]:
    """Mark each ``(code, last seen, now, back after)`` offline unless Redis holds a frame of
    it after ``back after`` (None: ``last seen``, the time the decision was taken on): the
    pile offline with ``last_seen_at`` moved up to ``last seen``, its connectors ``offline``
    at ``now``, an offline Fault opened from ``last seen`` (``now`` when unknown) unless one
    is open. One transaction and a fixed number of statements whatever the number of piles:
    the online ones locked in code order (as every writer of several piles), one Redis read
    (a frame may have arrived between the decision and the lock), one statement that
    updates the piles and their connectors (locked in id order) and reads their open offline
    faults, and one insert of the missing ones. Returns the codes marked, sorted."""
    if not entries:
        return []
    by_code = {code: (last, now, back_after or last) for code, last, now, back_after in entries}
    codes = sorted(by_code)
    quote = connection.ops.quote_name
    piles, connectors = quote(Pile._meta.db_table), quote(Connector._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT id, code, last_seen_at FROM {piles} WHERE code = ANY(%s)"
                       " AND online ORDER BY code FOR UPDATE", [codes])
        locked = cursor.fetchall()
        if not locked:
            return []
        # A frame may have arrived between the decision and the lock: look again.
        seen = live.piles_last_seen(connection.schema_name, [code for _pk, code, _s in locked])
        marked = []
        for pk, code, _stored in locked:
            _last, _now, back_after = by_code[code]
            if seen[code] is not None and back_after is not None and seen[code] > back_after:
                continue
            marked.append((pk, code))
        if not marked:
            return []
        ids = [pk for pk, _code in marked]
        lasts = [by_code[code][0] for _pk, code in marked]
        nows = [by_code[code][1] for _pk, code in marked]
        # UPDATEs, not save(): presence is not a change the model history records. The
        # piles, their connectors (locked in id order, as every writer of several) and the
        # read of their open offline faults in one statement (data-modifying CTEs, each run
        # once whether read or not).
        cursor.execute(
            f"WITH gone AS (UPDATE {piles} p SET online = false, updated_at = %s,"
            "   last_seen_at = greatest(p.last_seen_at, v.last)"
            "   FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, last) WHERE p.id = v.id"
            "   RETURNING p.id),"
            f" offline AS (UPDATE {connectors} c SET status = %s, status_changed_at = v.at"
            "   FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(pile_id, at)"
            "   WHERE c.pile_id = v.pile_id AND c.id IN ("
            f"    SELECT id FROM {connectors} WHERE pile_id = ANY(%s) AND status <> %s"
            "     ORDER BY id FOR UPDATE)"
            "   RETURNING c.id)"
            f" SELECT DISTINCT pile_id FROM {quote(Fault._meta.db_table)}"
            "  WHERE pile_id = ANY(%s) AND source = %s AND cleared_at IS NULL",
            [datetime.now(UTC), ids, lasts, Connector.Status.OFFLINE, ids, nows, ids,
             Connector.Status.OFFLINE, ids, Fault.Source.OFFLINE])
        open_already = {row[0] for row in cursor.fetchall()}
        # Raw SQL: the station snapshots are told here (what the ORM's updates would say).
        generation.changed(kind=generation.write_kind(Pile, ["online", "last_seen_at"]))
        generation.changed(kind=generation.STATUS)
        description = _("No frame for %(n)d heartbeat intervals.") % {
            "n": OFFLINE_AFTER_HEARTBEATS}
        Fault.objects.bulk_create([
            Fault(pile_id=pk, source=Fault.Source.OFFLINE, code=OFFLINE_FAULT_CODE,
                  description=description, started_at=last or now)
            for (pk, _code), last, now in zip(marked, lasts, nows, strict=True)
            if pk not in open_already])
    return sorted(code for _pk, code in marked)


@dataclass(frozen=True)
class PartnerConnectorData:
    """One connector of a partner station as pulled: ``status`` a ``Connector.Status``
    value, ``connector_type`` a ``Connector.Type`` value (CEC ConnectorType), power kW."""

    connector_id: str
    equipment_id: str
    connector_type: int
    power_kw: Decimal
    status: str


@dataclass(frozen=True)
class PartnerStationData:
    """One partner station as pulled (GCJ-02 degrees, ``status`` the CEC StationStatus)."""

    station_id: str
    name: str
    address: str
    latitude: Decimal | None
    longitude: Decimal | None
    status: int
    price_note: str
    opening_hours: str
    phone: str
    connectors: tuple[PartnerConnectorData, ...]


@transaction.atomic
def partner_stations_save(*, partner: str, partner_name: str, our_operator_id: str,
                          stations: Iterable[PartnerStationData], at: datetime) -> int:
    """Replace what we show of partner ``partner``'s stations with ``stations`` (the whole
    list it published at ``at``): new ones added, changed ones updated, ones it no longer
    lists removed with their connectors. Returns the number of stations kept."""
    keep: list[int] = []
    for data in stations:
        station, _created = PartnerStation.objects.update_or_create(
            partner=partner, station_id=data.station_id[:20], defaults={
                "partner_name": partner_name[:100], "our_operator_id": our_operator_id,
                "name": data.name[:100], "address": data.address[:200],
                "latitude": data.latitude, "longitude": data.longitude, "status": data.status,
                "price_note": data.price_note[:256], "opening_hours": data.opening_hours[:100],
                "phone": data.phone[:30], "pulled_at": at,
            })
        keep.append(station.pk)
        seen = []
        for c in data.connectors:
            PartnerConnector.objects.update_or_create(
                partner=partner, connector_id=c.connector_id[:50], defaults={
                    "station": station, "equipment_id": c.equipment_id[:50],
                    "connector_type": c.connector_type, "power_kw": c.power_kw,
                    "status": c.status, "status_at": at,
                })
            seen.append(c.connector_id[:50])
        station.connectors.exclude(connector_id__in=seen).delete()
    PartnerStation.objects.filter(partner=partner).exclude(pk__in=keep).delete()
    return len(keep)


def partner_connector_status_save(*, partner: str, connector_id: str, status: str,
                                  at: datetime) -> bool:
    """A partner's connector changed (its ``notification_stationStatus``); False when we
    do not know that connector."""
    return bool(PartnerConnector.objects.filter(partner=partner, connector_id=connector_id)
                .update(status=status, status_at=at))
