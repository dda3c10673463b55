"""Charging orders' services, one module per part of an order's life (HackSoft style: writes,
`<noun>_<verb>`, keyword-only arguments, one transaction each).

Every write runs in one transaction under a row lock on the order (``common._lock``), and
every transition goes through ``common.order_transition``. Money moves only through
``charging.funds`` (the wallet / pay-per-order adapter), keyed by the order number so that a
retried settlement posts nothing twice.

- ``starts``: the one order-creation path (app, card/VIN at the pile, partners), the remote
  start and its answer or timeout.
- ``progress``: live readings, the driver's running figures, the balance guard.
- ``stops``: stop requests, sending and re-sending the stop, the pile's confirmation.
- ``records``: the pile's transaction record, stored once per trade number.
- ``settle``: pricing an order from its record and snapshot, settlement.
- ``staff``: staff actions (settle an abnormal order by hand, partial refund, approve or
  reject an order under review).
- ``record_checks``: what a record may be billed on, and what holds it for review.
- ``reconcile``: the periodic reconciler that finishes what was lost in between.
- ``reservations``: holding a connector.
- ``queue``: the station queue (offers are reservations), and the scheduling tick.
- ``occupancy``: the occupancy fee after charging, from the pile's unplug report.
- ``priority``: weights for sharing a station's power by priority, the driver's departure.
- ``power``: load management (a station's power limit shared among its piles).

Callers use this package (``from charging import services``; ``services.order_start``)."""

from __future__ import annotations

from .common import (  # noqa: F401
    COMMAND_TTL_S,
    IDLE_STATUSES,
    REQUESTED_STOPS,
    STOP_GRACE_S,
    STOP_RETRY_S,
    UNREACHABLE_S,
    Actor,
    OrderRefused,
    S,
    order_transition,
)
from .occupancy import (  # noqa: F401
    occupancy_pile_offline,
    occupancy_settle,
    occupancy_tick,
    occupancy_unplugged,
)
from .power import (  # noqa: F401
    power_admits,
    station_power_plan,
)
from .priority import (  # noqa: F401
    order_departure_set,
)
from .progress import (  # noqa: F401
    Live,
    estimate_amount,
    order_ask_readings,
    order_progress,
    order_progress_batch,
)
from .queue import (  # noqa: F401
    QueueStatus,
    connectors_free,
    queue_decline,
    queue_expire,
    queue_join,
    queue_leave,
    queue_offer,
    queue_status,
    scheduling_tick,
    station_schedule,
)
from .reconcile import (  # noqa: F401
    orders_reconcile,
)
from .records import (  # noqa: F401
    record_store,
)
from .reservations import (  # noqa: F401
    reservation_cancel,
    reservation_create,
)
from .settle import (  # noqa: F401
    energy_at,
    record_settle,
)
from .staff import (  # noqa: F401
    order_refund_partial,
    order_review_approve,
    order_review_reject,
    order_settle_by_staff,
)
from .starts import (  # noqa: F401
    order_check_start,
    order_create,
    order_fail,
    order_prepay_create,
    order_start,
    order_start_command,
    order_start_result,
    order_start_send,
)
from .stops import (  # noqa: F401
    order_check_stop,
    order_stop,
    order_stop_resend,
    order_stop_result,
    order_stop_send,
    orders_pile_still_charging,
    stop_unwanted,
)
