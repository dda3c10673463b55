"""In-process snapshot of an operator's stations for the driver's list and map.

The list and map are asked for far more often than the estate changes, and a request that
queries PostgreSQL cannot be cheap enough (see README, *Station search*). So each web
process keeps, per tenant schema, what those two need — every station's position, name,
address, city, status, time zone and today's price slots, and every connector's live-merge
id, database status, status time, kind and whether its pile is online and enabled — read in
ONE query, with a coarse grid over the coordinates. The page is then computed in Python
(``stations.selectors``); the connectors' live statuses are mirrored in process too
(``stations.statusfeed``), and each request asks Redis only what changed since.

**Invalidation.** Every write to stations, piles, connectors or partner stations through
Django (``save``/``delete`` signals, and the ``update``/``bulk_create``/``bulk_update`` of
their querysets, see ``generation.TrackedQuerySet``) calls ``generation.changed``, which sets
one of the schema's two *generations* in Redis to a fresh random token when the
transaction commits (at once outside one; the transaction's own reads meanwhile build a
snapshot of their own, never kept): the estate's (``{prefix}:{schema}:stations:gen``) for what
a station, pile or connector is, the statuses' (``…:stations:sgen``) for the database
statuses the snapshot copies (a connector's status, a pile online); a write of fields the
snapshot does not read renews neither (``generation.write_kind``). Tariff changes reach the
list through ``Station.price_today`` (rewritten with ``update``). A snapshot is tagged with
the tokens read BEFORE its query, and each request reads the current ones in the same Redis
round trip as the live statuses (``live.connectors_status_and_generation``): when the
estate's differs the snapshot is rebuilt and the page computed again; when only the
statuses' differs it is rebuilt once it is ``STATION_SNAPSHOT_STATUS_REFRESH_MS`` old (1,000 ms;
one request rebuilds, the others answer from the kept one meanwhile), because statuses
change with every plug-in and every pile that connects, and the live statuses merged on
every request already carry what the piles report. So a committed write is visible on the
next request (a database status within about a second), whatever process served it; a
token lost with Redis is replaced by a fresh one (never reused, unlike a counter), which
rebuilds every snapshot.

A snapshot is never kept when built on a connection whose open transaction has written
these tables (its data may still roll back); such a request builds one for itself.

A kept snapshot older than ``STATION_SNAPSHOT_MAX_AGE_S`` (300 s) is rebuilt whatever
the token says: a bound on a missed invalidation (Redis unreachable at a write).

**Memory.** Snapshots are kept least-recently-used first up to
``STATION_SNAPSHOT_MAX_STATIONS`` stations over all schemas (a station with its
connectors is ~1–2 KB); an operator past the bound alone is served, never kept.

Writes that bypass Django (raw SQL) must call ``generation.changed`` themselves.
"""

from __future__ import annotations

import gc
import json
import math
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import connection

from . import generation, live, statusfeed
from .models import Connector, PartnerStation, Pile, Station

DC_TYPES = (Connector.Type.DC,)
FREE_STATUSES = (Connector.Status.IDLE, Connector.Status.PLUGGED)
GRID_DEG = 0.02  # grid cell, degrees of latitude and longitude (~2.2 km × ≤2.2 km)
_PRICE_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")


def _cell(lat: float, lng: float) -> tuple[int, int]:
    return math.floor(lat / GRID_DEG), math.floor(lng / GRID_DEG)


class SnapStation:
    """One station as the list and map need it. ``lat``/``lng`` float degrees; ``price_date``
    ISO date of ``price_slots`` (48 half-hour prices, Decimal yuan/kWh or None where
    malformed) or None; ``connectors`` tuples ``(live_id, db_status, changed_epoch | None,
    is_dc, usable)`` by pile id then number (``usable``: pile online and enabled);
    ``total``/``free``/``dc_total``/``dc_free`` counted from the database's statuses;
    ``rank`` the position by (name, id) (PostgreSQL's C collation: code points);
    ``lat_r``/``lng_r`` the coordinates in radians and ``cos_lat`` the cosine of the latitude
    (for haversine distances)."""

    __slots__ = ("id", "name", "name_upper", "address", "address_upper", "city", "status", "lat",
                 "lng", "lat_r", "lng_r", "cos_lat", "time_zone", "price_date", "price_slots",
                 "connectors", "total", "free", "dc_total", "dc_free", "rank")


