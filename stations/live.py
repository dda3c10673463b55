"""Live state of piles and connectors in Redis (status, readings, last seen).

Redis may lose all of it at any time: it is rebuilt by the next frames from the piles,
and the database keeps the connector status and the pile's online flag. Keys carry the
tenant's schema:

- ``{prefix}:{schema}:live:conn:{pile_code}:{connector_no}`` — hash of the latest
  readings: ``status``, ``trade_no``, ``energy_kwh``, ``amount_yuan``, ``power_kw``,
  ``voltage_v``, ``current_a``, ``soc_percent``, ``remaining_min``, ``updated``
  (ISO-8601 UTC); values are strings.
- ``{prefix}:{schema}:live:seen`` — sorted set, pile code → epoch seconds of its last frame.
- ``{prefix}:{schema}:live:log`` — stream, the **status change log**: one entry
  ``{c: "{pile_code}:{connector_no}"}`` per write of a connector's hash (``connector_update``,
  ``connector_clear`` of its status, the gateways' ``charging.handlers.live_queue``), capped
  at about ``STATUS_LOG_MAXLEN`` entries and gone after ``STATUS_LOG_TTL_S`` without a
  write (Redis memory: an idle operator's log takes none). It names what changed, not the
  values: a reader
  reads the hashes themselves (``stations.statusfeed`` keeps the list's and map's copy of
  an operator's statuses in process and asks it only for what changed since it last looked).
  Every writer of a connector hash must add its entry (``log_queue``), after the write.

Gateways (asyncio) use the same key functions with ``redis.asyncio``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache

import redis
from django.conf import settings

LIVE_FIELDS = (
    "status",
    "trade_no",
    "energy_kwh",
    "amount_yuan",
    "power_kw",
    "voltage_v",
    "current_a",
    "soc_percent",
    "remaining_min",
    "updated",
)
CONNECTOR_TTL_S = 7 * 86400  # a connector silent for a week has no live state
# Entries the status change log keeps per operator (approximately: Redis trims whole nodes;
# ~25 bytes each), and how long it lives without a write. A reader further behind than that,
# or whose log expired, reloads every status it mirrors (``stations.statusfeed``).
STATUS_LOG_MAXLEN = 10_000
STATUS_LOG_TTL_S = 3600


def connector_key(schema: str, pile_code: str, connector_no: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:{schema}:live:conn:{pile_code}:{connector_no}"


def connector_keys(schema: str, ids: Iterable[str]) -> list[str]:
    """``connector_key`` of many connectors named ``"{pile_code}:{connector_no}"``."""
    base = f"{settings.REDIS_KEY_PREFIX}:{schema}:live:conn:"
    return [base + i for i in ids]


def seen_key(schema: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:{schema}:live:seen"


def log_key(schema: str) -> str:
    """The schema's status change log (see the module's docstring)."""
    return f"{settings.REDIS_KEY_PREFIX}:{schema}:live:log"


def log_queue(pipe, schema: str, connectors: Iterable[tuple[str, int]]) -> None:
    """Queue on ``pipe`` (sync or asyncio) the change log entries of writes of these
    connectors' hashes (``(pile_code, connector_no)``), and renew the log's expiry; queue
    them after the writes themselves, in the same pipeline."""
    key = log_key(schema)
    for pile_code, connector_no in connectors:
        pipe.xadd(key, {"c": f"{pile_code}:{connector_no}"}, maxlen=STATUS_LOG_MAXLEN,
                  approximate=True)
    pipe.expire(key, STATUS_LOG_TTL_S)


@lru_cache(maxsize=4)
def _client_for(url: str, socket_timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT_S,
        socket_keepalive=True,
        health_check_interval=30,
    )


def client() -> redis.Redis:
    """The shared client (commands answer at once: ``REDIS_SOCKET_TIMEOUT_S``)."""
    return _client_for(settings.REDIS_URL, float(settings.REDIS_SOCKET_TIMEOUT_S))


def blocking_client() -> redis.Redis:
    """A client for blocking reads (BLPOP) of up to ``REDIS_BLOCKING_READ_MAX_S``: its socket
    timeout is longer than any such wait, so the server's own timeout answers first."""
    return _client_for(
        settings.REDIS_URL,
        float(settings.REDIS_BLOCKING_READ_MAX_S + settings.REDIS_SOCKET_TIMEOUT_S),
    )


