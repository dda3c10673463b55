"""Scratch cards (刮刮卡): a card per qualifying charge; the draw is server-side with the
operating system's cryptographic RNG (``secrets``), recorded on the card, and a card is
drawn once (scratching again shows the same result). The campaign row is locked for the
draw, so the budget and each prize's stock hold under concurrent draws."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from .common import MarketingError, gift_to_bonus
from .coupons import coupon_grant
from .models import Coupon, PointsEntry, ScratchCampaign, ScratchCard, ScratchPrize
from .points import points_post

ODDS = 10000


def scratch_cards_grant(*, member, source_ref: str, amount: Decimal) -> list[ScratchCard]:
    """After a charge paying ``amount`` yuan: a card in each running campaign the member
    has not reached the limit of (one per campaign and source)."""
    now = timezone.now()
    made = []
    for campaign in ScratchCampaign.objects.filter(active=True, starts_at__lte=now, ends_at__gt=now,
                                                   min_order_amount__lte=amount):
        if ScratchCard.objects.filter(campaign=campaign, member=member).count() >= campaign.per_member_limit:
            continue
        card, created = ScratchCard.objects.get_or_create(campaign=campaign, source_ref=source_ref[:64],
                                                          defaults={"member": member})
        if created:
            made.append(card)
    return made


def _pick(prizes: list[ScratchPrize], roll: int) -> ScratchPrize | None:
    """The prize whose slice of [0, 10000) holds ``roll`` (by weight, in id order)."""
    edge = 0
    for prize in prizes:
        edge += prize.weight
        if roll < edge:
            return prize
    return None


def scratch(*, member, card_id: int) -> ScratchCard:
    """Scratch a card: draw, record, deliver. A prize out of stock or over the remaining
    budget turns into nothing. Raises MarketingError scratch_not_found, scratch_ended."""
    with transaction.atomic():
        card = ScratchCard.objects.select_for_update().filter(pk=card_id, member=member).first()
        if card is None:
            raise MarketingError("scratch_not_found", _("No such scratch card."), 404)
        if card.scratched_at is not None:
            return card  # drawn once: no replay
        campaign = ScratchCampaign.objects.select_for_update().get(pk=card.campaign_id)
        if not campaign.active or campaign.ends_at <= timezone.now():
            raise MarketingError("scratch_ended", _("This campaign has ended."))
        prizes = list(ScratchPrize.objects.select_for_update().filter(campaign=campaign).order_by("pk"))
        prize = _pick(prizes, secrets.randbelow(ODDS))
        if prize is not None and (
            prize.kind == ScratchPrize.Kind.NOTHING
            or prize.stock <= 0
            or campaign.spent + prize.cost > campaign.budget
        ):
            prize = None  # nothing won (a "nothing" slice, or the prize ran out)
        card.prize, card.scratched_at = prize, timezone.now()
        card.save(update_fields=["prize", "scratched_at"])
        if prize is None:
            return card
        ScratchPrize.objects.filter(pk=prize.pk).update(stock=F("stock") - 1)
        ScratchCampaign.objects.filter(pk=campaign.pk).update(spent=F("spent") + prize.cost)
        ref = f"scratch:{card.pk}"
        if prize.kind == ScratchPrize.Kind.COUPON:
            coupon_grant(template_id=prize.coupon_id, member=member, source=Coupon.Source.SCRATCH,
                         source_ref=ref, enforce_limit=False)
        elif prize.kind == ScratchPrize.Kind.POINTS:
            points_post(member=member, points=prize.points, kind=PointsEntry.Kind.PRIZE, key=ref, ref=ref)
        elif prize.kind == ScratchPrize.Kind.BONUS:
            gift_to_bonus(member=member, amount=prize.bonus, key=ref, ref=ref, memo=f"scratch card: {prize.name}")
    return card
