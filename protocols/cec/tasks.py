"""Celery tasks of interconnection (registered through ``protocols.tasks``). Each loads by
id and calls ``protocols.cec.pushes``; beat entries ``cec-pushes-due`` and
``cec-check-orders`` fan out per operator (``evplatform.fan_out``)."""

from __future__ import annotations

import logging

from evplatform.celery import app

from . import pushes

logger = logging.getLogger(__name__)


@app.task(name="cec.order_changed")
def order_changed(order_id: int, state: str) -> int:
    """An order of a partner moved, or any order settled: queue the pushes it makes."""
    return len(pushes.order_changed(order_id=order_id, state=state))


@app.task(name="cec.connector_status")
def connector_status(pile_code: str, connector_no: int) -> int:
    """A connector's status changed: queue notification_stationStatus to who sees it (the
    one-connector form, kept for the messages queued before ``cec.connector_statuses``)."""
    return len(pushes.connector_status(pile_code=pile_code, connector_no=connector_no))


@app.task(name="cec.connector_statuses")
def connector_statuses(connectors: list[list]) -> int:
    """Connectors' statuses changed, ``[[pile_code, connector_no], ...]`` in the order they
    changed (``evplatform.queue.tasks_batched``: a gateway's batch of jobs, one task):
    queue notification_stationStatus for each to who sees it. Returns the pushes queued."""
    return len(pushes.connector_statuses(
        connectors=[(pile_code, connector_no) for pile_code, connector_no in connectors]))


@app.task(name="cec.push_send")
def push_send(push_id: int) -> str:
    return pushes.push_send(push_id=push_id)


@app.task(name="cec.pushes_due")
def pushes_due() -> dict[str, int]:
    """Charge-status pushes at each partner's cadence, every push whose time came, and our
    members' orders on partners' piles that need a nudge (a stop to send again, a status
    to ask for)."""
    from .remote import roaming_follow_up

    return {"charge_status": pushes.charge_status_due(), "sent": pushes.pushes_send_due(),
            "roaming": roaming_follow_up()}


@app.task(name="cec.check_orders")
def check_orders() -> int:
    """Daily reconciliation (``check_charge_orders``): yesterday's (China time) orders to
    partners and regulators, sent inside the window the standard's profiles expect
    (``CEC_CHECK_ORDERS_HOURS``, default 00:00–03:00 China time). Beat runs this every
    ``CEC_CHECK_ORDERS_SECONDS``; outside the window it does nothing, inside it the day's
    message is queued once (keyed by the day), so a beat restart or a missed run within
    the window still sends it, and a second run sends nothing new.
    Regulators also get every station changed since it was last pushed
    (``notification_stationInfo``), once a run: the scheduled safety net of the push made
    on each change."""
    return len(pushes.check_orders_if_due()) + len(pushes.stations_to_regulators())


@app.task(name="cec.station_status")
def station_status(station_id: int) -> int:
    """Staff changed a station's availability: notification_stationStatus where it shows,
    and the station's new StationInfo to the regulators."""
    return (len(pushes.station_status(station_id=station_id))
            + len(pushes.stations_to_regulators(station_ids=(station_id,))))


@app.task(name="cec.roaming_start")
def roaming_start(order_id: int) -> str:
    """Our member's order on a partner's pile: ask the partner to start it."""
    from .remote import order_start

    return order_start(order_id=order_id)


@app.task(name="cec.roaming_stop")
def roaming_stop(order_id: int) -> str:
    """Our member's order on a partner's pile: ask the partner to stop it."""
    from .remote import order_stop

    return order_stop(order_id=order_id)


@app.task(name="cec.partner_stations_pull")
def partner_stations_pull() -> dict[str, int | str]:
    """Every infrastructure partner's stations and connector status, pulled again (and
    those of partners that no longer are one withdrawn from our search)."""
    from .client import CallFailed
    from .models import Partner
    from .remote import stations_pull, stations_withdraw

    done: dict[str, int | str] = {}
    # A partner disabled or no longer an infrastructure partner: out of our search.
    for partner in Partner.objects.exclude(enabled=True, is_infrastructure=True):
        stations_withdraw(partner=partner)
    for partner in Partner.objects.filter(enabled=True, is_infrastructure=True).exclude(base_url=""):
        try:
            done[partner.operator_id] = stations_pull(partner=partner)
        except CallFailed as exc:
            logger.warning("CEC stations pull from %s failed: %s", partner, exc)
            done[partner.operator_id] = str(exc)[:200]
    return done


class StationsPullPending(Exception):
    """A partner's stations could not be pulled yet (its platform not reachable)."""


@app.task(name="cec.partner_stations_first_pull", autoretry_for=(StationsPullPending,),
          retry_backoff=5, retry_backoff_max=60, retry_kwargs={"max_retries": 12})
def partner_stations_first_pull() -> dict[str, int | str]:
    """The first pull after start-up (queued by ``manage.py seed_demo``, so ``make run``'s
    demo shows the partner's stations within seconds rather than after beat's hourly
    ``cec-partner-stations``): :func:`partner_stations_pull`, retried with backoff (5 s
    doubling, at most 60 s apart, 12 times) while any partner's call failed, e.g. while its
    platform is still starting. Raises :class:`StationsPullPending` when called directly
    and a pull failed."""
    done = partner_stations_pull()
    failed = {op: why for op, why in done.items() if isinstance(why, str)}
    if failed:
        raise StationsPullPending(failed)
    return done
