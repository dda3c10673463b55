"""How many pile connections a gateway process may hold: one descriptor per pile, under
the process's open-files limit (RLIMIT_NOFILE), less a reserve for the gateway's own.

Why a cap: at the limit every ``socket()`` and ``accept()`` fails with EMFILE, and the
first to fail are the gateway's own connections, not the piles' — a PostgreSQL connection
in a pool thread (psycopg's ``OperationalError`` with an empty message: libpq cannot create
its socket), a new Redis connection of the pool (a ``TimeoutError`` while the pool waits
for one), the metrics scrape (libuv's EMFILE trick accepts and resets it). Logins, bills
and bus routes then fail for the piles already held. So a gateway holds at most
:func:`pile_capacity` piles and refuses any more at once (a closed socket, counted in its
metrics), and what it holds keeps working.
"""

from __future__ import annotations

import resource

# Descriptors the gateway keeps for itself beyond its database and Redis connections:
# the listening sockets, the metrics server and its scrapes, the event loop's own
# (epoll, signal pipe, eventfd), log files, the interpreter's, Django's.
OWN_RESERVE = 128

# Connections the kernel may hand over in one burst of accepts before the gateway can
# refuse them (each holds a descriptor until closed on the next loop turn): the listen
# backlog. Part of the reserve, so a burst of refused piles never reaches the limit.
LISTEN_BACKLOG = 1024

# The listen backlog of a gateway that accepts its connections itself (the YKC gateway:
# every waiting connection per wake-up, a refused one reset at once, those being attached
# counted as held — so no descriptor reserve for it): a storm's connections wait in the
# kernel's queue instead of their SYNs being dropped. The kernel caps it at
# net.core.somaxconn (4096 by default since Linux 5.4).
ACCEPT_BACKLOG = 4096


def open_files_limit() -> int:
    """The process's soft RLIMIT_NOFILE (``2**20`` when unlimited)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 2**20 if soft == resource.RLIM_INFINITY else soft


def pile_capacity(*, own_connections: int, limit: int | None = None,
                  backlog: int = LISTEN_BACKLOG) -> int:
    """Pile connections a gateway holds at most: ``limit`` (default the open-files limit)
    less ``own_connections`` (its database threads' connections and its Redis pool's
    maximum), ``backlog`` (a burst of accepts, see :data:`LISTEN_BACKLOG`) and
    :data:`OWN_RESERVE`; never below 0."""
    limit = open_files_limit() if limit is None else limit
    return max(0, limit - own_connections - backlog - OWN_RESERVE)
