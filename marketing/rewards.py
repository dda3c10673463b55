"""Rewards: coupons after a top-up tier, and invite-a-friend (referral) rewards.

- **Top-up tiers** (:class:`TopUpReward`): after a WeChat top-up is credited, the highest
  active tier the paid amount reaches grants its coupons, once per payment (billing calls
  :func:`top_up_rewarded` under the payment's row lock, registered in
  ``MarketingConfig.ready``); a scratch card of a running campaign too.
- **Referrals**: a member's invite code (:func:`referral_code_for`); a new member binds one
  code (:func:`referral_bind`) within ``bind_within_days`` of joining and before any
  charge; when the invitee's first charge is settled paying at least ``min_first_order``
  yuan, the invitee and the inviter get the program's coupons (and the inviter points),
  once (the referral row is locked and leaves ``pending``). Against abuse: no self-invite,
  one inviter per member, the same phone on both sides is refused, at most
  ``max_rewards_per_month`` rewarded invitations per inviter and calendar month (counted
  under the inviter's row lock).

Coupon grants respect each template's stock and budget (a sold-out reward is no reward) but
not the per-member claim limit; every grant carries its source (``topup:<out_trade_no>``,
``ref:<referral id>``).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member

from .common import MarketingError, local
from .coupons import coupon_grant
from .models import Coupon, PointsEntry, Referral, ReferralCode, ReferralProgram, TopUpReward
from .points import points_post
from .scratch import scratch_cards_grant

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed by hand
INVITE_PATH = "pages/index/index?invite="


def _grant(template_id: int | None, member, *, source_ref: str, count: int = 1) -> int:
    if template_id is None:
        return 0
    try:
        return len(coupon_grant(template_id=template_id, member=member, source=Coupon.Source.REWARD,
                                source_ref=source_ref, count=count, enforce_limit=False))
    except MarketingError:
        return 0  # sold out, inactive or expired: no reward


def top_up_reward_for(amount: Decimal) -> TopUpReward | None:
    """The highest active tier a top-up of ``amount`` yuan reaches."""
    return (TopUpReward.objects.filter(active=True, min_amount__lte=amount).select_related("coupon")
            .order_by("-min_amount", "-pk").first())


def top_up_rewarded(payment) -> int:
    """Billing's top-up listener (in its transaction, once per paid top-up): the tier's
    coupons and a scratch card. Returns the coupons granted."""
    scratch_cards_grant(member=payment.member, source_ref=f"topup:{payment.out_trade_no}", amount=payment.amount)
    tier = top_up_reward_for(payment.amount)
    if tier is None:
        return 0
    return _grant(tier.coupon_id, payment.member, source_ref=f"topup:{payment.out_trade_no}", count=tier.count)


# --------------------------------------------------------------------------- referrals
def referral_program() -> ReferralProgram:
    return ReferralProgram.objects.first() or ReferralProgram()


def referral_code_for(member) -> ReferralCode:
    """The member's invite code, made on first ask (8 characters of CODE_ALPHABET)."""
    if existing := ReferralCode.objects.filter(member=member).first():
        return existing
    for _attempt in range(5):
        code = "".join(secrets.choice(CODE_ALPHABET) for _i in range(8))
        try:
            with transaction.atomic():
                return ReferralCode.objects.create(member=member, code=code)
        except IntegrityError:  # the member asked twice at once, or (rarely) the code is taken
            if existing := ReferralCode.objects.filter(member=member).first():
                return existing
    raise MarketingError("referral_unavailable", _("No invite code could be made; try again."), 503)


def invite_path(code: str) -> str:
    """The mini-program page an invite link opens (shared as a card or a QR code)."""
    return f"{INVITE_PATH}{code}"


@transaction.atomic
def referral_bind(*, member, code: str) -> Referral:
    """The new member accepts an invite code. Raises MarketingError referral_inactive,
    referral_code_invalid (404), referral_self, referral_exists (409), referral_too_late
    (joined more than ``bind_within_days`` ago, or already charged), referral_same_phone."""
    program = referral_program()
    if not program.active:
        raise MarketingError("referral_inactive", _("Invitations are not running now."))
    Member.objects.select_for_update().get(pk=member.pk)
    owner = ReferralCode.objects.select_related("member").filter(code=code.strip().upper()).first()
    if owner is None:
        raise MarketingError("referral_code_invalid", _("No such invite code."), 404)
    inviter = owner.member
    if inviter.pk == member.pk:
        raise MarketingError("referral_self", _("You cannot invite yourself."))
    if Referral.objects.filter(invitee=member).exists():
        raise MarketingError("referral_exists", _("You have already accepted an invitation."), 409)
    joined = Member.objects.only("created_at").get(pk=member.pk).created_at
    if (timezone.now() - joined > timedelta(days=program.bind_within_days)
            or member.orders.filter(settled_at__isnull=False).exists()):
        raise MarketingError("referral_too_late", _("Invitations are for new members before their first charge."))
    if member.phone and inviter.phone and member.phone == inviter.phone:
        raise MarketingError("referral_same_phone", _("This invitation cannot be accepted."))
    return Referral.objects.create(inviter=inviter, invitee=member)


def referral_reward(*, member, order_ref: str, paid: Decimal) -> Referral | None:
    """After the member's first settled charge (``paid`` yuan, inside the settlement's
    transaction): reward both sides of the member's pending referral, or mark it refused
    with the reason. Returns the referral, or None when the member was not invited."""
    referral = Referral.objects.select_for_update().filter(invitee=member, status=Referral.Status.PENDING).first()
    if referral is None:
        return None
    program = referral_program()
    Member.objects.select_for_update().get(pk=referral.inviter_id)  # the monthly count below is exact
    month_start = local().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    reason = ""
    if not program.active:
        reason = "program inactive"
    elif paid < program.min_first_order:
        reason = f"first charge {paid} < {program.min_first_order}"
    elif Referral.objects.filter(inviter_id=referral.inviter_id, status=Referral.Status.REWARDED,
                                 rewarded_at__gte=month_start).count() >= program.max_rewards_per_month:
        reason = "inviter's monthly limit reached"
    referral.order_ref = order_ref[:32]
    if reason:
        referral.status, referral.reason = Referral.Status.REFUSED, reason
        referral.save(update_fields=["status", "reason", "order_ref"])
        return referral
    ref = f"ref:{referral.pk}"
    _grant(program.invitee_coupon_id, member, source_ref=ref)
    _grant(program.inviter_coupon_id, referral.inviter, source_ref=ref)
    if program.inviter_points:
        points_post(member=referral.inviter, points=program.inviter_points, kind=PointsEntry.Kind.REFERRAL,
                    key=f"referral:{referral.pk}", ref=order_ref)
    referral.status, referral.rewarded_at = Referral.Status.REWARDED, timezone.now()
    referral.save(update_fields=["status", "rewarded_at", "order_ref"])
    return referral
