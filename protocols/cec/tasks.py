"""Celery tasks of interconnection (registered through ``protocols.tasks``). Each loads by
id and calls ``protocols.cec.pushes``; beat entries ``cec-pushes-due`` and
``cec-check-orders`` fan out per operator (``evplatform.fan_out``)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from evplatform.celery import app

from . import convert, pushes

logger = logging.getLogger(__name__)


@app.task(name="cec.order_changed")
def order_changed(order_id: int, state: str) -> int:
    """An order of a partner moved, or any order settled: queue the pushes it makes."""
    return len(pushes.order_changed(order_id=order_id, state=state))


@app.task(name="cec.connector_status")
def connector_status(pile_code: str, connector_no: int) -> int:
    """A connector's status changed: queue notification_stationStatus to who sees it."""
    return len(pushes.connector_status(pile_code=pile_code, connector_no=connector_no))


@app.task(name="cec.push_send")
def push_send(push_id: int) -> str:
    return pushes.push_send(push_id=push_id)


@app.task(name="cec.pushes_due")
def pushes_due() -> dict[str, int]:
    """Charge-status pushes at each partner's cadence, then every push whose time came."""
    return {"charge_status": pushes.charge_status_due(), "sent": pushes.pushes_send_due()}


@app.task(name="cec.check_orders")
def check_orders() -> int:
    """Daily reconciliation: yesterday's (China time) orders to partners and regulators."""
    yesterday = (timezone.now().astimezone(convert.CHINA) - timedelta(days=1)).date()
    return len(pushes.check_orders(day=yesterday))


@app.task(name="cec.partner_stations_pull")
def partner_stations_pull() -> dict[str, int | str]:
    """Every infrastructure partner's stations and connector status, pulled again."""
    from .client import CallFailed
    from .models import Partner
    from .remote import stations_pull

    done: dict[str, int | str] = {}
    for partner in Partner.objects.filter(enabled=True, is_infrastructure=True).exclude(base_url=""):
        try:
            done[partner.operator_id] = stations_pull(partner=partner)
        except CallFailed as exc:
            logger.warning("CEC stations pull from %s failed: %s", partner, exc)
            done[partner.operator_id] = str(exc)[:200]
    return done
