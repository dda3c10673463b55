"""Client processes of a load benchmark: the simulated piles spread over several spawned
interpreters, each its own event loop and collector, so no one client process is the floor
of the round trips it measures (at 10,000 OCPP piles one process measured a bare server's
p99 at 78 ms, four 5.6 ms; at 18,000 YKC piles one process's own loop lagged 271 ms p99).

The coordinator sends each phase as a command tuple on every client's queue and gathers one
answer ``(kind, index, *payload)`` per client from the shared queue; a client's failure comes
back as ``("error", index, traceback)`` and ends the run.
"""

from __future__ import annotations

import contextlib
import queue as queues
import time


def client_run(client, index: int, *args) -> None:
    """The body of client process ``index``: its open-files limit raised to the hard limit
    (one descriptor per pile), then ``client(index, *args)`` (a coroutine function; ``args``
    end with its commands queue and the shared results queue) run on uvloop; an exception
    goes back as ``("error", index, traceback)`` on the results queue."""
    import traceback

    import uvloop

    from protocols.management.gateway_command import raise_nofile_limit

    raise_nofile_limit()
    try:
        uvloop.run(client(index, *args))
    except Exception:
        args[-1].put(("error", index, traceback.format_exc()))


class ClientProcesses:
    """``len(per_client)`` processes (``spawn``: not a fork of a running loop), process
    ``i`` running ``target(i, *per_client[i], commands_i, results)``; each must answer
    ``("started", i)`` first."""

    def __init__(self, target, per_client: list[tuple], name: str) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.count = len(per_client)
        self.results = context.Queue()
        self.commands = [context.Queue() for _ in range(self.count)]
        self.processes = [
            context.Process(target=target, name=f"{name}-{i}", daemon=True,
                            args=(i, *per_client[i], self.commands[i], self.results))
            for i in range(self.count)]
        for process in self.processes:
            process.start()
        self.gather("started")

    def send(self, *command) -> None:
        """``command`` to every client."""
        for queue in self.commands:
            queue.put(command)

    def gather(self, kind: str, timeout: float = 900.0, every=None) -> list[tuple]:
        """The answers ``kind`` of all clients, by client index; ``every()`` called about
        once a second meanwhile. A client that died, failed, answered another kind or did
        not answer within ``timeout`` s ends the run (``SystemExit``)."""
        answers: dict[int, tuple] = {}
        deadline = time.monotonic() + timeout
        while len(answers) < self.count:
            if every is not None:
                every()
            try:
                answer = self.results.get(timeout=1.0)
            except queues.Empty:
                dead = [p.name for p in self.processes if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    raise SystemExit(f"clients {dead or 'silent'} while waiting for "
                                     f"{kind}") from None
                continue
            if answer[0] == "error":
                raise SystemExit(f"client {answer[1]} failed:\n{answer[2]}")
            if answer[0] != kind:
                raise SystemExit(f"client {answer[1]} answered {answer[0]}, not {kind}")
            answers[answer[1]] = answer
        return [answers[i] for i in range(self.count)]

    def close(self) -> None:
        """``("exit",)`` to every client; a client still alive 10 s later is terminated."""
        with contextlib.suppress(Exception):
            self.send("exit")
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.terminate()
