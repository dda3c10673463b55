"""The command bus: the platform's commands reach the gateway process that holds the pile.

Protocol-neutral (YKC and OCPP gateways use the same bus) and carried by Redis, which
may lose everything: a lost command is reported as ``timeout`` or ``pile_offline``, never
applied twice by the bus itself (it does not retry).

Domain side (sync)::

    result = bus.send(schema, port.RemoteStop(pile_code="...", connector_no=1), timeout=10)
    result.ok, result.error, result.detail

Gateway side (asyncio): :class:`GatewayBus` registers the piles a gateway holds, consumes
its inbox and answers each request with the :class:`~charging.port.CommandResult` its
``execute`` callback returns.

Redis keys (``P`` = ``settings.REDIS_KEY_PREFIX``):

- ``P:{schema}:bus:route:{pile_code}`` → ``"{gateway_id} {connection_id}"``, set by the
  gateway on the pile's login, refreshed every ``ROUTE_REFRESH_S`` with TTL ``ROUTE_TTL_S``,
  deleted on disconnect only while it still names that connection (a newer connection of
  the same pile, on any gateway, owns the route).
- ``P:{schema}:bus:peer:{pile_code}`` → ``"{route} {peer}"``: the address (host:port) of
  the connection the route names, written with the route and expiring with it, so a
  gateway that is asked to take the pile can apply the takeover rule (issue #21) to a
  connection another gateway holds (:meth:`GatewayBus.holder`).
- ``P:{schema}:bus:reply:{request_id}`` → list holding the one reply (JSON
  ``{"ok", "error", "detail"}``), expires after ``REPLY_TTL_S``.
- ``P:bus:gw:{gateway_id}`` → list, the gateway's inbox. **Platform-level** (no schema): one
  gateway process serves every operator's piles, so its inbox cannot belong to one tenant;
  every entry names its schema. Entries: requests
  ``{"id", "schema", "command": {"type", "fields"}, "reply_to", "expires"}`` (epoch s) and
  control messages ``{"kick": pile_code, "schema", "route"}`` (a newer connection took the
  pile: close the old one).
- ``P:bus:gw:{gateway_id}:alive`` → ``"1"`` with TTL ``ALIVE_TTL_S``, refreshed while the
  gateway runs, so a command to a pile whose gateway died fails fast as ``pile_offline``.
- ``P:bus:gw:{gateway_id}:keys`` → ``"1"`` with TTL ``KEYS_TTL_S`` (an hour), set and
  refreshed with the alive key: the mark that Redis still holds what the gateway wrote.
  Found missing while the gateway runs, it means Redis lost its data (flushed, or restarted
  empty): the gateway sets its routes again at once and each pile's route and liveness
  again from its next frame. The alive key alone found expired only means the gateway was
  late to refresh it (its loop held up, say by a reconnect storm): set again, nothing lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, is_dataclass
from typing import Any

import redis
from django.conf import settings

from . import port

logger = logging.getLogger(__name__)

ROUTE_TTL_S = 90
ROUTE_REFRESH_S = 30
ALIVE_TTL_S = 15
ALIVE_REFRESH_S = 5
KEYS_TTL_S = 3600
REFRESH_CHUNK = 200  # piles whose routes one script call refreshes (~5 ms of Redis's time)
REPLY_TTL_S = 60

# Set the route unless another connection owns it (refresh must not steal a newer route).
# KEYS[i] gets ARGV[i + 1] for ARGV[1] seconds unless another value holds it (a newer
# connection's route); returns how many were set.
_REFRESH_IF_OURS = """
local n = 0
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if (not v) or v == ARGV[i + 1] then
    redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1])
    n = n + 1
  end
end
return n
"""
_DELETE_IF_OURS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def route_key(schema: str, pile_code: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:{schema}:bus:route:{pile_code}"


def peer_key(schema: str, pile_code: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:{schema}:bus:peer:{pile_code}"


@dataclass(frozen=True)
class Holder:
    """The live connection another gateway holds for a pile: ``peer`` is its address
    (host:port, "" when unknown), ``last_seen`` the epoch seconds of the pile's last frame
    on any gateway (None when unknown)."""

    gateway_id: str
    peer: str
    last_seen: float | None


def reply_key(schema: str, request_id: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:{schema}:bus:reply:{request_id}"


def inbox_key(gateway_id: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:bus:gw:{gateway_id}"


def alive_key(gateway_id: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:bus:gw:{gateway_id}:alive"


def keys_key(gateway_id: str) -> str:
    """The mark that Redis holds the gateway's keys (module docstring)."""
    return f"{settings.REDIS_KEY_PREFIX}:bus:gw:{gateway_id}:keys"


