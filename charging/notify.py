"""Telling the member their charge is settled (WeChat subscribe message)."""

from __future__ import annotations

import logging

from django.db import connection
from django.utils import timezone

from accounts import wechat
from tenants.models import MiniProgram

from .models import ChargingOrder, ChargingPolicy, QueueEntry

logger = logging.getLogger(__name__)


def order_settled_notify(*, order_id: int) -> str:
    """Send the "charge settled" subscribe message once; raises WeChatError to be retried.

    Skipped (and said so) when the operator configured no template or has no mini-program.
    """
    order = ChargingOrder.objects.select_related("member", "station").get(pk=order_id)
    if order.notified_at or order.member is None:
        return "skipped"
    template = ChargingPolicy.current().notify_template_id
    mini_program = MiniProgram.objects.filter(operator__schema_name=connection.schema_name).first()
    if not template or mini_program is None:
        return "no_template"
    local = timezone.localtime(order.stopped_at or order.settled_at)
    wechat.subscribe_message_send(
        mini_program,
        openid=order.member.openid,
        template_id=template,
        page=f"pages/order/detail?id={order.pk}",
        data={
            "character_string1": {"value": order.number},
            "thing2": {"value": order.station.name[:20]},
            "number3": {"value": f"{order.energy_kwh:.2f}"},
            "amount4": {"value": f"{order.total_amount}"},
            "time5": {"value": f"{local:%Y-%m-%d %H:%M}"},
        },
    )
    ChargingOrder.objects.filter(pk=order.pk, notified_at__isnull=True).update(notified_at=timezone.now())
    return "sent"


def queue_offer_notify(*, entry_id: int) -> str:
    """Tell the driver a connector is held for them (subscribe message: station, gun, until
    when); raises WeChatError to be retried. Skipped when the offer is no longer open, or
    without a template or mini-program."""
    entry = QueueEntry.objects.select_related("member", "station", "reservation__connector").get(
        pk=entry_id)
    if entry.state != QueueEntry.State.OFFERED or entry.reservation is None:
        return "skipped"
    template = ChargingPolicy.current().queue_template_id
    mini_program = MiniProgram.objects.filter(operator__schema_name=connection.schema_name).first()
    if not template or mini_program is None:
        return "no_template"
    until = timezone.localtime(entry.reservation.expires_at)
    wechat.subscribe_message_send(
        mini_program,
        openid=entry.member.openid,
        template_id=template,
        page="pages/queue/index",
        data={
            "thing1": {"value": entry.station.name[:20]},
            "character_string2": {"value": f"{entry.reservation.connector.number}"},
            "time3": {"value": f"{until:%Y-%m-%d %H:%M}"},
        },
    )
    return "sent"
