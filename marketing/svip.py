"""SVIP memberships: bought from the wallet or with WeChat Pay, renewed by buying again (the
new period starts when the current one ends), refunded in full within the plan's refund
window when no benefit was used (to the wallet, or along the WeChat payment). A purchase
grants its monthly coupon packs up front, each valid for its own month.

A WeChat Pay purchase is created ``pending`` (no period, no benefit) and activated exactly
once by :func:`svip_payment_paid`, which billing calls under the payment's row lock when
WeChat's notification or a query says it is paid (registered in ``MarketingConfig.ready``).
Ledger keys: ``svip:<id>`` (wallet payment), ``wx:txn:<transaction_id>`` (WeChat payment,
clearing → revenue), ``svip:<id>:refund`` (revenue → wallet or refunds in transit). Lock
order: the member row, then the purchase."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.models import Member
from billing.payments import services as payments
from billing.payments.models import Payment
from evplatform.money import ZERO
from settlement import selectors as ledger_selectors
from settlement import services as ledger
from settlement.models import Account, Posting

from .common import MarketingError
from .coupons import coupon_grant
from .models import Coupon, SvipPlan, SvipPurchase


@dataclass(frozen=True)
class SvipStatus:
    active: bool
    plan: SvipPlan | None
    ends_at: datetime | None
    service_discount_percent: Decimal


def svip_purchase_at(member, at: datetime) -> SvipPurchase | None:
    """The paid purchase covering ``at``, if any."""
    return (
        SvipPurchase.objects.filter(member=member, status=SvipPurchase.Status.PAID, starts_at__lte=at, ends_at__gt=at)
        .select_related("plan").order_by("starts_at").first()
    )


def svip_status(member, at: datetime | None = None) -> SvipStatus:
    at = at or timezone.now()
    current = svip_purchase_at(member, at)
    if current is None:
        return SvipStatus(False, None, None, ZERO)
    last = (
        SvipPurchase.objects.filter(member=member, status=SvipPurchase.Status.PAID, ends_at__gt=at)
        .order_by("-ends_at").first()
    )
    return SvipStatus(True, current.plan, last.ends_at, current.plan.service_discount_percent)


def svip_members(member_ids: set[int], at: datetime) -> set[int]:
    """The members among ``member_ids`` with a paid SVIP covering ``at`` (the SVIP
    standing of :mod:`accounts.priority`, for sharing a station's power by priority)."""
    return set(SvipPurchase.objects.filter(
        member_id__in=member_ids, status=SvipPurchase.Status.PAID, starts_at__lte=at,
        ends_at__gt=at).values_list("member_id", flat=True))


def svip_priority_members(member_ids: set[int], at: datetime) -> set[int]:
    """The members among ``member_ids`` whose paid SVIP covering ``at`` is of a plan with
    priority reservation (the ``PRIORITY_RESERVATION`` standing of :mod:`accounts.priority`:
    a station's queue serves them first)."""
    return set(SvipPurchase.objects.filter(
        member_id__in=member_ids, status=SvipPurchase.Status.PAID, starts_at__lte=at,
        ends_at__gt=at, plan__priority_reservation=True).values_list("member_id", flat=True))


def svip_priority(member) -> bool:
    """Whether the member's SVIP plan gives priority reservation now (served first in a
    station's queue: :func:`svip_priority_members`)."""
    status = svip_status(member)
    return bool(status.active and status.plan.priority_reservation)


def _memo(template: str, name: str) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _(template) % {"name": name}


def _plan_on_sale(plan_id: int) -> SvipPlan:
    plan = SvipPlan.objects.filter(pk=plan_id, active=True).first()
    if plan is None:
        raise MarketingError("svip_plan_not_found", _("No such SVIP plan."), 404)
    return plan


def _activate(purchase: SvipPurchase, plan: SvipPlan) -> None:
    """Fix the paid purchase's period (now, or when the member's last period ends) and grant
    its coupon packs. The caller holds the member's row lock and has posted the payment."""
    now = timezone.now()
    last = (
        SvipPurchase.objects.filter(member=purchase.member, status=SvipPurchase.Status.PAID, ends_at__gt=now)
        .exclude(pk=purchase.pk).order_by("-ends_at").first()
    )
    starts = last.ends_at if last else now
    purchase.status, purchase.starts_at = SvipPurchase.Status.PAID, starts
    purchase.ends_at = starts + relativedelta(months=plan.months)
    purchase.save(update_fields=["status", "starts_at", "ends_at", "posting_key"])
    if plan.monthly_coupon_id and plan.monthly_coupon_count:
        for month in range(plan.months):
            valid = (starts + relativedelta(months=month), starts + relativedelta(months=month + 1))
            try:
                coupon_grant(
                    template_id=plan.monthly_coupon_id, member=purchase.member, source=Coupon.Source.SVIP,
                    source_ref=f"svip:{purchase.pk}", count=plan.monthly_coupon_count,
                    enforce_limit=False, valid=valid,
                )
            except MarketingError:
                pass  # the pack's template ran out or ended: the membership still counts


def svip_buy(*, member, plan_id: int) -> SvipPurchase:
    """Buy a plan from the wallet (cash, then bonus, by the operator's spend order). The
    period starts now or when the member's last period ends. Raises MarketingError
    svip_plan_not_found, insufficient_balance."""
    with transaction.atomic():
        Member.objects.select_for_update().get(pk=member.pk)  # one purchase at a time per member
        plan = _plan_on_sale(plan_id)
        if ledger_selectors.wallet_balance(member).available < plan.price:
            raise MarketingError("insufficient_balance", _("Your wallet balance is too low; top up first."))
        now = timezone.now()
        purchase = SvipPurchase.objects.create(
            member=member, plan=plan, amount=plan.price, starts_at=now, ends_at=now,
            status=SvipPurchase.Status.PENDING, paid_with=SvipPurchase.PaidWith.WALLET,
        )
        purchase.posting_key = f"svip:{purchase.pk}"
        ledger.order_charge(
            member=member, amount=plan.price, key=purchase.posting_key,
            memo=_memo(gettext_noop("SVIP %(name)s"), plan.name), ref=f"svip:{purchase.pk}",
        )
        _activate(purchase, plan)
    return purchase


@dataclass(frozen=True)
class SvipPayStart:
    purchase: SvipPurchase
    pay_params: dict[str, str]  # for wx.requestPayment


def svip_pay_start(*, member, plan_id: int) -> SvipPayStart:
    """Buy (or renew) a plan with WeChat Pay: a ``pending`` purchase and the signed
    ``wx.requestPayment`` parameters. Nothing is granted until the payment arrives
    (:func:`svip_payment_paid`). Raises MarketingError svip_plan_not_found; BillingError
    pay_not_configured (409), payment_unavailable / payment_refused (502) — the purchase
    is then closed."""
    plan = _plan_on_sale(plan_id)
    now = timezone.now()
    purchase = SvipPurchase.objects.create(  # committed before WeChat is called
        member=member, plan=plan, amount=plan.price, starts_at=now, ends_at=now,
        status=SvipPurchase.Status.PENDING, paid_with=SvipPurchase.PaidWith.WECHAT,
    )
    try:
        started = payments.purchase_create(
            member=member, amount=plan.price, order_ref=f"svip:{purchase.pk}",
            description=_("SVIP %(name)s") % {"name": plan.name},
        )
    except payments.BillingError:
        SvipPurchase.objects.filter(pk=purchase.pk, status=SvipPurchase.Status.PENDING).update(
            status=SvipPurchase.Status.CLOSED)
        raise
    return SvipPayStart(purchase, started.pay_params)


def svip_payment_paid(payment: Payment, key: str) -> None:
    """Billing's purchase handler for ``svip:<id>`` (inside its transaction, the payment
    row locked, once per payment): post the money (WeChat clearing → operator revenue,
    under ``key``) and activate the purchase. A payment that cannot activate it (unknown,
    already refunded, another member or amount) is credited to the payer's wallet cash
    instead, so no money is lost."""
    Member.objects.select_for_update().get(pk=payment.member_id)
    _prefix, _sep, ident = payment.order_ref.partition(":")
    purchase = (
        SvipPurchase.objects.select_for_update().select_related("plan", "member")
        .filter(pk=int(ident) if ident.isdigit() else 0).first()
    )
    if (
        purchase is None or purchase.status not in (SvipPurchase.Status.PENDING, SvipPurchase.Status.CLOSED)
        or purchase.paid_with != SvipPurchase.PaidWith.WECHAT
        or purchase.member_id != payment.member_id or purchase.amount != payment.amount
    ):
        ledger.wallet_top_up(member=payment.member, amount=payment.amount, key=key, ref=payment.out_trade_no)
        return
    ledger.posting_create(
        key=key, kind=Posting.Kind.ORDER_CHARGE,
        lines=[(ledger.system_account(Account.Kind.CLEARING), purchase.amount),
               (ledger.system_account(Account.Kind.REVENUE), -purchase.amount)],
        member=purchase.member, ref=f"svip:{purchase.pk}",
        memo=_memo(gettext_noop("SVIP %(name)s"), purchase.plan.name),
    )
    purchase.posting_key = key
    _activate(purchase, purchase.plan)


def svip_refund(*, purchase_id: int, member=None) -> SvipPurchase:
    """Refund a purchase in full: to the wallet when it was paid from the wallet, along its
    WeChat payment when it was paid with WeChat Pay (the money waits in refunds in transit
    until WeChat confirms; a refused refund lands in the wallet cash). Only within the
    plan's refund window, when no SVIP discount was given and no pack coupon was used. Its
    pack coupons are voided. Raises MarketingError svip_not_found (404),
    svip_not_refundable."""
    with transaction.atomic():
        qs = SvipPurchase.objects.select_for_update().select_related("plan")
        if member is not None:
            qs = qs.filter(member=member)
        purchase = qs.filter(pk=purchase_id).first()
        if purchase is None:
            raise MarketingError("svip_not_found", _("No such SVIP purchase."), 404)
        pack = Coupon.objects.select_for_update().filter(source=Coupon.Source.SVIP, source_ref=f"svip:{purchase.pk}")
        if (
            purchase.status != SvipPurchase.Status.PAID
            or purchase.discount_total > 0
            or pack.exclude(status=Coupon.Status.AVAILABLE).exists()
            or timezone.now() > purchase.created_at + timedelta(days=purchase.plan.refund_days)
        ):
            raise MarketingError("svip_not_refundable", _("This SVIP purchase can no longer be refunded."))
        if purchase.paid_with == SvipPurchase.PaidWith.WECHAT:
            ledger.posting_create(
                key=f"svip:{purchase.pk}:refund", kind=Posting.Kind.REFUND_REQUEST,
                lines=[(ledger.system_account(Account.Kind.REVENUE), purchase.amount),
                       (ledger.system_account(Account.Kind.REFUND_TRANSIT), -purchase.amount)],
                member=purchase.member, ref=f"svip:{purchase.pk}",
            )
            payments.purchase_refund(order_ref=f"svip:{purchase.pk}", amount=purchase.amount,
                                     out_refund_no=f"SV{purchase.pk}")
        else:
            posting = Posting.objects.get(key=purchase.posting_key or f"svip:{purchase.pk}")
            ledger.posting_reverse(posting=posting, key=f"svip:{purchase.pk}:refund")
        pack.update(status=Coupon.Status.VOID)
        purchase.status, purchase.refunded_at = SvipPurchase.Status.REFUNDED, timezone.now()
        purchase.save(update_fields=["status", "refunded_at"])
        # a later renewal moves up into the refunded period
        later = SvipPurchase.objects.filter(
            member=purchase.member, status=SvipPurchase.Status.PAID, starts_at__gte=purchase.ends_at
        )
        shift = purchase.ends_at - max(purchase.starts_at, timezone.now())
        for p in later.order_by("starts_at"):
            p.starts_at -= shift
            p.ends_at -= shift
            p.save(update_fields=["starts_at", "ends_at"])
    return purchase
