"""Hooks the other domains call at an order's settlement and refund; marketing fills them in.

All run inside the caller's transaction (the order's row lock held), so what they write
commits with the settlement or not at all, once.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F
from django.utils import timezone

from evplatform.money import ZERO, yuan
from settlement import services as ledger
from settlement.models import Account, Posting

from . import discounts
from .common import MarketingError, local
from .coupons import coupon_grant, coupon_redeem_locked, coupon_return, coupon_unchoose, terms_of
from .models import Coupon, CouponTemplate, SvipDiscount, SvipPurchase
from .points import points_earn_for_order, points_reverse_for_order
from .rewards import referral_reward
from .scratch import scratch_cards_grant
from .svip import svip_purchase_at


def _facts(order, gross: Decimal) -> discounts.OrderFacts:
    current_type = getattr(getattr(order, "pile", None), "current_type", 1)
    return discounts.OrderFacts(
        gross=gross, service=yuan(order.service_amount or ZERO), station_id=order.station_id,
        current="ac" if current_type == 2 else "dc", hour=local(order.started_at or order.created_at).hour,
    )


def order_discount(*, order, gross: Decimal) -> Decimal:
    """The discount (yuan, 2 dp, 0 ≤ d ≤ gross) on a charging order of ``gross`` yuan: the
    member's SVIP service-fee discount and the best applicable coupon (or the one chosen
    for the order), planned by :func:`marketing.discounts.plan`.

    Side effects, in the caller's transaction: the coupon is marked used (its template's
    budget spent), the SVIP purchase's discount total grows, the lines are written into
    ``order.bill["discounts"]`` (the caller saves ``bill``), and one ledger posting
    ``order:<no>:discount`` moves the discount from promotion expense to operator revenue
    (revenue is then gross = paid + discount; the expense is the discount, counted once).
    """
    if order.member_id is None or gross <= 0:
        coupon_unchoose(order_ref=order.number)
        return ZERO
    at = timezone.now()  # coupons and SVIP valid at settlement apply
    member = order.member
    # The member's usable coupons, row-locked (a racing settlement of the same member waits).
    coupons = list(
        Coupon.objects.select_for_update().filter(member=member, valid_from__lte=at, valid_until__gt=at)
        .filter(status__in=(Coupon.Status.AVAILABLE, Coupon.Status.LOCKED)).order_by("valid_until", "pk")
    )
    coupons = [c for c in coupons if c.status == Coupon.Status.AVAILABLE or c.order_ref == order.number]
    chosen = next((c.pk for c in coupons if c.status == Coupon.Status.LOCKED), None)
    by_id = {c.pk: c for c in coupons}
    templates = {t.pk: t for t in CouponTemplate.objects.filter(pk__in={c.template_id for c in coupons}).prefetch_related("stations")}
    for c in coupons:
        c.template = templates[c.template_id]
    purchase = svip_purchase_at(member, at)
    lines = discounts.plan(
        _facts(order, gross), svip_percent=purchase.plan.service_discount_percent if purchase else None,
        coupons=[terms_of(c) for c in coupons], chosen_id=chosen,
    )
    total, written = ZERO, []
    for line in lines:
        amount = line.amount
        if line.kind == "coupon":
            amount = coupon_redeem_locked(by_id[line.coupon_id], order_ref=order.number, amount=amount)
            name = by_id[line.coupon_id].template.name
        else:
            SvipPurchase.objects.filter(pk=purchase.pk).update(discount_total=F("discount_total") + amount)
            if amount > 0:
                SvipDiscount.objects.create(purchase=purchase, order_ref=order.number, amount=amount)
            name = purchase.plan.name
        if amount > 0:
            total += amount
            written.append({"kind": line.kind, "name": name, "coupon_id": line.coupon_id, "amount": str(amount)})
    coupon_unchoose(order_ref=order.number)  # a chosen coupon that did not apply goes back
    total = min(total, yuan(gross))
    if order.bill is not None:
        order.bill = {**order.bill, "discounts": written}
    if total > 0:
        ledger.posting_create(
            key=f"order:{order.number}:discount", kind=Posting.Kind.DISCOUNT,
            lines=[(ledger.system_account(Account.Kind.PROMOTION), total),
                   (ledger.system_account(Account.Kind.REVENUE), -total)],
            member=member, ref=order.number, memo=f"discount on order {order.number}",
        )
    return total


def order_settled(*, order) -> None:
    """After a member's order is settled (paid ``order.paid_amount``): points earned, the
    first-charge reward coupons and the referral rewards of an invited member, scratch
    cards of running campaigns."""
    if order.member_id is None:
        return
    points_earn_for_order(member=order.member, order_ref=order.number, paid=order.paid_amount,
                          energy_kwh=order.energy_kwh, at=order.started_at or order.created_at)
    first = not type(order).objects.filter(member_id=order.member_id, settled_at__isnull=False).exclude(pk=order.pk).exists()
    if first:
        for template in CouponTemplate.objects.filter(active=True, first_charge_reward=True):
            try:
                coupon_grant(template_id=template.pk, member=order.member, source=Coupon.Source.REWARD,
                             source_ref=f"first:{order.number}")
            except MarketingError:
                pass  # sold out, over the limit or expired: no reward
        referral_reward(member=order.member, order_ref=order.number, paid=order.paid_amount)
    if order.paid_amount > 0:
        scratch_cards_grant(member=order.member, source_ref=order.number, amount=order.paid_amount)


def order_refunded(*, order) -> None:
    """After a refund of a settled order (``order.refunded_amount`` is the new total): the
    same fraction of its points is taken back; refunded in full, its coupon comes back if
    still valid, and the coupon's part of the discount posting is reversed."""
    if order.member_id is None:
        return
    points_reverse_for_order(member=order.member, order_ref=order.number, paid=order.paid_amount,
                             refunded=order.refunded_amount)
    if order.refunded_amount < order.paid_amount:
        return
    returned = coupon_return(order_ref=order.number)
    if returned > 0:
        posting = Posting.objects.get(key=f"order:{order.number}:discount")
        ledger.posting_reverse(posting=posting, key=f"order:{order.number}:discount:coupon-back", amount=returned)


def order_released(*, order) -> None:
    """An order ended without a bill (never started): a coupon chosen for it goes back."""
    coupon_unchoose(order_ref=order.number)


def coupon_check_usable(*, member, coupon_id: int) -> None:
    """Before a start with a chosen coupon: raise MarketingError coupon_unavailable unless the
    coupon is the member's, available and in date."""
    now = timezone.now()
    if not Coupon.objects.filter(pk=coupon_id, member=member, status=Coupon.Status.AVAILABLE,
                                 valid_from__lte=now, valid_until__gt=now).exists():
        from django.utils.translation import gettext as _

        raise MarketingError("coupon_unavailable", _("This coupon cannot be used now."))


def coupon_choose_for_order(*, member, coupon_id: int, order_ref: str) -> bool:
    """Set the coupon aside for the order just started; False when another order took it."""
    from .coupons import coupon_choose

    try:
        coupon_choose(member=member, coupon_id=coupon_id, order_ref=order_ref)
    except MarketingError:
        return False
    return True
