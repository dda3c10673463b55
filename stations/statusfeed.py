"""In-process mirror of one operator's live connector statuses, for the driver's list and map.

The list and map merge the live status (Redis, ``stations.live``) of every connector they
show: up to 2,000 for a map. Reading 2,000 hashes per request cost Redis ~1 ms and the web
process the packing and parsing of a 35 KB answer. A :class:`StatusFeed` instead keeps
``(status, updated epoch)`` of the operator's connectors in process and, on each request,
asks Redis only for what changed since it last looked: the entries of the operator's
**status change log** (``live.log_key``, a stream every writer of a connector hash appends
the connector's id to) after the last one it applied, and the current status of those
connectors — in ONE script call that also reads the snapshot's two generations
(``stations.generation``). So a status written to Redis is visible on the next request,
whichever process serves it, as when every request read every hash.

Correctness, and what makes a feed reload everything it mirrors (one script call that reads
the log's position and every hash of the snapshot's connectors atomically):

- the log holds fewer entries after the last one applied than were added to it since
  (``XINFO STREAM``'s ``entries-added``): it was trimmed past the feed's position (the feed
  is further behind than ``live.STATUS_LOG_MAXLEN`` entries), or lost and made anew;
- the log is gone (expired after ``live.STATUS_LOG_TTL_S`` without a write, or lost)
  while entries had been added to it;
- more than ``MAX_ENTRIES`` entries wait;
- the estate changed (the snapshot was rebuilt at another estate generation: connectors
  may have been added, whose earlier hashes the feed never read) — the caller
  (``stations.snapshot``) keeps one feed per snapshot estate generation.

Concurrent requests of one process refresh without a lock around the round trip; a
refresh's answer is applied only when it ends later in the log than what the feed holds
(its values were then read later), so an older answer never overwrites a newer one.
Memory: one small tuple per connector with a live hash, bounded with the snapshots
(``STATION_SNAPSHOT_MAX_STATIONS``).

Needs Redis ≥ 7.0 (``XINFO STREAM``'s ``entries-added``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings

from . import live

MAX_ENTRIES = 5_000  # log entries a refresh applies; more waiting: a reload is cheaper
_NONE = (None, None)

# Shared by both scripts: the generations (set to the fresh token ARGV[3] when missing, as
# ``live.connectors_status_and_generation`` does) and helpers. ``out[1]`` is "gen US sgen".
_HEAD = live.generations_lua(1, 2, 3) + """
local function xinfo(key)
  local found = {}
  if redis.call('EXISTS', key) == 0 then return nil end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do found[info[i]] = info[i + 1] end
  return found
end
local function status_of(prefix, id)
  local v = redis.call('HMGET', prefix .. id, 'status', 'updated')
  return id .. '\\31' .. (v[1] or '') .. '\\31' .. (v[2] or '')