@dataclass
class Snapshot:
    """Every station of one schema: ``stations`` by id order, ``by_rank`` by (name, id),
    ``grid`` cell → stations; ``token`` and ``status_token`` the generations it was built at
    (``generation``: estate and statuses; None: not to be kept); ``has_partners`` whether
    any partner station exists."""

    token: str | None
    status_token: str | None
    stations: list[SnapStation]
    by_rank: list[SnapStation]
    grid: dict[tuple[int, int], list[SnapStation]]
    has_partners: bool
    size: int = field(init=False)
    built: float = field(init=False)  # time.monotonic() when built
    failed_bumps: int = field(init=False)  # generation.failed_bumps when built

    def __post_init__(self):
        self.size = len(self.stations)
        self.built = time.monotonic()
        self.failed_bumps = generation.failed_bumps

    def near(self, min_lat: float, max_lat: float, min_lng: float, max_lng: float) -> list[SnapStation]:
        """The stations of the grid cells that the box overlaps (a superset of the box's
        stations, in no particular order)."""
        lo_lat, lo_lng = _cell(min_lat, min_lng)
        hi_lat, hi_lng = _cell(max_lat, max_lng)
        if (hi_lat - lo_lat + 1) * (hi_lng - lo_lng + 1) > len(self.grid):
            return self.stations  # a box wider than the estate: all of it
        grid = self.grid
        found = []
        for i in range(lo_lat, hi_lat + 1):
            for j in range(lo_lng, hi_lng + 1):
                cell = grid.get((i, j))
                if cell:
                    found.extend(cell)
        return found

    def in_box(self, min_lat: float, max_lat: float, min_lng: float, max_lng: float) -> list[SnapStation]:
        """Stations with ``min_lat <= lat <= max_lat`` and ``min_lng <= lng <= max_lng``, by id."""
        found = [s for s in self.near(min_lat, max_lat, min_lng, max_lng)
                 if min_lat <= s.lat <= max_lat and min_lng <= s.lng <= max_lng]
        found.sort(key=_by_id)
        return found


def _by_id(s: SnapStation) -> int:
    return s.id


# One statement: the stations by (name, id), each with its connectors as one string (per
# connector "pile_code:number", status, epoch of the status change or empty, 1 if DC, 1 if
# the pile is online and enabled; US between fields, RS between connectors), and whether
# any partner station exists.
_SNAPSHOT_SQL = """
    SELECT s.id, s.name, s.address, s.city, s.status, s.latitude::float8, s.longitude::float8,
           s.time_zone, s.price_today::text,
           string_agg(concat_ws(chr(31), p.code || ':' || c.number, c.status,
                                coalesce(extract(epoch FROM c.status_changed_at)::float8::text, ''),
                                (c.connector_type = ANY(%(dc_types)s))::int,
                                (p.online AND p.enabled)::int),
                      chr(30) ORDER BY p.id, c.number) FILTER (WHERE c.id IS NOT NULL),
           EXISTS (SELECT 1 FROM {partner})
    FROM {station} s
         LEFT JOIN {pile} p ON p.station_id = s.id
         LEFT JOIN {connector} c ON c.pile_id = p.id
    GROUP BY s.id
    ORDER BY s.name, s.id
"""


def _price_slots(raw: str | None) -> tuple[str | None, tuple | None]:
    """(date, slots) of a ``price_today`` JSON text; a slot is Decimal when its text is a
    plain non-negative decimal (what the SQL accepted), else None."""
    if not raw:
        return None, None
    data = json.loads(raw, parse_float=str, parse_int=str)
    if not isinstance(data, dict) or not isinstance(data.get("date"), str):
        return None, None
    slots = data.get("slots")
    if not isinstance(slots, list):
        return data["date"], ()
    return data["date"], tuple(
        Decimal(v) if isinstance(v, str) and _PRICE_TEXT.fullmatch(v) else None for v in slots
    )


