"""Questions many piles ask the database at once, answered in one call per operator.

A login storm (every pile reconnecting after a network or gateway restart) sends one
login 0x01 and one billing-model verification 0x05 per pile within seconds. Each on its
own is a few (login) to about ten (0x05) statements; :class:`BatchedQuery` gathers what
arrives within ``window`` seconds (at most ``max_batch`` per call) for one operator (for
logins: the public schema) and answers them with one call of a batch function in the
database pool, so the cost per pile falls with the load.

At most ``at_once`` calls of one batch function run for one operator at a time: a window
that ends while they run keeps gathering until one of them returns (or until it is full).
Without that a storm sent one small batch per 20 ms window whatever the database's pace —
at 18,000 piles thousands of transactions of a few piles each, queued in the pools, each
paying the per-transaction cost and several contending for the same rows — so the batches
now grow with the load instead of the queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .common import adapters_call

if TYPE_CHECKING:
    from .server import YkcGateway


class BatchedQuery:
    """``await ask(schema, key, value)`` → the batch function's answer for ``key``.

    ``fn(claims: dict[key, value]) -> dict[key, answer]`` runs inside ``schema`` in the
    gateway's reply pool (``background``: its pool of background writes); a key missing from its answer gets ``None``; if it raises, every
    waiter of that batch gets the exception. The same key twice in one window: the later
    value is asked, both waiters get its answer."""

    def __init__(self, gateway: YkcGateway, fn: Callable[[dict], dict], *,
                 window: float = 0.02, max_batch: int = 500, background: bool = False,
                 at_once: int | None = None) -> None:
        self.gateway = gateway
        self.fn = fn
        # The pool of background writes (run_background) instead of the reply pool, for
        # batches no pile waits on.
        self.background = background
        self.window = window
        self.max_batch = max_batch
        self.pending: dict[str, dict[Any, tuple[Any, list[asyncio.Future]]]] = {}
        self.calls = 0  # batch calls made (tests, metrics)
        # Calls running per operator at most (default: 1 for background batches, which no
        # pile waits on; 2 for those a reply waits on, so one slow call does not hold them).
        self.at_once = at_once if at_once is not None else (1 if background else 2)
        self.running: dict[str, int] = {}  # schema → calls running
        self.held: dict[str, dict] = {}  # schema → its batch whose window ended meanwhile

    def ask(self, schema: str, key, value) -> asyncio.Future:
        loop = self.gateway.loop
        future = loop.create_future()
        batch = self.pending.get(schema)
        if batch is None:
            batch = self.pending[schema] = {}
            loop.call_later(self.window, self._flush, schema, batch)
        waiters = batch[key][1] if key in batch else []
        waiters.append(future)
        batch[key] = (value, waiters)
        if len(batch) >= self.max_batch:
            self._flush(schema, batch)
        return future

    def _flush(self, schema: str, batch: dict) -> None:
        if self.pending.get(schema) is not batch:
            return  # already sent (full before its window ended)
        if len(batch) < self.max_batch and self.running.get(schema, 0) >= self.at_once:
            self.held[schema] = batch  # gathers on; sent when a running call returns
            return
        del self.pending[schema]
        if self.held.get(schema) is batch:
            del self.held[schema]
        self.calls += 1
        self.running[schema] = self.running.get(schema, 0) + 1
        task = self.gateway.loop.create_task(self._answer(schema, batch))
        self.gateway._offline_tasks.add(task)
        task.add_done_callback(self.gateway._offline_tasks.discard)
        task.add_done_callback(lambda _task: self._returned(schema))

    def _returned(self, schema: str) -> None:
        """A call for ``schema`` ended (answered, failed or cancelled): the batch held back
        meanwhile, if any, goes now."""
        left = self.running.get(schema, 1) - 1
        if left:
            self.running[schema] = left
        else:
            self.running.pop(schema, None)
        batch = self.held.pop(schema, None)
        if batch is not None:
            self._flush(schema, batch)

    async def _call(self, schema: str, claims: dict) -> dict:
        run = self.gateway.run_background if self.background else self.gateway.run_db
        return await run(adapters_call, self.fn, schema, claims)

    async def _answer(self, schema: str, batch: dict) -> None:
        claims = {key: value for key, (value, _waiters) in batch.items()}
        try:
            answers = await self._call(schema, claims)
        except Exception as exc:  # every waiter hears of it (no reply: the pile asks again)
            for _value, waiters in batch.values():
                for future in waiters:
                    if not future.done():
                        future.set_exception(exc)
            return
        for key, (_value, waiters) in batch.items():
            for future in waiters:
                if not future.done():
                    future.set_result(answers.get(key))


class BatchedRedis(BatchedQuery):
    """A :class:`BatchedQuery` whose batch function is a coroutine function on the event
    loop, ``await fn(schema, claims) -> dict[key, answer]`` (one Redis pipeline): a login
    batch releases its decided logins together, and their holder checks and routes go to
    Redis in one round trip each instead of one per pile. The default window (2 ms) only
    gathers what the same moment releases."""

    def __init__(self, gateway: YkcGateway, fn, *, window: float = 0.002,
                 max_batch: int = 500) -> None:
        super().__init__(gateway, fn, window=window, max_batch=max_batch)

    async def _call(self, schema: str, claims: dict) -> dict:
        return await self.fn(schema, claims)