async def set_alive(client, gateway_id: str) -> tuple[bool, bool]:
    """Set (or refresh) the gateway's alive key and its keys mark on ``client`` (an
    asyncio Redis client), in one round trip; returns whether each was there before."""
    pipe = client.pipeline(transaction=False)
    pipe.set(alive_key(gateway_id), "1", ex=ALIVE_TTL_S, get=True)
    pipe.set(keys_key(gateway_id), "1", ex=KEYS_TTL_S, get=True)
    alive, marked = await pipe.execute()
    return alive is not None, marked is not None


def _redis():
    from stations import live

    return live.client()


def live_blocking():
    from stations import live

    return live.blocking_client()


# --- domain side ---------------------------------------------------------------------------


def send(schema: str, command: Any, timeout: float = 10.0) -> port.CommandResult:
    """Send ``command`` (a port command dataclass with ``pile_code``; gateways may accept
    their own protocol-specific dataclasses too) to the pile's gateway and wait up to
    ``timeout`` seconds (at most ``REDIS_BLOCKING_READ_MAX_S``) for its answer. Blocking;
    never raises for a pile that is offline or silent, nor when Redis is unavailable:
    returns ``CommandResult(ok=False, error="pile_offline" | "timeout")``.
    """
    if not is_dataclass(command):
        raise TypeError("a command is a dataclass instance")
    r = _redis()
    request_id = uuid.uuid4().hex
    reply_to = reply_key(schema, request_id)
    try:
        route = r.get(route_key(schema, command.pile_code))
        if not route:
            return port.CommandResult(ok=False, error="pile_offline")
        gateway_id = route.split(" ", 1)[0]
        if not r.exists(alive_key(gateway_id)):
            return port.CommandResult(
                ok=False, error="pile_offline", detail={"gateway": gateway_id}
            )
        envelope = {
            "id": request_id,
            "schema": schema,
            "command": port.command_to_dict(command),
            "reply_to": reply_to,
            "expires": time.time() + timeout,
        }
        pipe = r.pipeline(transaction=False)
        pipe.rpush(inbox_key(gateway_id), json.dumps(envelope))
        pipe.expire(inbox_key(gateway_id), ROUTE_TTL_S)
        pipe.execute()
    except (redis.TimeoutError, redis.ConnectionError):
        logger.warning("bus: Redis unavailable, %s not sent", type(command).__name__)
        return port.CommandResult(ok=False, error="pile_offline", detail={"redis": "unavailable"})
    # The blocking client's socket timeout is longer than any wait allowed here, so Redis
    # answers "nothing" (a timeout result) before the socket would raise.
    wait = min(max(timeout, 0.1), settings.REDIS_BLOCKING_READ_MAX_S)
    try:
        answer = live_blocking().blpop([reply_to], timeout=wait)
    except (redis.TimeoutError, redis.ConnectionError):
        logger.warning("bus: waiting for the answer to %s failed", request_id, exc_info=True)
        answer = None
    if answer is None:
        return port.CommandResult(ok=False, error="timeout")
    data = json.loads(answer[1])
    return port.CommandResult(
        ok=bool(data.get("ok")), error=data.get("error", ""), detail=data.get("detail") or {}
    )


# --- gateway side --------------------------------------------------------------------------

Execute = Callable[[str, dict], Awaitable[port.CommandResult]]
Kick = Callable[[str, str, str], None]