def build(token: str | None, status_token: str | None = None) -> Snapshot:
    """Read the current schema's stations in one query (see ``_SNAPSHOT_SQL``)."""
    quote = connection.ops.quote_name
    sql = _SNAPSHOT_SQL.format(
        station=quote(Station._meta.db_table), pile=quote(Pile._meta.db_table),
        connector=quote(Connector._meta.db_table), partner=quote(PartnerStation._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, {"dc_types": [int(t) for t in DC_TYPES]})
        rows = cursor.fetchall()
    free_statuses = frozenset(str(v) for v in FREE_STATUSES)
    prices: dict[str | None, tuple] = {}  # price_today text → (date, slots): stations share tariffs
    intern = sys.intern
    by_rank = []
    grid: dict[tuple[int, int], list[SnapStation]] = {}
    for rank, r in enumerate(rows):
        s = SnapStation()
        (s.id, s.name, s.address, s.city, s.status, s.lat, s.lng, s.time_zone) = r[:8]
        s.name_upper, s.address_upper, s.rank = s.name.upper(), s.address.upper(), rank
        s.lat_r, s.lng_r = math.radians(s.lat), math.radians(s.lng)
        s.cos_lat = math.cos(s.lat_r)
        found = prices.get(r[8])
        if found is None:
            found = prices[r[8]] = _price_slots(r[8])
        s.price_date, s.price_slots = found
        conns = []
        total = free = dc_total = dc_free = 0
        for item in r[9].split("\x1e") if r[9] else ():
            live_id, status, changed, is_dc, usable = item.split("\x1f")
            is_dc, usable = is_dc == "1", usable == "1"
            status = intern(status)
            conns.append((live_id, status, float(changed) if changed else None, is_dc, usable))
            is_free = usable and status in free_statuses
            total += 1
            free += is_free
            dc_total += is_dc
            dc_free += is_dc and is_free
        s.connectors = tuple(conns)
        s.total, s.free, s.dc_total, s.dc_free = total, free, dc_total, dc_free
        by_rank.append(s)
        grid.setdefault(_cell(s.lat, s.lng), []).append(s)
    stations = sorted(by_rank, key=_by_id)
    return Snapshot(token=token, status_token=status_token, stations=stations, by_rank=by_rank, grid=grid,
                    has_partners=bool(rows and rows[0][10]) or (not rows and _any_partner()))


def _any_partner() -> bool:
    return PartnerStation.objects.exists()


# --- the per-process cache ---------------------------------------------------------------

_cache: OrderedDict[str, Snapshot] = OrderedDict()
_feeds: dict[str, statusfeed.StatusFeed] = {}  # schema → live statuses of its kept snapshot
_cache_lock = threading.Lock()
_build_locks: dict[str, threading.Lock] = {}


def cached(schema: str) -> Snapshot | None:
    """The kept snapshot of ``schema``, unless older than ``STATION_SNAPSHOT_MAX_AGE_S``
    (a bound on what a missed invalidation can cost: a raw SQL write, Redis unreachable
    at a bump)."""
    with _cache_lock:
        snap = _cache.get(schema)
        if snap is not None:
            if (time.monotonic() - snap.built > settings.STATION_SNAPSHOT_MAX_AGE_S
                    or snap.failed_bumps != generation.failed_bumps):
                del _cache[schema]
                _feeds.pop(schema, None)
                return None
            _cache.move_to_end(schema)
        return snap


def keep(schema: str, snap: Snapshot) -> bool:
    """Cache ``snap`` for ``schema``, evicting the least recently used snapshots (and their
    status feeds) past ``STATION_SNAPSHOT_MAX_STATIONS`` stations in all (never ``snap``
    itself unless it alone is past the bound: then it is not kept). Whether it was kept."""
    limit = settings.STATION_SNAPSHOT_MAX_STATIONS
    with _cache_lock:
        _cache.pop(schema, None)
        if snap.size > limit:
            _feeds.pop(schema, None)
            return False
        _cache[schema] = snap
        held = sum(s.size for s in _cache.values())
        while held > limit:
            evicted_schema, evicted = _cache.popitem(last=False)
            _feeds.pop(evicted_schema, None)
            held -= evicted.size
        return True


GC_THAW_EVERY_S = 3600  # what was frozen with the snapshots is collected once this often
_thawed = time.monotonic()


def _freeze_survivors() -> None:
    """Move what lives now, the snapshot just kept among it, into the collector's permanent
    generation (``gc.freeze``): a snapshot lives for minutes, and with 10,000 stations
    tracked each full collection of the web process walked it (~70 ms, four in 3,000 map
    requests: a pause for every request in flight, the list's and map's p99). Objects
    frozen are still freed when their last reference goes (a replaced snapshot holds no
    cycle); cycles frozen with it (of requests in flight at that moment) wait for the thaw:
    at most every ``GC_THAW_EVERY_S`` everything is collected once, at a rebuild."""
    global _thawed
    if time.monotonic() - _thawed > GC_THAW_EVERY_S:
        _thawed = time.monotonic()
        gc.unfreeze()
        gc.collect()
    gc.freeze()


def clear() -> None:
    """Forget every snapshot of this process, and their status feeds."""
    with _cache_lock:
        _cache.clear()
        _feeds.clear()


def _build_lock(schema: str) -> threading.Lock:
    with _cache_lock:
        return _build_locks.setdefault(schema, threading.Lock())


def _current(snap: Snapshot, token: str, status_token: str) -> bool:
    """Whether ``snap`` may answer: built at the estate's generation ``token``, and at the
    statuses' ``status_token`` or less than ``STATION_SNAPSHOT_STATUS_REFRESH_MS`` ago."""
    return token == snap.token and (
        status_token == snap.status_token
        or (time.monotonic() - snap.built) * 1000 < settings.STATION_SNAPSHOT_STATUS_REFRESH_MS)


def _feed(schema: str, snap: Snapshot) -> statusfeed.StatusFeed | None:
    """The status feed kept for ``snap`` (same schema and estate generation), or None."""
    feed = _feeds.get(schema)
    return feed if feed is not None and feed.token == snap.token else None


def _new_feed(schema: str, snap: Snapshot) -> statusfeed.StatusFeed:
    """A status feed (not yet loaded) for every connector of ``snap``, kept while ``snap``
    is (a feed is per estate generation: a connector added since has its status read)."""
    feed = statusfeed.StatusFeed(schema, snap.token, (c[0] for s in snap.stations for c in s.connectors))
    with _cache_lock:
        if _cache.get(schema) is snap:
            _feeds[schema] = feed
    return feed


# What ``read`` answers the live statuses with: a connector's live id → ``(status, updated
# epoch seconds | None)``, None when it has none.
LiveStatus = Callable[[str], tuple[str, float | None] | None]


def _lookup(ids: list[str], statuses) -> LiveStatus:
    """``live.connectors_status``'s answer for ``ids`` as a :data:`LiveStatus`."""
    found = {i: (status, live.updated_epoch(updated))
             for i, (status, updated) in zip(ids, statuses, strict=True) if status}
    return found.get


def _ids(stations: list[SnapStation]) -> list[str]:
    return [c[0] for s in stations for c in s.connectors]


def read(compute) -> tuple[object, LiveStatus]:
    """``compute(snapshot) -> (result, stations)`` on the current schema's fresh snapshot,
    and the live statuses of (at least) those stations' connectors: ``(result,
    live_status)``, ``live_status`` a :data:`LiveStatus`.

    A warm request (the kept snapshot current, ``_current``) costs no SQL and ONE Redis
    script call: the snapshot's generations and what the status change log says changed,
    applied to the snapshot's status feed (``stations.statusfeed``), which then answers for
    every connector in process. Otherwise the snapshot is rebuilt (one SQL statement, the
    tokens read before it) and ``compute`` run on it, and its feed is loaded (one script
    call: every connector's status). When only the statuses moved and another request of
    this process is rebuilding already, the kept snapshot answers meanwhile (its database
    statuses a moment old; the live ones are current all the same). A snapshot that is not
    kept (built inside a transaction that wrote the estate, or an operator past the memory
    bound alone) reads the live statuses of ``stations`` from their hashes (``live``)."""
    schema = connection.schema_name
    key = generation.generation_key(schema)
    status_key = generation.generation_key(schema, generation.STATUS)

    def tokens_and_statuses(ids):
        return live.connectors_status_and_generation(schema, ids, key, status_key,
                                                     generation.fresh_token())

    if generation.writes_pending(schema):
        # This transaction wrote the estate: build from what it sees, keep nothing.
        result, stations = compute(build(None))
        ids = _ids(stations)
        return result, _lookup(ids, tokens_and_statuses(ids)[2])
    snap = cached(schema)
    if snap is not None:
        result, _ = compute(snap)
        feed = _feed(schema, snap) or _new_feed(schema, snap)
        if feed.loaded:
            token, status_token = feed.refresh(key, status_key, generation.fresh_token())
        else:
            token, status_token = feed.load(key, status_key, generation.fresh_token())
        if _current(snap, token, status_token) or (
                token == snap.token and _build_lock(schema).locked()):
            # (the second: only statuses moved, and they are being read again)
            return result, feed.lookup()
    else:
        token, status_token, _ = tokens_and_statuses([])
    with _build_lock(schema):
        snap = cached(schema)
        if snap is None or not _current(snap, token, status_token):
            snap = build(token, status_token)
            if not keep(schema, snap):
                result, stations = compute(snap)
                ids = _ids(stations)
                return result, _lookup(ids, tokens_and_statuses(ids)[2])
            _freeze_survivors()
        feed = _feed(schema, snap) or _new_feed(schema, snap)
        (feed.refresh if feed.loaded else feed.load)(key, status_key, generation.fresh_token())
    result, _ = compute(snap)
    return result, feed.lookup()


def _on_save(sender, using="default", update_fields=None, **kwargs):
    generation.changed(using, generation.write_kind(sender, update_fields))


def _on_delete(sender, using="default", **kwargs):
    generation.changed(using)


def connect_signals() -> None:
    """Call ``generation.changed`` after every save and delete of the models the snapshot reads."""
    from django.db.models.signals import post_delete, post_save

    for model in (Station, Pile, Connector, PartnerStation):
        post_save.connect(_on_save, sender=model, dispatch_uid=f"snapshot-save-{model.__name__}")
        post_delete.connect(_on_delete, sender=model, dispatch_uid=f"snapshot-delete-{model.__name__}")