end
"""

# Reload. ARGV: 1 generation key, 2 status generation key, 3 fresh token, 4 log key,
# 5 hash key prefix, 6 connector ids joined by RS. Answer: "gen US sgen" RS "last log id US
# entries ever added to the log" RS then "id US status US updated" per connector (empty
# status and updated: no hash).
_LOAD_SCRIPT = _HEAD + """
local info = xinfo(ARGV[4])
out[2] = info and (info['last-generated-id'] .. '\\31' .. info['entries-added']) or ('0-0' .. '\\31' .. '0')
for id in string.gmatch(ARGV[6], '[^\\30]+') do out[#out + 1] = status_of(ARGV[5], id) end
return table.concat(out, '\\30')
"""

# Refresh. ARGV: 1–3 as above, 4 log key, 5 the last log id applied, 6 hash key prefix,
# 7 MAX_ENTRIES, 8 the entries ever added to the log when it was applied. Answer: as the
# reload's for the connectors named by the log after ARGV[5] (each once), or "gen US sgen"
# RS "reload" when the feed must reload: the log holds fewer entries after ARGV[5] than were
# added since (trimmed past it, or lost and made anew), or more than MAX_ENTRIES wait.
_REFRESH_SCRIPT = _HEAD + """
local last, held = ARGV[5], tonumber(ARGV[8])
local info = xinfo(ARGV[4])
local added = info and info['entries-added'] or 0
local waiting = added - held
if waiting == 0 and (info or held == 0) then
  out[2] = last .. '\\31' .. added
  return table.concat(out, '\\30')
end
if not info or waiting < 0 or waiting > tonumber(ARGV[7]) then
  out[2] = 'reload'
  return table.concat(out, '\\30')
end
local entries = redis.call('XRANGE', ARGV[4], '(' .. last, '+', 'COUNT', waiting + 1)
if #entries ~= waiting then
  out[2] = 'reload'
  return table.concat(out, '\\30')
end
out[2] = entries[#entries][1] .. '\\31' .. added
local seen = {}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'c' and not seen[fields[i + 1]] then
      seen[fields[i + 1]] = true
      out[#out + 1] = status_of(ARGV[6], fields[i + 1])
    end
  end
end
return table.concat(out, '\\30')
"""


@lru_cache(maxsize=4)
def _scripts(url: str):
    """Both scripts, loaded into Redis together on first use (a Redis that lost them later
    gets each again on its next call: redis-py's ``Script``)."""
    client = live.client()
    scripts = client.register_script(_LOAD_SCRIPT), client.register_script(_REFRESH_SCRIPT)
    for script in scripts:
        client.script_load(script.script)
    return scripts


class StatusFeed:
    """The live ``(status, updated epoch seconds)`` of one schema's connectors (ids
    ``"{pile_code}:{connector_no}"``), current as of the last :meth:`refresh`; built for
    the snapshot estate generation ``token`` (see the module's docstring)."""

    def __init__(self, schema: str, token: str | None, ids: Iterable[str]):
        self.schema, self.token = schema, token
        self._ids = list(ids)
        self._prefix = live.connector_keys(schema, [""])[0]
        self._log = live.log_key(schema)
        self._statuses: dict[str, tuple[str, float | None]] = {}
        self._last = "0-0"  # the last log entry applied
        self._added = 0  # the log's count of entries ever added, at that entry
        self._lock = threading.Lock()
        self.loaded = False  # whether :meth:`load` has run once

    def lookup(self):
        """A function: a connector's live id → its ``(status, updated epoch)``, or None when
        it has no live status (what the feed holds now; a reload later replaces it)."""
        return self._statuses.get

    def statuses(self, ids: Iterable[str]) -> list[tuple[str | None, float | None]]:
        """``(status, updated epoch)`` of ``ids`` in order, ``(None, None)`` where unknown."""
        get = self._statuses.get
        return [get(i, _NONE) for i in ids]

    def load(self, generation_key: str, status_key: str, fresh: str) -> tuple[str, str]:
        """Read every mirrored connector's status and the log's position, in one script
        call, and hold them instead of what the feed held; returns the generations
        ``(estate, statuses)`` read in the same call. (Two reloads racing may land in either
        order: the next refresh reads again from the position the last one holds.)"""
        load_script, _ = _scripts(settings.REDIS_URL)
        raw = load_script(args=[generation_key, status_key, fresh, self._log, self._prefix,
                                "\x1e".join(self._ids)])
        tokens, position, *values = raw.split("\x1e")
        last, _, added = position.partition("\x1f")
        statuses = dict(_parsed(values))
        with self._lock:
            self._statuses, self._last, self._added = statuses, last, int(added)
            self.loaded = True
        return _tokens(tokens)

    def refresh(self, generation_key: str, status_key: str, fresh: str) -> tuple[str, str]:
        """Apply what the change log says changed since the last refresh (one script call;
        a second one when the feed must reload, see the module); returns the generations
        ``(estate, statuses)``. Redis errors propagate (the list and map need Redis)."""
        _, refresh_script = _scripts(settings.REDIS_URL)
        with self._lock:
            last, held = self._last, self._added
        raw = refresh_script(args=[generation_key, status_key, fresh, self._log, last,
                                   self._prefix, MAX_ENTRIES, held])
        tokens, position, *values = raw.split("\x1e")
        if position == "reload":
            return self.load(generation_key, status_key, fresh)
        if values:
            last, _, added = position.partition("\x1f")
            self._apply(last, int(added), list(_parsed(values)))
        return _tokens(tokens)

    def _apply(self, last: str, added: int, changed: list[tuple[str, tuple]]) -> None:
        """Apply ``changed`` statuses read when the log had ``added`` entries (the last
        ``last``), unless what the feed holds was read as late or later (another request's
        answer got there first: an older answer never overwrites a newer one)."""
        with self._lock:
            if added <= self._added:
                return
            statuses = self._statuses
            for connector, value in changed:
                if value is _NONE:
                    statuses.pop(connector, None)
                else:
                    statuses[connector] = value
            self._last, self._added = last, added


def _tokens(raw: str) -> tuple[str, str]:
    generation, _, status_generation = raw.partition("\x1f")
    return generation, status_generation


def _parsed(values: list[str]):
    """``(id, (status, updated epoch))`` of the scripts' "id US status US updated" items;
    ``(id, (None, None))`` for a connector without a hash."""
    for value in values:
        connector, status, updated = value.split("\x1f")
        yield connector, ((status, live.updated_epoch(updated)) if status else _NONE)
