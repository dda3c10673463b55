"""The member's coupons, SVIP, points and points mall, scratch cards and point cards."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from evplatform.api.pagination import Pagination
from evplatform.api.schema import paginated
from marketing import cards, coupons, discounts, mall, points, rewards, scratch, sms, svip
from marketing.common import MarketingError, local
from marketing.models import (
    MallItem,
    MallRedemption,
    PointsEntry,
    Referral,
    ScratchCard,
    SvipPlan,
    SvipPurchase,
)
from stations.models import Connector, Pile

from . import serializers as s


def _page(request, queryset, serializer):
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request)
    return paginator.get_paginated_response(serializer(page, many=True).data)


@extend_schema(
    parameters=[OpenApiParameter("status", str, enum=["usable", "used", "expired", "void"],
                                 description="usable: available or set aside for an order, in date")],
    responses=paginated("CouponPage", s.CouponOut(many=True)),
)
@api_view(["GET"])
def coupon_list(request):
    """我的优惠券 · My coupons."""
    qs = coupons.member_coupons(request.user, status=request.query_params.get("status") or None)
    return _page(request, qs.prefetch_related("template__stations"), s.CouponOut)


@extend_schema(responses=s.TemplateOut(many=True))
@api_view(["GET"])
def coupon_claimable(request):
    """可领取的优惠券 · Coupons the member may claim now."""
    return Response(s.TemplateOut(coupons.claimable_templates(request.user), many=True).data)


@extend_schema(request=s.ClaimIn, responses={201: s.CouponOut})
@api_view(["POST"])
def coupon_claim(request):
    """领取优惠券 · Claim a coupon. Errors: coupon_not_found, coupon_inactive, coupon_expired,
    coupon_limit, coupon_sold_out."""
    data = s.ClaimIn(data=request.data)
    data.is_valid(raise_exception=True)
    coupon = coupons.coupon_claim(member=request.user, template_id=data.validated_data["template_id"])
    return Response(s.CouponOut(coupon).data, status=status.HTTP_201_CREATED)


@extend_schema(request=s.CouponBuyIn, responses={201: s.CouponPayOut})
@api_view(["POST"])
def coupon_buy(request):
    """购买优惠券 · Buy a coupon on sale (its template has a price) with WeChat Pay; the
    coupon is granted when the payment arrives. Errors: coupon_not_found (404), coupon_inactive,
    coupon_expired, coupon_limit, coupon_sold_out, pay_not_configured (409),
    payment_unavailable and payment_refused (502)."""
    data = s.CouponBuyIn(data=request.data)
    data.is_valid(raise_exception=True)
    started = coupons.coupon_pay_start(member=request.user, template_id=data.validated_data["template_id"])
    body = {"purchase": started.purchase, "pay_params": started.pay_params}
    return Response(s.CouponPayOut(body).data, status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[OpenApiParameter("connector_id", int, required=True)],
    responses=s.CouponOut(many=True),
)
@api_view(["GET"])
def coupon_applicable(request):
    """可用于该枪的优惠券 · The member's coupons that apply to a charge on this connector now
    (threshold coupons listed; the threshold is checked on the bill)."""
    try:
        connector_id = int(request.query_params.get("connector_id", ""))
    except ValueError:
        raise MarketingError("connector_id_required", "connector_id") from None
    connector = get_object_or_404(Connector.objects.select_related("pile"), pk=connector_id)
    facts = discounts.OrderFacts(
        gross=discounts.ZERO, service=discounts.ZERO, station_id=connector.pile.station_id,
        current="ac" if connector.pile.current_type == Pile.CurrentType.AC else "dc", hour=local().hour,
    )
    return Response(s.CouponOut(coupons.applicable_coupons(request.user, facts), many=True).data)


@extend_schema(request=s.ChooseIn, responses=s.CouponOut)
@api_view(["POST"])
def coupon_choose(request, pk: int):
    """本单使用此券 · Use this coupon on an order in progress (instead of the best one).
    Errors: coupon_unavailable, order_not_found."""
    data = s.ChooseIn(data=request.data)
    data.is_valid(raise_exception=True)
    number = data.validated_data["order_number"]
    from charging.selectors import order_current_for_member

    current = order_current_for_member(request.user)
    if current is None or current.number != number:
        raise MarketingError("order_not_found", "order", 404)
    coupon = coupons.coupon_choose(member=request.user, coupon_id=pk, order_ref=number)
    return Response(s.CouponOut(coupon).data)


@extend_schema(responses=s.SvipOut)
@api_view(["GET"])
def svip_overview(request):
    """SVIP 会员 · The member's SVIP status and the plans on sale."""
    state = svip.svip_status(request.user)
    body = {
        "active": state.active, "plan": state.plan.name if state.plan else None, "ends_at": state.ends_at,
        "service_discount_percent": state.service_discount_percent,
        "plans": SvipPlan.objects.filter(active=True).select_related("monthly_coupon"),
    }
    return Response(s.SvipOut(body).data)