def live_values(values: dict) -> dict[str, str]:
    """The non-None values as Redis strings, with ``updated`` set (UTC now) if absent."""
    out = {k: str(v) for k, v in values.items() if v is not None and k in LIVE_FIELDS}
    out.setdefault("updated", datetime.now(UTC).isoformat())
    return out


def connector_update(schema: str, pile_code: str, connector_no: int, **values) -> None:
    """Merge readings into a connector's live hash (fields in LIVE_FIELDS, others ignored)."""
    key = connector_key(schema, pile_code, connector_no)
    pipe = client().pipeline(transaction=False)
    pipe.hset(key, mapping=live_values(values))
    pipe.expire(key, CONNECTOR_TTL_S)
    log_queue(pipe, schema, [(pile_code, connector_no)])
    pipe.execute()


def connector_clear(schema: str, pile_code: str, connector_no: int, *fields: str) -> None:
    """Forget some readings (e.g. the session's once it has ended); logged as a change
    when ``status`` or ``updated`` is among them."""
    if not fields:
        return
    key = connector_key(schema, pile_code, connector_no)
    if "status" in fields or "updated" in fields:
        pipe = client().pipeline(transaction=False)
        pipe.hdel(key, *fields)
        log_queue(pipe, schema, [(pile_code, connector_no)])
        pipe.execute()
    else:
        client().hdel(key, *fields)


def connectors_get(schema: str, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], dict]:
    """Live hashes of many connectors in one round trip: {(pile_code, no): {field: str}}."""
    keys = list(keys)
    pipe = client().pipeline(transaction=False)
    for pile_code, no in keys:
        pipe.hgetall(connector_key(schema, pile_code, no))
    return {k: v for k, v in zip(keys, pipe.execute(), strict=True) if v}


# Status and update time of many connector hashes in ONE command: a pipeline of thousands
# of HMGETs costs the web process more CPU (packing and parsing per command) than the rest
# of a map request. The connectors are passed as ONE argument (ids separated by RS, 0x1e)
# under one key prefix, and the answer is ONE string ("status US updated" per connector,
# RS between them, empty where unknown): packing 2,000 key arguments and parsing 2,000
# replies cost the web process 1.8 ms a map request, this 0.6 ms (measured in-process,
# 300 calls of 2,000 connectors). The keys are built in the script, which a single Redis
# (with replicas) allows; Redis Cluster would need them declared.
# The loop shared by both scripts below: ``out`` holds what goes before the statuses.
_STATUS_LOOP = """
local prefix = ARGV[1]
for id in string.gmatch(ARGV[2], '[^\\30]+') do
  local v = redis.call('HMGET', prefix .. id, 'status', 'updated')
  if v[1] then out[#out + 1] = v[1] .. '\\31' .. (v[2] or '') else out[#out + 1] = '' end
end
return table.concat(out, '\\30')
"""
_STATUS_SCRIPT = "local out = {}" + _STATUS_LOOP


@lru_cache(maxsize=4)
def _status_script(url: str):
    return _client_for(url, float(settings.REDIS_SOCKET_TIMEOUT_S)).register_script(_STATUS_SCRIPT)


def connectors_status(schema: str, ids: Iterable[str]) -> list[tuple[str | None, str | None]]:
    """``(status, updated)`` of many connectors in one round trip, in the order of
    ``ids`` (``"{pile_code}:{connector_no}"``, no RS or US characters); ``updated`` is the
    ISO-8601 string as stored (see ``updated_epoch``); None where unknown."""
    ids = list(ids)
    if not ids:
        return []
    prefix = connector_keys(schema, [""])[0]
    raw = _status_script(settings.REDIS_URL)(args=[prefix, "\x1e".join(ids)])
    return _statuses(raw.split("\x1e"), ids)


