"""The gateway bus's periodic route refresh (charging.bus.GatewayBus.refresh_routes)."""

from __future__ import annotations

import asyncio

from django.conf import settings
from redis import asyncio as aioredis

from charging import bus

SCHEMA = "op_bus_refresh"


def test_refresh_sets_this_gateways_routes_again_and_leaves_newer_ones():
    async def scenario():
        client = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        gateway = bus.GatewayBus(client, "gw-refresh", None, None)
        codes = [f"88{i:012d}" for i in range(bus.REFRESH_CHUNK * 2 + 50)]  # three calls
        for i, code in enumerate(codes):
            gateway.routes[(SCHEMA, code)] = gateway.route_value(str(i))
            gateway.peers[(SCHEMA, code)] = f"10.0.0.1:{i}"
        keys = [bus.route_key(SCHEMA, c) for c in codes] + [bus.peer_key(SCHEMA, c)
                                                             for c in codes]
        try:
            # A newer connection on another gateway took the first pile; the others' keys
            # expired (or Redis lost them) and come back.
            await client.set(bus.route_key(SCHEMA, codes[0]), "gw-other 9", ex=90)
            await client.set(bus.peer_key(SCHEMA, codes[0]), "gw-other 9 10.0.0.2:1", ex=90)

            await gateway.refresh_routes()

            routes = await client.mget(keys[:len(codes)])
            peers = await client.mget(keys[len(codes):])
            assert routes[0] == "gw-other 9" and peers[0] == "gw-other 9 10.0.0.2:1"
            assert routes[1:] == [f"gw-refresh {i}" for i in range(1, len(codes))]
            assert peers[1:] == [f"gw-refresh {i} 10.0.0.1:{i}" for i in range(1, len(codes))]
            assert 0 < await client.ttl(keys[-1]) <= bus.ROUTE_TTL_S
        finally:
            await client.delete(*keys)
            await client.aclose()

    asyncio.run(scenario())
