"""Driver API for charging: start, watch, stop, history, reservations, the station queue."""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from charging import roaming, selectors, services
from charging.models import OrderTransition, QueueEntry, Reservation, RoamingOrder
from evplatform.api.errors import APIError
from evplatform.api.pagination import Pagination
from evplatform.api.schema import paginated
from marketing import hooks as marketing_hooks
from stations import selectors as station_selectors
from stations.models import Connector

from .serializers import (
    DepartureIn,
    OrderOut,
    OrderStartIn,
    PrepayIn,
    PrepayOut,
    QueueJoinIn,
    QueueOut,
    ReservationIn,
    ReservationOut,
    RoamingOrderOut,
    RoamingStartIn,
)


def _connector(data) -> Connector:
    if data.get("connector_id"):
        connector = Connector.objects.select_related("pile__station").filter(pk=data["connector_id"]).first()
    else:
        connector = station_selectors.connector_get_by_code(data["connector_code"])
    if connector is None:
        raise APIError("connector_not_found", "No such connector.", status.HTTP_404_NOT_FOUND)
    return connector


def _idempotency_key(request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if key and (len(key) > 64 or not all(33 <= ord(c) <= 126 for c in key)):
        raise APIError(
            "idempotency_key_invalid",
            _("Idempotency-Key must be 1 to 64 visible ASCII characters."),
            status.HTTP_400_BAD_REQUEST,
        )
    return key


@extend_schema(
    methods=["POST"],
    request=OrderStartIn,
    responses={202: OrderOut},
    parameters=[
        OpenApiParameter(
            "Idempotency-Key",
            str,
            OpenApiParameter.HEADER,
            description=(
                "Optional, up to 64 visible ASCII characters. A POST retried with the same "
                "key returns the order the first one started (202) instead of "
                "order_in_progress; the same key for another connector is refused (422 "
                "idempotency_key_reused)."
            ),
        )
    ],
)
@extend_schema(
    methods=["GET"], operation_id="orders_list", responses=paginated("OrderPage", OrderOut(many=True))
)
@api_view(["GET", "POST"])
def orders(request):
    """GET: the member's orders, newest first (paginated). POST: start charging (202); send
    an Idempotency-Key header to retry safely after a lost response."""
    if request.method == "GET":
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.order_list_for_member(request.user), request)
        return paginator.get_paginated_response(OrderOut(page, many=True).data)
    data = OrderStartIn(data=request.data)
    data.is_valid(raise_exception=True)
    connector = _connector(data.validated_data)
    coupon_id = data.validated_data.get("coupon_id")
    if coupon_id:
        marketing_hooks.coupon_check_usable(member=request.user, coupon_id=coupon_id)
    order = services.order_start(
        member=request.user,
        connector=connector,
        mode=data.validated_data["mode"],
        prepay_ref=data.validated_data.get("prepay_ref"),
        idempotency_key=_idempotency_key(request),
    )
    if coupon_id:
        # Set aside for the order; lost to a concurrent order, the best coupon applies instead.
        marketing_hooks.coupon_choose_for_order(member=request.user, coupon_id=coupon_id, order_ref=order.number)
    return Response(OrderOut(order).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(request=PrepayIn, responses={201: PrepayOut})
@api_view(["POST"])
def order_prepay(request):
    """Pay per order: prepay an amount for a new order, then start it with mode=prepay."""
    data = PrepayIn(data=request.data)
    data.is_valid(raise_exception=True)
    ref, params = services.order_prepay_create(
        member=request.user,
        connector=_connector(data.validated_data),
        amount=data.validated_data["amount"],
    )
    return Response({"prepay_ref": ref, "pay_params": params}, status=status.HTTP_201_CREATED)


@extend_schema(responses=OrderOut)
@api_view(["GET"])
def order_current(request):
    order = selectors.order_current_for_member(request.user)
    if order is None:
        raise APIError("no_current_order", "No charge in progress.", status.HTTP_404_NOT_FOUND)
    return Response(OrderOut(order).data)


@extend_schema(responses=OrderOut)
@api_view(["GET"])
def order_detail(request, order_id: int):
    order = get_object_or_404(selectors.order_list_for_member(request.user), pk=order_id)
    return Response(OrderOut(order).data)


@extend_schema(request=None, responses={202: OrderOut})
@api_view(["POST"])
def order_stop(request, order_id: int):
    order = get_object_or_404(selectors.order_list_for_member(request.user), pk=order_id)
    order = services.order_stop(
        order_id=order.pk, actor=OrderTransition.Actor.MEMBER, actor_id=request.user.pk
    )
    return Response(OrderOut(order).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(request=DepartureIn, responses=OrderOut)
@api_view(["POST"])
def order_departure(request, order_id: int):
    """The driver's requested departure for a charge in progress (ISO 8601, or null to
    clear it): at a station sharing power by priority, leaving soon gets more power.
    Errors: 404, 400 ``departure_invalid`` / validation, 409 ``order_not_active``."""
    order = get_object_or_404(selectors.order_list_for_member(request.user), pk=order_id)
    data = DepartureIn(data=request.data)
    data.is_valid(raise_exception=True)
    order = services.order_departure_set(order_id=order.pk,
                                         departure_at=data.validated_data["departure_at"])
    return Response(OrderOut(order).data)


@extend_schema(request=ReservationIn, responses={201: ReservationOut})
@api_view(["GET", "POST"])
def reservations(request):
    """GET: the member's active reservation (404 if none). POST: reserve a free connector."""
    if request.method == "GET":
        reservation = selectors.reservation_current_for_member(request.user)
        if reservation is None:
            raise APIError("no_reservation", "No active reservation.", status.HTTP_404_NOT_FOUND)
        return Response(ReservationOut(reservation).data)
    data = ReservationIn(data=request.data)
    data.is_valid(raise_exception=True)
    reservation = services.reservation_create(member=request.user, connector=_connector(data.validated_data))
    return Response(ReservationOut(reservation).data, status=status.HTTP_201_CREATED)


@extend_schema(request=None, responses=ReservationOut)
@api_view(["POST"])
def reservation_cancel(request, reservation_id: int):
    reservation = get_object_or_404(Reservation.objects.filter(member=request.user), pk=reservation_id)
    reservation = services.reservation_cancel(reservation=reservation)
    return Response(ReservationOut(reservation).data)


def _queue_entries(member):
    return QueueEntry.objects.filter(member=member).select_related(
        "station", "reservation__connector__pile__station")


@extend_schema(methods=["GET"], responses=QueueOut)
@extend_schema(methods=["POST"], request=QueueJoinIn, responses={201: QueueOut})
@api_view(["GET", "POST"])
def queue(request):
    """GET: the member's place in a station's queue (404 queue_none if not queued): position,
    estimated wait, and the connector offered with its countdown. POST: join a full
    station's queue (409 connector_free when a connector of the kind is free)."""
    if request.method == "GET":
        entry = _queue_entries(request.user).filter(state__in=QueueEntry.OPEN).first()
        if entry is None:
            raise APIError("queue_none", _("You are not in a queue."), status.HTTP_404_NOT_FOUND)
        return Response(QueueOut(services.queue_status(entry)).data)
    data = QueueJoinIn(data=request.data)
    data.is_valid(raise_exception=True)
    station = station_selectors.station_get(station_id=data.validated_data["station_id"])
    if station is None:
        raise APIError("station_not_found", _("No such station."), status.HTTP_404_NOT_FOUND)
    entry = services.queue_join(member=request.user, station=station,
                                kind=data.validated_data.get("kind") or "")
    entry = _queue_entries(request.user).get(pk=entry.pk)
    return Response(QueueOut(services.queue_status(entry)).data, status=status.HTTP_201_CREATED)


@extend_schema(request=None, responses=QueueOut)
@api_view(["POST"])
def queue_leave(request, entry_id: int):
    """Leave the queue (an offered connector passes to the next driver)."""
    entry = get_object_or_404(_queue_entries(request.user), pk=entry_id)
    entry = services.queue_leave(entry=entry)
    return Response(QueueOut(services.queue_status(entry)).data)


@extend_schema(request=None, responses=QueueOut)
@api_view(["POST"])
def queue_decline(request, entry_id: int):
    """Decline the connector offered: it passes to the next driver; you leave the queue."""
    entry = get_object_or_404(_queue_entries(request.user), pk=entry_id)
    entry = services.queue_decline(entry=entry)
    return Response(QueueOut(services.queue_status(entry)).data)


# --- our members on interconnection partners' piles -------------------------------------


def _roaming_refused(refused) -> APIError:
    codes = {"connector_not_found": status.HTTP_404_NOT_FOUND, "member_disabled": status.HTTP_403_FORBIDDEN}
    return APIError(refused.code, str(refused), codes.get(refused.code, status.HTTP_409_CONFLICT))


@extend_schema(methods=["POST"], request=RoamingStartIn, responses={202: RoamingOrderOut})
@extend_schema(methods=["GET"], responses=RoamingOrderOut(many=True))
@api_view(["GET", "POST"])
def roaming_orders(request):
    """GET: the member's orders on partners' piles, newest first (at most 50). POST
    ``{connector_id}``: start charging on a partner's connector; 202 with the order
    ``starting`` (the partner is asked in the background; watch GET orders/roaming/{id}).
    Errors: 400 ``invalid``, 404 ``connector_not_found``, 403 ``member_disabled``, 409
    ``order_in_progress`` / ``connector_unavailable`` / ``insufficient_balance``."""
    if request.method == "GET":
        orders = RoamingOrder.objects.filter(member=request.user).order_by("-created_at")[:50]
        return Response(RoamingOrderOut(orders, many=True).data)
    data = RoamingStartIn(data=request.data)
    if not data.is_valid():
        raise APIError("invalid", _("connector_id is a partner connector's id."), status.HTTP_400_BAD_REQUEST)
    try:
        order = roaming.roaming_start(member=request.user, connector_id=data.validated_data["connector_id"])
    except roaming.RoamingRefused as refused:
        raise _roaming_refused(refused) from None
    return Response(RoamingOrderOut(order).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(responses=RoamingOrderOut)
@api_view(["GET"])
def roaming_order_detail(request, order_id: int):
    """One of the member's orders on a partner's pile. 404 ``not_found`` for another's."""
    order = RoamingOrder.objects.filter(member=request.user, pk=order_id).first()
    if order is None:
        raise APIError("not_found", _("No such order."), status.HTTP_404_NOT_FOUND)
    return Response(RoamingOrderOut(order).data)


@extend_schema(request=None, responses={202: RoamingOrderOut})
@api_view(["POST"])
def roaming_order_stop(request, order_id: int):
    """Stop the member's charge on a partner's pile: 202 with the order ``stopping`` (the
    partner is asked in the background). 404 ``not_found``; 409 ``not_stoppable``."""
    try:
        order = roaming.roaming_stop(member=request.user, order_id=order_id)
    except RoamingOrder.DoesNotExist:
        raise APIError("not_found", _("No such order."), status.HTTP_404_NOT_FOUND) from None
    except roaming.RoamingRefused as refused:
        raise _roaming_refused(refused) from None
    return Response(RoamingOrderOut(order).data, status=status.HTTP_202_ACCEPTED)