def _statuses(values: list[str], ids: list[str]) -> list[tuple[str | None, str | None]]:
    """The scripts' answers (``"status US updated"`` or empty per connector) as tuples."""
    out = []
    for value in values:
        status, _, updated = value.partition("\x1f")
        out.append((status or None, updated or None))
    if len(out) != len(ids):  # an empty id, or one containing RS, would shift every answer
        raise ValueError("connector ids must be non-empty and contain no RS (0x1e)")
    return out


# The same, after the schema's station-snapshot generations (see ``stations.snapshot``): read
# in the same round trip so a request knows whether its snapshot is current; a missing
# generation (Redis lost it) is set to the fresh token the caller passes.
def generations_lua(generation: int, status: int, fresh: int) -> str:
    """Lua that reads the snapshot's generation (``ARGV[generation]`` names its key) and
    status generation (``ARGV[status]``), each set to the fresh token ``ARGV[fresh]`` when
    missing, and starts the script's answer ``out`` with "generation US status generation".
    Shared by the scripts that read the generations with the statuses."""
    return f"""
local g = redis.call('GET', ARGV[{generation}])
if not g then
  g = ARGV[{fresh}]
  redis.call('SET', ARGV[{generation}], g)
end
local sg = redis.call('GET', ARGV[{status}])
if not sg then
  sg = ARGV[{fresh}]
  redis.call('SET', ARGV[{status}], sg)
end
local out = {{g .. '\\31' .. sg}}"""


_STATUS_GENERATION_SCRIPT = generations_lua(3, 5, 4) + _STATUS_LOOP


@lru_cache(maxsize=4)
def _status_generation_script(url: str):
    return _client_for(url, float(settings.REDIS_SOCKET_TIMEOUT_S)).register_script(
        _STATUS_GENERATION_SCRIPT)


def connectors_status_and_generation(
    schema: str, ids: Iterable[str], generation_key: str, status_key: str, fresh: str
) -> tuple[str, str, list[tuple[str | None, str | None]]]:
    """The values of ``generation_key`` and ``status_key`` (each set to ``fresh`` when
    missing) and ``connectors_status(schema, ids)``, in ONE round trip (one script call,
    also for no ids): ``(generation, status generation, statuses)``."""
    ids = list(ids)
    prefix = connector_keys(schema, [""])[0]
    raw = _status_generation_script(settings.REDIS_URL)(
        args=[prefix, "\x1e".join(ids), generation_key, fresh, status_key])
    tokens, *values = raw.split("\x1e")
    generation, _, status_generation = tokens.partition("\x1f")
    if not ids:
        return generation, status_generation, []
    return generation, status_generation, _statuses(values, ids)


def updated_epoch(updated: str | None) -> float | None:
    """An ``updated`` value as epoch seconds, None if absent or unparsable."""
    if not updated:
        return None
    try:
        return datetime.fromisoformat(updated).timestamp()
    except ValueError:
        return None


def pile_seen(schema: str, pile_code: str, at: datetime | None = None) -> None:
    """Record that a pile sent a frame at ``at`` (default now)."""
    ts = (at or datetime.now(UTC)).timestamp()
    client().zadd(seen_key(schema), {pile_code: ts})


def piles_seen(schema: str, seen: dict[str, datetime]) -> None:
    """:func:`pile_seen` for many piles (pile code → time of its frame) in one write."""
    if seen:
        client().zadd(seen_key(schema), {code: at.timestamp() for code, at in seen.items()})


def piles_seen_before(schema: str, epoch_s: float) -> list[str]:
    """Pile codes whose last frame is older than ``epoch_s``."""
    return client().zrangebyscore(seen_key(schema), "-inf", f"({epoch_s}")


def piles_last_seen(schema: str, pile_codes: list[str]) -> dict[str, datetime | None]:
    """:func:`pile_last_seen` of many piles in one read: pile code → time of its last frame
    (UTC), None when Redis has none."""
    if not pile_codes:
        return {}
    scores = client().zmscore(seen_key(schema), pile_codes)
    return {code: None if score is None else datetime.fromtimestamp(score, UTC)
            for code, score in zip(pile_codes, scores, strict=True)}


def pile_last_seen(schema: str, pile_code: str) -> datetime | None:
    score = client().zscore(seen_key(schema), pile_code)
    return datetime.fromtimestamp(score, UTC) if score is not None else None
