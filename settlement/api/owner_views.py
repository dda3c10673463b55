"""The station-owner center: members who are station owners see their stations, figures,
orders, statements, payable, withdrawals and faults — only their own (403 ``not_station_owner`` for
anyone else)."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from evplatform.api.pagination import Pagination
from settlement import owner_center, withdrawals

from .serializers import (
    OwnerFaultOut,
    OwnerOrderOut,
    OwnerOverviewOut,
    OwnerStatementOut,
    OwnerStationOut,
    OwnerWithdrawalIn,
    OwnerWithdrawalOut,
)


def _page(request, qs, serializer):
    paginator = Pagination()
    page = paginator.paginate_queryset(qs, request)
    return paginator.get_paginated_response(serializer(page, many=True).data)


@extend_schema(responses=OwnerOverviewOut)
@api_view(["GET"])
def overview(request):
    """Today's and this month's orders, energy and earnings; the payable."""
    owner = owner_center.owner_for_member(request.user)
    return Response(OwnerOverviewOut(owner_center.owner_overview(owner)).data)


@extend_schema(responses=OwnerStationOut(many=True))
@api_view(["GET"])
def stations(request):
    owner = owner_center.owner_for_member(request.user)
    return Response(OwnerStationOut(owner_center.owner_station_list(owner), many=True).data)


@extend_schema(responses=OwnerOrderOut(many=True))
@api_view(["GET"])
def orders(request):
    owner = owner_center.owner_for_member(request.user)
    return _page(request, owner_center.owner_orders(owner), OwnerOrderOut)


@extend_schema(responses=OwnerStatementOut(many=True))
@api_view(["GET"])
def statements(request):
    owner = owner_center.owner_for_member(request.user)
    return _page(request, owner_center.owner_statements(owner), OwnerStatementOut)


@extend_schema(responses=OwnerStatementOut)
@api_view(["GET"])
def statement_detail(request, pk: int):
    owner = owner_center.owner_for_member(request.user)
    return Response(OwnerStatementOut(get_object_or_404(owner_center.owner_statements(owner), pk=pk)).data)


@extend_schema(responses=OwnerFaultOut(many=True))
@api_view(["GET"])
def faults(request):
    owner = owner_center.owner_for_member(request.user)
    return _page(request, owner_center.owner_faults(owner), OwnerFaultOut)


@extend_schema(request=OwnerWithdrawalIn, responses={200: OwnerWithdrawalOut(many=True), 201: OwnerWithdrawalOut})
@api_view(["GET", "POST"])
def owner_withdrawals(request):
    """GET: my withdrawals, newest first. POST ``{"amount": "100.00"}``: ask to be paid that
    much of my available payable now; staff review it. Errors: ``withdrawal_below_minimum``,
    ``withdrawal_exceeds_available`` (409), ``no_contract``, ``no_openid``."""
    owner = owner_center.owner_for_member(request.user)
    if request.method == "GET":
        return _page(request, owner_center.owner_withdrawals(owner), OwnerWithdrawalOut)
    data = OwnerWithdrawalIn(data=request.data)
    data.is_valid(raise_exception=True)
    made = withdrawals.withdrawal_request(owner_id=owner.pk, amount=data.validated_data["amount"])
    return Response(OwnerWithdrawalOut(made).data, status=201)
