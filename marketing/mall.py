"""The points mall: coupons, wallet bonus or goods for points. Stock is checked under the
item's row lock (locked before the member's points account), so it never oversells."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from .common import MarketingError, gift_to_bonus
from .coupons import coupon_grant
from .models import Coupon, MallItem, MallRedemption, PointsEntry
from .points import points_post

R = MallRedemption.Status


@transaction.atomic
def mall_redeem(*, member, item_id: int, recipient: str = "", phone: str = "", address: str = "") -> MallRedemption:
    """Spend points on an item. Goods need a recipient, phone and address and wait to be
    shipped; coupons and wallet bonus are delivered at once. Raises MarketingError
    mall_item_not_found, mall_sold_out, address_required, insufficient_points."""
    item = MallItem.objects.select_for_update().filter(pk=item_id, active=True).first()
    if item is None:
        raise MarketingError("mall_item_not_found", _("No such item."), 404)
    if item.stock <= 0:
        raise MarketingError("mall_sold_out", _("This item is sold out."))
    goods = item.kind == MallItem.Kind.GOODS
    if goods and not (recipient.strip() and phone.strip() and address.strip()):
        raise MarketingError("address_required", _("Give the recipient, phone and shipping address."))
    redemption = MallRedemption.objects.create(
        member=member, item=item, points=item.points, status=R.PENDING if goods else R.DONE,
        recipient=recipient.strip(), phone=phone.strip(), address=address.strip(),
    )
    points_post(member=member, points=-item.points, kind=PointsEntry.Kind.SPEND,
                key=f"mall:{redemption.pk}", ref=f"mall:{redemption.pk}")
    MallItem.objects.filter(pk=item.pk).update(stock=F("stock") - 1)
    if item.kind == MallItem.Kind.COUPON:
        coupon_grant(template_id=item.coupon_id, member=member, source=Coupon.Source.MALL,
                     source_ref=f"mall:{redemption.pk}", enforce_limit=False)
    elif item.kind == MallItem.Kind.BONUS:
        gift_to_bonus(member=member, amount=item.bonus, key=f"mall:{redemption.pk}", ref=f"mall:{redemption.pk}",
                      memo=f"points mall: {item.name}")
    return redemption


@transaction.atomic
def mall_fulfil(*, redemption_id: int, status: str, tracking_no: str = "") -> MallRedemption:
    """Staff move a goods redemption on: shipped (with a tracking number), delivered, or
    cancelled (the points and the stock come back)."""
    redemption = MallRedemption.objects.select_for_update().get(pk=redemption_id)
    allowed = {R.PENDING: {R.SHIPPED, R.CANCELLED}, R.SHIPPED: {R.DELIVERED, R.CANCELLED}}
    if status not in allowed.get(redemption.status, set()):
        raise MarketingError("invalid_transition", _("This redemption cannot move to that status."))
    if status == R.SHIPPED and not tracking_no.strip():
        raise MarketingError("tracking_required", _("Give the tracking number."))
    if status == R.CANCELLED:
        MallItem.objects.filter(pk=redemption.item_id).update(stock=F("stock") + 1)
        points_post(member=redemption.member, points=redemption.points, kind=PointsEntry.Kind.RETURN,
                    key=f"mall:{redemption.pk}:return", ref=f"mall:{redemption.pk}")
    redemption.status = status
    if tracking_no:
        redemption.tracking_no = tracking_no.strip()
    redemption.save(update_fields=["status", "tracking_no"])
    return redemption
