"""Coupons: granting (claim, staff, reward, SVIP pack, mall, scratch, bought with WeChat
Pay), choosing one for an order, applying the best at settlement and giving it back on a refund.

Stock and per-member limits are checked under the template's row lock, so concurrent
claims never grant more than ``total_quantity``; a coupon changes state only by a
conditional update or under its row lock, so it is used by one order at most.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.payments import services as payments
from evplatform.money import ZERO, yuan
from settlement import services as ledger
from settlement.models import Account, Posting

from . import discounts
from .common import MarketingError
from .models import Coupon, CouponPurchase, CouponTemplate

S = Coupon.Status


def _validity(template: CouponTemplate, now: datetime) -> tuple[datetime, datetime]:
    if template.valid_days:
        return now, now + timedelta(days=template.valid_days)
    start = template.valid_from or now
    end = template.valid_until or now + timedelta(days=3650)
    return start, end


def _grant_locked(
    template: CouponTemplate, member, *, source: str, source_ref: str = "", count: int = 1,
    enforce_limit: bool = True, valid: tuple[datetime, datetime] | None = None,
) -> list[Coupon]:
    """Grant under the template's row lock (the caller holds it)."""
    now = timezone.now()
    if not template.active:
        raise MarketingError("coupon_inactive", _("This coupon is no longer issued."))
    start, end = valid or _validity(template, now)
    if end <= now:
        raise MarketingError("coupon_expired", _("This coupon has expired."))
    if enforce_limit:
        held = Coupon.objects.filter(template=template, member=member).count()
        if held + count > template.per_member_limit:
            raise MarketingError("coupon_limit", _("You already have as many of this coupon as allowed."))
    if template.total_quantity is not None and template.issued + count > template.total_quantity:
        raise MarketingError("coupon_sold_out", _("This coupon has all been given out."))
    CouponTemplate.objects.filter(pk=template.pk).update(issued=F("issued") + count)
    template.issued += count
    return Coupon.objects.bulk_create(
        Coupon(template=template, member=member, source=source, source_ref=source_ref[:64],
               valid_from=start, valid_until=end)
        for _i in range(count)
    )


def _locked_template(template_id: int) -> CouponTemplate:
    try:
        return CouponTemplate.objects.select_for_update().get(pk=template_id)
    except CouponTemplate.DoesNotExist:
        raise MarketingError("coupon_not_found", _("No such coupon."), 404) from None


@transaction.atomic
def coupon_claim(*, member, template_id: int) -> Coupon:
    """The member claims a coupon in the app. Raises MarketingError coupon_not_found,
    coupon_for_sale (a priced template), coupon_inactive, coupon_expired, coupon_limit,
    coupon_sold_out."""
    template = _locked_template(template_id)
    if not template.claimable:
        raise MarketingError("coupon_not_found", _("No such coupon."), 404)
    if template.price:  # sold, never given away (coupons/buy)
        raise MarketingError("coupon_for_sale", _("This coupon is sold: buy it."), 409)
    return _grant_locked(template, member, source=Coupon.Source.CLAIM)[0]


@transaction.atomic
def coupon_grant(
    *, template_id: int, member, source: str, source_ref: str = "", count: int = 1,
    enforce_limit: bool = True, valid: tuple[datetime, datetime] | None = None,
) -> list[Coupon]:
    """Give ``count`` coupons of a template to a member (staff, reward, SVIP pack, mall,
    scratch card). Respects the template's stock; the per-member limit unless told not to."""
    template = _locked_template(template_id)
    return _grant_locked(template, member, source=source, source_ref=source_ref, count=count,
                         enforce_limit=enforce_limit, valid=valid)


def coupon_grant_many(*, template_id: int, members: Iterable, source: str = Coupon.Source.STAFF) -> tuple[int, int]:
    """Staff grant to a segment: one coupon each, skipping members over their limit.
    Stops when the stock runs out. Returns (granted, skipped)."""
    granted = skipped = 0
    for member in members:
        try:
            coupon_grant(template_id=template_id, member=member, source=source)
            granted += 1
        except MarketingError as exc:
            if exc.code == "coupon_sold_out":
                skipped += 1
                break
            skipped += 1
    return granted, skipped


def claimable_templates(member):
    """Templates a member may claim now (active, in date, in stock, under the limit)."""
    now = timezone.now()
    qs = CouponTemplate.objects.filter(active=True, claimable=True).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=now)
    ).filter(Q(total_quantity__isnull=True) | Q(issued__lt=F("total_quantity")))
    return [t for t in qs.prefetch_related("stations")
            if Coupon.objects.filter(template=t, member=member).count() < t.per_member_limit]


