"""The member's top-ups, refunds (退费) and withdrawals (提现)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from billing.payments import selectors, services
from evplatform.api.pagination import Pagination
from evplatform.api.schema import paginated
from settlement.services import money_policy

from .serializers import (
    AmountIn,
    PaymentOut,
    PaymentStartOut,
    RefundIn,
    RefundPreviewOut,
    TopUpOptionsOut,
    WalletRefundOut,
    WithdrawalOut,
)


def _page(request, queryset, serializer, **context):
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request)
    return paginator.get_paginated_response(serializer(page, many=True, context=context).data)


@extend_schema(responses=TopUpOptionsOut)
@api_view(["GET"])
def top_up_options(request):
    policy = money_policy()
    body = {
        "min_amount": policy.min_top_up,
        "max_amount": policy.max_top_up,
        "offers": selectors.top_up_offers(),
    }
    return Response(TopUpOptionsOut(body).data)


@extend_schema(request=AmountIn, responses={201: PaymentStartOut})
@api_view(["POST"])
def top_up_create(request):
    data = AmountIn(data=request.data)
    data.is_valid(raise_exception=True)
    started = services.top_up_create(member=request.user, amount=data.validated_data["amount"])
    body = {"payment": started.payment, "pay_params": started.pay_params}
    return Response(PaymentStartOut(body).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=PaymentOut)
@api_view(["GET"])
def payment_detail(request, out_trade_no: str):
    """A payment's state; while pending, WeChat is asked (after wx.requestPayment)."""
    payment = get_object_or_404(selectors.member_payments(request.user), out_trade_no=out_trade_no)
    try:
        payment = services.payment_sync(payment=payment)
    except (services.BillingError, services.NotificationMismatch):
        pass  # state as we know it
    return Response(PaymentOut(payment).data)


@extend_schema(responses=RefundPreviewOut)
@api_view(["GET"])
def refund_preview(request):
    """What a refund would pay back and what bonus it would forfeit (show before confirming)."""
    return Response(RefundPreviewOut(selectors.wallet_refund_preview(request.user)).data)


@extend_schema(methods=["POST"], request=RefundIn, responses={201: WalletRefundOut})
@extend_schema(
    methods=["GET"],
    operation_id="wallet_refunds_list",
    responses=paginated("WalletRefundPage", WalletRefundOut(many=True)),
)
@api_view(["GET", "POST"])
def refunds(request):
    if request.method == "GET":
        return _page(request, selectors.member_wallet_refunds(request.user), WalletRefundOut)
    data = RefundIn(data=request.data)
    data.is_valid(raise_exception=True)
    refund = services.wallet_refund_request(member=request.user, **data.validated_data)
    return Response(WalletRefundOut(refund).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=WalletRefundOut)
@api_view(["GET"])
def refund_detail(request, pk: int):
    refund = get_object_or_404(selectors.member_wallet_refunds(request.user), pk=pk)
    return Response(WalletRefundOut(refund).data)


@extend_schema(methods=["POST"], request=AmountIn, responses={201: WithdrawalOut})
@extend_schema(
    methods=["GET"],
    operation_id="wallet_withdrawals_list",
    responses=paginated("WithdrawalPage", WithdrawalOut(many=True)),
)
@api_view(["GET", "POST"])
def withdrawals(request):
    confirm = selectors.transfer_confirm_ids()
    if request.method == "GET":
        return _page(request, selectors.member_withdrawals(request.user), WithdrawalOut, confirm=confirm)
    data = AmountIn(data=request.data)
    data.is_valid(raise_exception=True)
    withdrawal = services.withdrawal_request(
        member=request.user, amount=data.validated_data["amount"]
    )
    body = WithdrawalOut(withdrawal, context={"confirm": confirm}).data
    return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(responses=WithdrawalOut)
@api_view(["GET"])
def withdrawal_detail(request, pk: int):
    withdrawal = get_object_or_404(selectors.member_withdrawals(request.user), pk=pk)
    confirm = selectors.transfer_confirm_ids()
    return Response(WithdrawalOut(withdrawal, context={"confirm": confirm}).data)