@extend_schema(methods=["POST"], request=s.BuyIn, responses={201: s.PurchaseOut})
@extend_schema(methods=["GET"], operation_id="svip_purchases_list", responses=s.PurchaseOut(many=True))
@api_view(["GET", "POST"])
def svip_purchases(request):
    """购买 / 续费 SVIP（钱包支付）· Buy or renew a plan from the wallet; list purchases.
    Errors: svip_plan_not_found, insufficient_balance."""
    if request.method == "GET":
        qs = SvipPurchase.objects.filter(member=request.user).select_related("plan")
        return Response(s.PurchaseOut(qs, many=True).data)
    data = s.BuyIn(data=request.data)
    data.is_valid(raise_exception=True)
    purchase = svip.svip_buy(member=request.user, plan_id=data.validated_data["plan_id"])
    return Response(s.PurchaseOut(purchase).data, status=status.HTTP_201_CREATED)


@extend_schema(request=s.BuyIn, responses={201: s.SvipPayOut})
@api_view(["POST"])
def svip_pay(request):
    """微信支付购买 / 续费 SVIP · Buy or renew a plan with WeChat Pay: a pending purchase and
    the ``wx.requestPayment`` parameters; the membership starts when the payment arrives.
    Errors: svip_plan_not_found (404), pay_not_configured (409), payment_unavailable and
    payment_refused (502)."""
    data = s.BuyIn(data=request.data)
    data.is_valid(raise_exception=True)
    started = svip.svip_pay_start(member=request.user, plan_id=data.validated_data["plan_id"])
    body = {"purchase": started.purchase, "pay_params": started.pay_params}
    return Response(s.SvipPayOut(body).data, status=status.HTTP_201_CREATED)


@extend_schema(request=None, responses=s.PurchaseOut)
@api_view(["POST"])
def svip_refund(request, pk: int):
    """退订 SVIP · Refund an unused purchase within its plan's window. Error: svip_not_refundable."""
    return Response(s.PurchaseOut(svip.svip_refund(purchase_id=pk, member=request.user)).data)


@extend_schema(responses=s.PointsOut)
@api_view(["GET"])
def points_overview(request):
    """我的积分 · Balance, points expiring soon and how points are earned."""
    rule = points.points_rule()
    body = {
        "balance": points.points_balance(request.user), "expiring_30_days": points.points_expiring(request.user),
        "per_yuan": rule.per_yuan, "per_kwh": rule.per_kwh, "bonus_weekdays": rule.bonus_weekdays,
        "bonus_multiplier": rule.bonus_multiplier,
    }
    return Response(s.PointsOut(body).data)


@extend_schema(responses=paginated("PointsEntryPage", s.PointsEntryOut(many=True)))
@api_view(["GET"])
def points_entries(request):
    """积分明细 · The member's points entries, newest first."""
    return _page(request, PointsEntry.objects.filter(account__member=request.user), s.PointsEntryOut)


@extend_schema(responses=s.MallItemOut(many=True))
@api_view(["GET"])
def mall_items(request):
    """积分商城 · Items on sale."""
    qs = MallItem.objects.filter(active=True).select_related("coupon").prefetch_related("coupon__stations")
    return Response(s.MallItemOut(qs, many=True).data)


@extend_schema(methods=["POST"], request=s.RedeemIn, responses={201: s.RedemptionOut})
@extend_schema(methods=["GET"], operation_id="mall_redemptions_list",
               responses=paginated("RedemptionPage", s.RedemptionOut(many=True)))