def member_coupons(member, *, status: str | None = None):
    qs = Coupon.objects.filter(member=member).select_related("template")
    now = timezone.now()
    if status == "usable":
        return qs.filter(status__in=(S.AVAILABLE, S.LOCKED), valid_until__gt=now)
    if status == "expired":
        return qs.filter(status=S.AVAILABLE, valid_until__lte=now)
    if status:
        return qs.filter(status=status)
    return qs


def terms_of(coupon: Coupon) -> discounts.CouponTerms:
    t = coupon.template
    remaining = None if t.budget is None else yuan(t.budget - t.spent)
    return discounts.CouponTerms(
        coupon_id=coupon.pk, kind=t.kind, amount=t.amount, threshold=t.threshold, percent=t.percent,
        base=t.base, cap=t.cap, stacks_with_svip=t.stacks_with_svip,
        station_ids=frozenset(s.pk for s in t.stations.all()), current=t.current,
        hour_from=t.hour_from, hour_to=t.hour_to, remaining_budget=remaining,
    )


def usable_coupons(member, at: datetime):
    return (
        Coupon.objects.filter(member=member, status=S.AVAILABLE, valid_from__lte=at, valid_until__gt=at)
        .select_related("template").prefetch_related("template__stations").order_by("valid_until", "pk")
    )


def applicable_coupons(member, facts: discounts.OrderFacts) -> list[Coupon]:
    """The member's coupons whose scope covers an order like ``facts`` (amount unknown yet:
    threshold coupons are listed; the threshold is checked at settlement)."""
    probe = discounts.OrderFacts(gross=Decimal("1e9"), service=Decimal("1e9"), station_id=facts.station_id,
                                 current=facts.current, hour=facts.hour)
    return [c for c in usable_coupons(member, timezone.now()) if discounts.applies(terms_of(c), probe)]


def coupon_choose(*, member, coupon_id: int, order_ref: str) -> Coupon:
    """Set a coupon aside for an order in progress (the driver's pick). Any coupon chosen
    before for the order is put back. One conditional update: of two orders racing for one
    coupon, one gets it; the other is refused with ``coupon_unavailable``."""
    now = timezone.now()
    with transaction.atomic():
        Coupon.objects.filter(member=member, status=S.LOCKED, order_ref=order_ref).exclude(pk=coupon_id).update(
            status=S.AVAILABLE, order_ref=""
        )
        taken = Coupon.objects.filter(
            Q(status=S.AVAILABLE) | Q(status=S.LOCKED, order_ref=order_ref),
            pk=coupon_id, member=member, valid_until__gt=now,
        ).update(status=S.LOCKED, order_ref=order_ref)
        if not taken:
            raise MarketingError("coupon_unavailable", _("This coupon cannot be used now."))
    return Coupon.objects.get(pk=coupon_id)


def coupon_unchoose(*, order_ref: str) -> int:
    """Put back a coupon set aside for an order that ended without using it."""
    return Coupon.objects.filter(status=S.LOCKED, order_ref=order_ref).update(status=S.AVAILABLE, order_ref="")


def coupon_redeem_locked(coupon: Coupon, *, order_ref: str, amount: Decimal) -> Decimal:
    """Mark the (row-locked) coupon used by the order for ``amount`` yuan, within its
    template's budget (the template row is locked here). Returns the amount taken off."""
    template = _locked_template(coupon.template_id)
    if template.budget is not None:
        amount = min(amount, yuan(template.budget - template.spent))
    amount = yuan(max(amount, ZERO))
    if amount <= 0:
        return ZERO
    CouponTemplate.objects.filter(pk=template.pk).update(spent=F("spent") + amount)
    coupon.status, coupon.order_ref, coupon.used_amount, coupon.used_at = S.USED, order_ref, amount, timezone.now()
    coupon.save(update_fields=["status", "order_ref", "used_amount", "used_at"])
    return amount


def coupon_return(*, order_ref: str) -> Decimal:
    """A refunded order gives its coupon back if it is still valid. Returns what the coupon
    had taken off (yuan), zero when nothing was given back."""
    coupon = Coupon.objects.select_for_update().filter(order_ref=order_ref, status=S.USED).first()
    if coupon is None or coupon.valid_until <= timezone.now():
        return ZERO
    amount = coupon.used_amount
    CouponTemplate.objects.filter(pk=coupon.template_id).update(spent=F("spent") - coupon.used_amount)
    coupon.status, coupon.order_ref, coupon.used_amount, coupon.used_at = S.AVAILABLE, "", ZERO, None
    coupon.save(update_fields=["status", "order_ref", "used_amount", "used_at"])
    return amount