class GatewayBus:
    """The gateway's end of the bus (asyncio, ``redis.asyncio`` client ``redis``).

    ``execute(schema, command_dict)`` runs one command and returns its result (it must
    honour the deadline it is given through ``asyncio.timeout``); ``kick(schema, pile_code,
    route)`` closes a local connection that a newer connection elsewhere replaced.
    """

    def __init__(self, redis, gateway_id: str, execute: Execute, kick: Kick,
                 on_lost: Callable[[], None] | None = None) -> None:
        self.redis = redis
        self.gateway_id = gateway_id
        self.execute = execute
        self.kick = kick
        self.on_lost = on_lost
        self.routes: dict[tuple[str, str], str] = {}
        self.peers: dict[tuple[str, str], str] = {}
        self._tasks: list[asyncio.Task] = []
        self._running: set[asyncio.Task] = set()
        self._delete_if_ours = redis.register_script(_DELETE_IF_OURS)
        self._refresh_if_ours = redis.register_script(_REFRESH_IF_OURS)

    async def start(self) -> None:
        await set_alive(self.redis, self.gateway_id)
        self._tasks = [
            asyncio.create_task(self._consume(), name="bus-consume"),
            asyncio.create_task(self._keep_alive(), name="bus-alive"),
            asyncio.create_task(self._refresh_routes(), name="bus-routes"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(alive_key(self.gateway_id), keys_key(self.gateway_id))
            for (schema, pile_code), value in self.routes.items():
                await self._delete_if_ours(keys=[route_key(schema, pile_code)],
                                           args=[value], client=pipe)
            await pipe.execute()
        self.routes.clear()

    def route_value(self, connection_id: str) -> str:
        return f"{self.gateway_id} {connection_id}"

    async def register(self, schema: str, pile_code: str, connection_id: str,
                       peer: str = "") -> None:
        """The pile's commands come here from now on; a gateway that held it is told to
        close its (older) connection. ``peer``: the connection's address (host:port)."""
        await self.register_many(schema, {pile_code: (connection_id, peer)})

    async def register_many(self, schema: str, routes: dict[str, tuple[str, str]]) -> None:
        """:meth:`register` for many piles of operator ``schema`` at once (a login storm:
        the logins of a window), pile code → (connection id, peer): one pipeline of the
        routes, and one more only when other gateways must be told to close theirs."""
        pipe = self.redis.pipeline(transaction=False)
        values = []
        for pile_code, (connection_id, peer) in routes.items():
            value = self.route_value(connection_id)
            values.append((pile_code, value))
            self.routes[(schema, pile_code)] = value
            self.peers[(schema, pile_code)] = peer
            pipe.set(route_key(schema, pile_code), value, ex=ROUTE_TTL_S, get=True)
            pipe.set(peer_key(schema, pile_code), f"{value} {peer}", ex=ROUTE_TTL_S)
        results = await pipe.execute()
        kicks = []
        for (pile_code, value), previous in zip(values, results[::2], strict=True):
            if previous and previous != value:
                other = previous.split(" ", 1)[0]
                if other != self.gateway_id:
                    message = {"kick": pile_code, "schema": schema, "route": previous}
                    kicks.append((other, json.dumps(message)))
        if kicks:
            pipe = self.redis.pipeline(transaction=False)
            for other, message in kicks:
                pipe.rpush(inbox_key(other), message)
            await pipe.execute()

    async def holder(self, schema: str, pile_code: str) -> Holder | None:
        """The connection another live gateway holds for ``pile_code`` (None when no
        route, the route is this gateway's, or its gateway is gone)."""
        return (await self.holders(schema, [pile_code]))[pile_code]

    async def holders(self, schema: str, pile_codes) -> dict[str, Holder | None]:
        """:meth:`holder` of many piles of operator ``schema`` at once (a login storm):
        one pipeline of their routes, addresses and last-seen times, and one more of the
        other gateways' alive keys only when some route is another gateway's."""
        from stations import live

        codes = list(dict.fromkeys(pile_codes))
        pipe = self.redis.pipeline(transaction=False)
        seen = live.seen_key(schema)
        for pile_code in codes:
            pipe.get(route_key(schema, pile_code))
            pipe.get(peer_key(schema, pile_code))
            pipe.zscore(seen, pile_code)
        results = await pipe.execute()
        found = {}
        for index, pile_code in enumerate(codes):
            route, peer, score = results[3 * index:3 * index + 3]
            if route and route.split(" ", 1)[0] != self.gateway_id:
                found[pile_code] = (route, peer, score)
        alive = set()
        if found:
            others = sorted({route.split(" ", 1)[0] for route, _peer, _seen in found.values()})
            pipe = self.redis.pipeline(transaction=False)
            for gateway_id in others:
                pipe.exists(alive_key(gateway_id))
            alive = {g for g, up in zip(others, await pipe.execute(), strict=True) if up}
        answers: dict[str, Holder | None] = dict.fromkeys(codes)
        for pile_code, (route, peer, score) in found.items():
            gateway_id = route.split(" ", 1)[0]
            if gateway_id not in alive:
                continue
            known = (peer.removeprefix(route + " ")
                     if peer and peer.startswith(route + " ") else "")
            answers[pile_code] = Holder(gateway_id=gateway_id, peer=known,
                                        last_seen=float(score) if score is not None else None)
        return answers

    async def unregister(self, schema: str, pile_code: str, connection_id: str) -> None:
        """The pile's connection ``connection_id`` closed: its route goes, unless a newer
        connection (here or on another gateway) holds the pile meanwhile."""
        await self.unregister_many(schema, [(pile_code, connection_id)])

    async def unregister_many(self, schema: str, closed) -> None:
        """:meth:`unregister` for many closed connections of operator ``schema`` at once
        (a storm: every link dropped together), ``closed`` an iterable of (pile code,
        connection id): one pipeline of compare-and-delete scripts instead of one round
        trip each."""
        pipe = self.redis.pipeline(transaction=False)
        for pile_code, connection_id in closed:
            value = self.route_value(connection_id)
            if self.routes.get((schema, pile_code)) == value:
                del self.routes[(schema, pile_code)]
                self.peers.pop((schema, pile_code), None)
            await self._delete_if_ours(keys=[route_key(schema, pile_code)], args=[value],
                                       client=pipe)
        await pipe.execute()

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(ALIVE_REFRESH_S)
            try:
                alive, marked = await set_alive(self.redis, self.gateway_id)
            except Exception:
                logger.exception("bus: cannot refresh the alive key")
                continue
            if marked and not alive:
                logger.warning("bus: the alive key had expired (refreshed more than %d s "
                               "apart: the event loop held up); set again", ALIVE_TTL_S)
            if not marked:  # Redis lost our keys: routes back now, not in 30 s
                if self.on_lost is not None:
                    self.on_lost()
                try:
                    await self.refresh_routes()
                except Exception:
                    logger.exception("bus: cannot restore routes")

    async def refresh_routes(self) -> None:
        """Set every route this gateway holds again (unless a newer connection owns it):
        one script call per ``REFRESH_CHUNK`` piles, their route and address keys together
        (18,000 piles: 90 calls; as one call per key the loop spent ~1 s a refresh packing
        36,000 of them, in stretches of 20 ms and more that held every pile's reply).
        """
        items = list(self.routes.items())
        for start in range(0, len(items), REFRESH_CHUNK):
            keys, args = [], [ROUTE_TTL_S]
            for (schema, pile_code), value in items[start:start + REFRESH_CHUNK]:
                keys.append(route_key(schema, pile_code))
                keys.append(peer_key(schema, pile_code))
                args.append(value)
                args.append(f"{value} {self.peers.get((schema, pile_code), '')}")
            await self._refresh_if_ours(keys=keys, args=args)

    async def _refresh_routes(self) -> None:
        while True:
            await asyncio.sleep(ROUTE_REFRESH_S)
            try:
                await self.refresh_routes()
            except Exception:
                logger.exception("bus: cannot refresh routes")

    async def _consume(self) -> None:
        key = inbox_key(self.gateway_id)
        while True:
            try:
                item = await self.redis.blpop([key], timeout=1)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("bus: inbox read failed")
                await asyncio.sleep(1)
                continue
            if item is None:
                continue
            try:
                message = json.loads(item[1])
            except (TypeError, ValueError):
                logger.warning("bus: unreadable inbox entry %r", item[1][:200])
                continue
            if "kick" in message:
                self.kick(message.get("schema", ""), message["kick"], message.get("route", ""))
                continue
            task = asyncio.create_task(self._answer(message))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _answer(self, message: dict) -> None:
        try:
            schema, reply_to = message["schema"], message["reply_to"]
            remaining = float(message["expires"]) - time.time()
            command = message["command"]
        except (KeyError, TypeError, ValueError):
            logger.warning("bus: malformed request %r", message)
            return
        if remaining <= 0:
            return  # the sender has given up already
        try:
            async with asyncio.timeout(remaining):
                result = await self.execute(schema, command)
        except TimeoutError:
            result = port.CommandResult(ok=False, error="timeout")
        except Exception as exc:
            logger.exception("bus: command %s failed", command.get("type"))
            result = port.CommandResult(ok=False, error="failed", detail={"message": str(exc)})
        reply = json.dumps({"ok": result.ok, "error": result.error, "detail": result.detail},
                           default=str)
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(reply_to, reply)
        pipe.expire(reply_to, REPLY_TTL_S)
        await pipe.execute()