@api_view(["GET", "POST"])
def mall_redemptions(request):
    """积分兑换 · Spend points on an item; list the member's redemptions. Errors:
    mall_item_not_found, mall_sold_out, address_required, insufficient_points."""
    if request.method == "GET":
        qs = MallRedemption.objects.filter(member=request.user).select_related("item")
        return _page(request, qs, s.RedemptionOut)
    data = s.RedeemIn(data=request.data)
    data.is_valid(raise_exception=True)
    redemption = mall.mall_redeem(member=request.user, **data.validated_data)
    return Response(s.RedemptionOut(redemption).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=s.ScratchCardOut(many=True))
@api_view(["GET"])
def scratch_cards(request):
    """我的刮刮卡 · The member's scratch cards (unscratched first)."""
    qs = ScratchCard.objects.filter(member=request.user).select_related("campaign", "prize").order_by("-scratched_at", "-id")
    qs = sorted(qs, key=lambda c: (c.scratched_at is not None, -(c.pk)))
    return Response(s.ScratchCardOut(qs, many=True).data)


@extend_schema(request=None, responses=s.ScratchCardOut)
@api_view(["POST"])
def scratch_card_scratch(request, pk: int):
    """刮开 · Scratch a card (drawn once on the server; again shows the same result).
    Errors: scratch_not_found, scratch_ended."""
    card = scratch.scratch(member=request.user, card_id=pk)
    card = ScratchCard.objects.select_related("campaign", "prize").get(pk=card.pk)
    return Response(s.ScratchCardOut(card).data)


@extend_schema(request=s.CardRedeemIn, responses=s.CardRedeemOut)
@api_view(["POST"])
def point_card_redeem(request):
    """点卡充值 · Redeem a point card into the wallet. Errors: card_invalid, card_used,
    card_inactive, card_expired, too_many_attempts (429)."""
    data = s.CardRedeemIn(data=request.data)
    data.is_valid(raise_exception=True)
    card = cards.card_redeem(member=request.user, **data.validated_data)
    body = {"number": card.number, "amount": card.batch.face_value, "credited_as": card.batch.credit_as}
    return Response(s.CardRedeemOut(body).data)





def _referral_body(member) -> dict:
    program = rewards.referral_program()
    code = rewards.referral_code_for(member).code
    made = Referral.objects.filter(inviter=member)
    invited_by = Referral.objects.filter(invitee=member).select_related("inviter").first()
    return {
        "code": code, "path": rewards.invite_path(code), "active": program.active, "invited": made.count(),
        "rewarded": made.filter(status=Referral.Status.REWARDED).count(),
        "invited_by": (invited_by.inviter.nickname or "") if invited_by else None,
        "min_first_order": program.min_first_order,
        "inviter_coupon": program.inviter_coupon.name if program.inviter_coupon_id else None,
        "inviter_points": program.inviter_points,
        "invitee_coupon": program.invitee_coupon.name if program.invitee_coupon_id else None,
    }


@extend_schema(responses=s.ReferralOut)
@api_view(["GET"])
def referral(request):
    """邀请好友 · The member's invite code and link, whom they invited, and the rewards."""
    return Response(s.ReferralOut(_referral_body(request.user)).data)


@extend_schema(request=s.ReferralBindIn, responses={201: s.ReferralOut})
@api_view(["POST"])
def referral_bind(request):
    """填写邀请码 · A new member accepts an invite code (both sides are rewarded after the
    first charge). Errors: referral_inactive, referral_code_invalid (404), referral_self,
    referral_exists (409), referral_too_late, referral_same_phone."""
    data = s.ReferralBindIn(data=request.data)
    data.is_valid(raise_exception=True)
    rewards.referral_bind(member=request.user, code=data.validated_data["code"])
    return Response(s.ReferralOut(_referral_body(request.user)).data, status=status.HTTP_201_CREATED)


@extend_schema(methods=["GET"], operation_id="sms_consent_get", responses=s.SmsConsentIO)
@extend_schema(methods=["PUT"], request=s.SmsConsentIO, responses=s.SmsConsentIO)
@api_view(["GET", "PUT"])
def sms_consent(request):
    """营销短信订阅 · Whether the member receives marketing SMS; PUT to agree or opt out."""
    if request.method == "PUT":
        data = s.SmsConsentIO(data=request.data)
        data.is_valid(raise_exception=True)
        consent = sms.sms_consent_set(member=request.user, consented=data.validated_data["consented"])
    else:
        consent = sms.SmsConsent.objects.filter(member=request.user).first()
    return Response({"consented": bool(consent and consent.consented and consent.opted_out_at is None)})
