"""The YKC v1.6 TCP gateway: one asyncio process holding many piles' connections.

Per connection (:class:`PileConnection`, an ``asyncio.Protocol``): the codec's
``FrameSplitter`` cuts the byte stream (split and joined reads, resync on the next 0x68,
``YKC_MAX_FRAME_SIZE``); frames are handled in order. Replies that need nothing but the
frame — heartbeat 0x03 → 0x04 — are made synchronously inside ``data_received`` and
written once per read (all the replies of a read in one ``write``); anything that needs
PostgreSQL runs in a bounded thread pool (``YKC_DB_THREADS``) and is awaited only where
the pile waits for an answer that depends on it (0x01, 0x05, 0x09, 0x31, 0x3B). Logins
(0x01), billing-model checks (0x05) and requests (0x09) arriving within 20 ms are decided
together, one batch per window (``batches.BatchedQuery``: a reconnect storm costs a fixed
number of statements per window), and so are the online marks of the piles logged in; the
holder checks and routes of a batch's logins go to Redis in one pipeline each
(``batches.BatchedRedis``). A batch that fails is redone pile by pile. Redis writes (live state, last-seen) are batched every 50 ms; the
frame log (COPY of the frames' bytes as received), meter samples and session messages are
batched and written every 0.5 s.

Domain traffic goes through charging's port: its events and queries handed to
``charging.handlers.dispatch``, commands from ``charging.bus``, live state queued with
``charging.handlers.live_queue``. Bad input is counted in the metrics and logged, never
raised: see :meth:`PileConnection.data_received`.

Modules: ``server`` (the process), ``connection`` (one pile's socket),
``frames`` (what each upstream frame does), ``commands`` (bus commands to a pile),
``writers`` (batched database and Redis writes), ``common`` (constants, helpers).
"""

from __future__ import annotations

from .common import ZERO_CARD, ZERO_TRADE, adapters_call, connector_status  # noqa: F401
from .connection import ConnectorState, PileConnection  # noqa: F401
from .server import GatewayMetrics, YkcGateway, run  # noqa: F401
from .writers import Batcher, LiveWriter  # noqa: F401