# --------------------------------------------------------------------------- bought coupons
@dataclass(frozen=True)
class CouponPayStart:
    purchase: CouponPurchase
    pay_params: dict[str, str]  # for wx.requestPayment


def coupon_pay_start(*, member, template_id: int) -> CouponPayStart:
    """Buy one coupon of a template on sale (``price`` set) with WeChat Pay: a pending
    purchase and the ``wx.requestPayment`` parameters; the coupon is granted when the
    payment arrives (:func:`coupon_payment_paid`). Raises MarketingError coupon_not_found
    (404; not on sale), coupon_inactive, coupon_expired, coupon_limit, coupon_sold_out;
    BillingError pay_not_configured (409), payment_unavailable / payment_refused (502)."""
    template = CouponTemplate.objects.filter(pk=template_id, price__isnull=False).first()
    if template is None:
        raise MarketingError("coupon_not_found", _("No such coupon."), 404)
    _sellable(template, member, now=timezone.now())
    purchase = CouponPurchase.objects.create(member=member, template=template, amount=template.price)
    try:
        started = payments.purchase_create(member=member, amount=template.price, order_ref=f"coupon:{purchase.pk}",
                                           description=template.name)
    except payments.BillingError:
        CouponPurchase.objects.filter(pk=purchase.pk).update(status=CouponPurchase.Status.CLOSED)
        raise
    return CouponPayStart(purchase, started.pay_params)


def _sellable(template: CouponTemplate, member, *, now: datetime) -> None:
    """The checks of :func:`_grant_locked`, made before the payment (made again after)."""
    if not template.active:
        raise MarketingError("coupon_inactive", _("This coupon is no longer issued."))
    if _validity(template, now)[1] <= now:
        raise MarketingError("coupon_expired", _("This coupon has expired."))
    if Coupon.objects.filter(template=template, member=member).count() >= template.per_member_limit:
        raise MarketingError("coupon_limit", _("You already have as many of this coupon as allowed."))
    if template.total_quantity is not None and template.issued >= template.total_quantity:
        raise MarketingError("coupon_sold_out", _("This coupon has all been given out."))


def coupon_payment_paid(payment, key: str) -> None:
    """Billing's purchase handler for ``coupon:<id>`` (in its transaction, the payment
    locked, once per payment): grant the coupon and post the sale (WeChat clearing →
    operator revenue, under ``key``). When it can no longer be granted (sold out, over the
    limit, ended) or the purchase is unknown, the money is credited to the payer's wallet
    cash instead."""
    _prefix, _sep, ident = payment.order_ref.partition(":")
    purchase = CouponPurchase.objects.select_for_update().filter(pk=int(ident) if ident.isdigit() else 0).first()
    granted = None
    if (purchase is not None and purchase.status in (CouponPurchase.Status.PENDING, CouponPurchase.Status.CLOSED)
            and purchase.member_id == payment.member_id and purchase.amount == payment.amount):
        try:
            with transaction.atomic():
                template = _locked_template(purchase.template_id)
                granted = _grant_locked(template, purchase.member, source=Coupon.Source.BOUGHT,
                                        source_ref=f"coupon:{purchase.pk}")[0]
        except MarketingError:
            granted = None
    if granted is None:
        ledger.wallet_top_up(member=payment.member, amount=payment.amount, key=key, ref=payment.out_trade_no)
        if purchase is not None and purchase.status != CouponPurchase.Status.PAID:
            purchase.status = CouponPurchase.Status.CREDITED
            purchase.save(update_fields=["status"])
        return
    ledger.posting_create(
        key=key, kind=Posting.Kind.ORDER_CHARGE,
        lines=[(ledger.system_account(Account.Kind.CLEARING), purchase.amount),
               (ledger.system_account(Account.Kind.REVENUE), -purchase.amount)],
        member=purchase.member, ref=f"coupon:{purchase.pk}", memo=f"coupon {purchase.template_id}",
    )
    purchase.status, purchase.coupon, purchase.paid_at = CouponPurchase.Status.PAID, granted, timezone.now()
    purchase.save(update_fields=["status", "coupon", "paid_at"])
