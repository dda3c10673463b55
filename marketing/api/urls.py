from django.urls import path

from . import views

urlpatterns = [
    path("coupons", views.coupon_list, name="coupons"),
    path("coupons/claimable", views.coupon_claimable, name="coupons-claimable"),
    path("coupons/claim", views.coupon_claim, name="coupons-claim"),
    path("coupons/buy", views.coupon_buy, name="coupons-buy"),
    path("coupons/applicable", views.coupon_applicable, name="coupons-applicable"),
    path("coupons/<int:pk>/choose", views.coupon_choose, name="coupon-choose"),
    path("svip", views.svip_overview, name="svip"),
    path("svip/purchases", views.svip_purchases, name="svip-purchases"),
    path("svip/wechat-pay", views.svip_pay, name="svip-wechat-pay"),
    path("svip/purchases/<int:pk>/refund", views.svip_refund, name="svip-refund"),
    path("points", views.points_overview, name="points"),
    path("points/entries", views.points_entries, name="points-entries"),
    path("points/mall", views.mall_items, name="points-mall"),
    path("points/mall/redemptions", views.mall_redemptions, name="points-mall-redemptions"),
    path("scratch-cards", views.scratch_cards, name="scratch-cards"),
    path("scratch-cards/<int:pk>/scratch", views.scratch_card_scratch, name="scratch-card-scratch"),
    path("point-cards/redeem", views.point_card_redeem, name="point-card-redeem"),
    path("referral", views.referral, name="referral"),
    path("referral/bind", views.referral_bind, name="referral-bind"),
    path("sms-consent", views.sms_consent, name="sms-consent"),
]
