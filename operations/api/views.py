"""Driver API for feedback and complaints."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from evplatform.api.pagination import Pagination
from evplatform.api.schema import paginated
from operations import feedback as service
from operations.models import Feedback

from .serializers import FeedbackIn, FeedbackOut, FollowUpIn, ReplyOut


def _mine(request):
    return (Feedback.objects.filter(member=request.user).select_related("order")
            .prefetch_related("replies"))


@extend_schema(methods=["POST"], request=FeedbackIn, responses={201: FeedbackOut})
@extend_schema(methods=["GET"], operation_id="feedback_list",
               responses=paginated("FeedbackPage", FeedbackOut(many=True)))
@api_view(["GET", "POST"])
def feedback(request):
    """GET: the member's feedback, newest first, with replies (paginated). POST: submit
    feedback or a complaint (category, text, up to 9 photo URLs, optionally an order of the
    member's or a connector); 404 ``order_not_found`` / ``connector_not_found``."""
    if request.method == "GET":
        paginator = Pagination()
        page = paginator.paginate_queryset(_mine(request), request)
        return paginator.get_paginated_response(FeedbackOut(page, many=True).data)
    data = FeedbackIn(data=request.data)
    data.is_valid(raise_exception=True)
    made = service.feedback_submit(member=request.user, **data.validated_data)
    return Response(FeedbackOut(_mine(request).get(pk=made.pk)).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=FeedbackOut)
@api_view(["GET"])
def feedback_detail(request, feedback_id: int):
    """One of the member's feedback with its thread of replies."""
    return Response(FeedbackOut(get_object_or_404(_mine(request), pk=feedback_id)).data)


@extend_schema(request=FollowUpIn, responses={201: ReplyOut})
@api_view(["POST"])
def feedback_follow_up(request, feedback_id: int):
    """The member adds to their feedback; 404 ``feedback_not_found``, 409 ``feedback_closed``."""
    data = FollowUpIn(data=request.data)
    data.is_valid(raise_exception=True)
    reply = service.feedback_follow_up(member=request.user, feedback_id=feedback_id,
                                       text=data.validated_data["text"])
    return Response(ReplyOut(reply).data, status=status.HTTP_201_CREATED)
