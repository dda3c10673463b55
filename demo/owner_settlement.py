"""The station owner's side of the demo session, after the driver's journey: the order's
split credited the owner's payable by the rule (shown in the owner center over the public
API, and in the admin); a statement is built, confirmed and paid through the (fake) WeChat
Pay merchant transfer; the order is then partly refunded, so the paid owner's payable goes
negative and nets off the next statement. ``ledger_verify`` is clean after each step
(checked by the caller)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import httpx
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.models import Operator

from .journey import Journey, JourneyError
from .seed import DEMO_ADMIN


def owner_settlement_run(
    *, operator: Operator, order_number: str, api_url: str, pay_url: str,
    say: Callable[[str], None] = print, timeout_s: float = 30.0,
) -> dict:
    """Run the owner's settlement for the journey's order; returns the figures shown."""
    from billing.payments import services as payments
    from charging import services as charging
    from charging.models import ChargingOrder
    from settlement import statements
    from settlement.models import OrderSplit, OwnerContract, Payout, Statement
    from settlement.services import owner_account

    with tenant_context(operator):
        split = OrderSplit.objects.get(order_ref=order_number)
        line = split.lines.get(kind="share")
        owner = line.owner
        payable = owner_account(owner.pk).balance
        say(f"分账 / split of {order_number} (rule {split.rule}): base ¥{split.base}, "
            f"platform ¥{split.commission}, owner {owner.username} ¥{line.amount}, "
            f"operator ¥{split.operator_part}")
        say(f"站长应付 / {owner.username}'s payable ¥{payable}; admin: "
            f"/admin/settlement/ordersplit/?q={order_number}")
        member_name = OwnerContract.objects.get(owner=owner).owner.username

    # The owner center, as the owner logs in to the mini-program (fake WeChat user).
    center = Journey(api_url=api_url, pay_url=pay_url, tenant=operator.slug, driver=member_name,
                     say=say)
    center.login()
    overview = center._call("GET", "/owner/overview")
    say(f"站长中心 / owner center: today {overview['today']['orders']} order(s), "
        f"{overview['today']['energy_kwh']} kWh, earnings ¥{overview['today']['earnings']}, "
        f"payable ¥{overview['payable']}")

    with tenant_context(operator):
        admin = get_user_model().objects.get(username=DEMO_ADMIN[0])
        end = timezone.now()
        statement = statements.statement_build(
            owner_id=owner.pk, period_start=end - timedelta(days=1), period_end=end
        )
        statement = statements.statement_confirm(statement_id=statement.pk, user=admin)
        say(f"结算单 / statement {statement.number}: {statement.orders} order(s), "
            f"share ¥{statement.share}, net ¥{statement.net}, {statement.get_status_display()}")
        payout = statements.payout_open(statement_id=statement.pk, user=admin)
        payout = payments.owner_payout_submit(payout_id=payout.pk)
        say(f"付款 / WeChat transfer {payout.out_bill_no} ¥{payout.amount}: {payout.status}")
    # The owner confirms the transfer in WeChat (the fake), which notifies the platform.
    confirmed = httpx.post(f"{pay_url}/_fake/transfer", json={"out_bill_no": payout.out_bill_no},
                           timeout=15)
    if confirmed.status_code >= 300:
        raise JourneyError(f"fake transfer: {confirmed.status_code} {confirmed.text[:300]}")
    deadline = time.monotonic() + timeout_s
    with tenant_context(operator):
        while Payout.objects.get(pk=payout.pk).status != Payout.Status.SUCCESS:
            if time.monotonic() > deadline:
                payments.owner_payout_sync(payout_id=payout.pk)  # a lost notification: query
                break
            time.sleep(0.3)
        statement.refresh_from_db()
        say(f"已付款 / statement {statement.number} {statement.get_status_display()}; "
            f"payable now ¥{owner_account(owner.pk).balance}")

        # A refund after the payout: the owner's part of it comes back from the next statement.
        order = ChargingOrder.objects.get(number=order_number)
        refund = min(Decimal("1.00"), order.paid_amount)
        charging.order_refund_partial(order_id=order.pk, amount=refund, user=admin,
                                      reason="演示：支付后退款")
        say(f"退款 / refund ¥{refund} of {order_number} after the payout: "
            f"payable ¥{owner_account(owner.pk).balance}")
        nxt = statements.statement_build(
            owner_id=owner.pk, period_start=end, period_end=timezone.now()
        )
        say(f"下期结算单 / next statement {nxt.number}: share ¥{nxt.share}, "
            f"corrections ¥{nxt.adjustments}, net ¥{nxt.net}")
        return {
            "owner": owner.username, "share": line.amount, "payable_before": payable,
            "overview": overview, "statement": statement.number,
            "paid": statement.status == Statement.Status.PAID, "next_net": nxt.net,
            "next_adjustments": nxt.adjustments,
        }
