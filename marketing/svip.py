"""SVIP memberships: bought from the wallet, renewed by buying again (the new period starts
when the current one ends), refunded in full within the plan's refund window when no
benefit was used. A purchase grants its monthly coupon packs up front, each valid for its
own month."""

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
from evplatform.money import ZERO
from settlement import selectors as ledger_selectors
from settlement import services as ledger
from settlement.models import Posting

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


def svip_priority(member) -> bool:
    """Whether the member's SVIP plan gives priority reservation now."""
    status = svip_status(member)
    return bool(status.active and status.plan.priority_reservation)


def _memo(template: str, name: str) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _(template) % {"name": name}


def svip_buy(*, member, plan_id: int) -> SvipPurchase:
    """Buy a plan from the wallet (cash, then bonus, by the operator's spend order). The
    period starts now or when the member's last period ends. Raises MarketingError
    svip_plan_not_found, insufficient_balance."""
    with transaction.atomic():
        Member.objects.select_for_update().get(pk=member.pk)  # one purchase at a time per member
        plan = SvipPlan.objects.filter(pk=plan_id, active=True).first()
        if plan is None:
            raise MarketingError("svip_plan_not_found", _("No such SVIP plan."), 404)
        if ledger_selectors.wallet_balance(member).available < plan.price:
            raise MarketingError("insufficient_balance", _("Your wallet balance is too low; top up first."))
        now = timezone.now()
        last = (
            SvipPurchase.objects.filter(member=member, status=SvipPurchase.Status.PAID, ends_at__gt=now)
            .order_by("-ends_at").first()
        )
        starts = last.ends_at if last else now
        purchase = SvipPurchase.objects.create(
            member=member, plan=plan, amount=plan.price, starts_at=starts,
            ends_at=starts + relativedelta(months=plan.months),
        )
        ledger.order_charge(
            member=member, amount=plan.price, key=f"svip:{purchase.pk}",
            memo=_memo(gettext_noop("SVIP %(name)s"), plan.name), ref=f"svip:{purchase.pk}",
        )
        if plan.monthly_coupon_id and plan.monthly_coupon_count:
            for month in range(plan.months):
                valid = (starts + relativedelta(months=month), starts + relativedelta(months=month + 1))
                coupon_grant(
                    template_id=plan.monthly_coupon_id, member=member, source=Coupon.Source.SVIP,
                    source_ref=f"svip:{purchase.pk}", count=plan.monthly_coupon_count,
                    enforce_limit=False, valid=valid,
                )
    return purchase


def svip_refund(*, purchase_id: int, member=None) -> SvipPurchase:
    """Refund a purchase in full to the wallet: only within the plan's refund window, when
    no SVIP discount was given and no pack coupon was used. Its pack coupons are voided.
    Raises MarketingError svip_not_refundable."""
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
        posting = Posting.objects.get(key=f"svip:{purchase.pk}")
        ledger.posting_reverse(posting=posting, key=f"svip:{purchase.pk}:refund")
        pack.update(status=Coupon.Status.VOID)
        purchase.status = SvipPurchase.Status.REFUNDED
        purchase.save(update_fields=["status"])
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
