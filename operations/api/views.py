"""Driver API for feedback and complaints, and the customer-service chat's REST side (the
live side is the WebSocket ``/ws/app/chat/``, operations.consumers)."""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from evplatform.api.pagination import Pagination
from evplatform.api.schema import paginated
from operations import chat as chat_service
from operations import feedback as service
from operations.models import Feedback

from .serializers import (
    ChatMessageIn,
    ChatMessageOut,
    ChatOut,
    ChatQuery,
    ChatReadIn,
    ConversationOut,
    FeedbackIn,
    FeedbackOut,
    FollowUpIn,
    PhotoOut,
    ReplyOut,
)


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


@extend_schema(request={"multipart/form-data": {"type": "object", "properties": {
    "file": {"type": "string", "format": "binary"}}}}, responses={201: PhotoOut})
@api_view(["POST"])
@parser_classes([MultiPartParser])
def feedback_photo(request):
    """Upload one photo for feedback (multipart field ``file``: JPEG, PNG or WebP, at most
    5 MB); answers its ``url`` to send in the feedback's ``photos``. 400 ``photo_missing`` /
    ``photo_invalid``, 413 ``photo_too_large``."""
    name = service.feedback_photo_store(upload=request.FILES.get("file"))
    url = request.build_absolute_uri("/media/" + name)
    return Response({"url": url}, status=status.HTTP_201_CREATED)


def _chat_state(member) -> dict:
    conversation = chat_service.conversation_of_member(member)
    if conversation is None:
        return {"conversation": None, "messages": [], "unread": 0}
    return {"conversation": chat_service.conversation_payload(conversation),
            "messages": [chat_service.message_payload(m) for m in chat_service.messages_of(conversation)],
            "unread": chat_service.member_unread_total(member)}


@extend_schema(parameters=[ChatQuery], responses=ChatOut)
@api_view(["GET"])
def chat(request):
    """The member's customer-service conversation (the open one, else the latest; null if
    none yet), its last 50 messages oldest first, and the unread count (staff messages after
    the member's read marker). Query ``before=<message id>``: the 50 before it instead."""
    query = ChatQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    state = _chat_state(request.user)
    before = query.validated_data.get("before")
    if before is not None and state["conversation"] is not None:
        conversation = chat_service.conversation_of_member(request.user)
        state["messages"] = [chat_service.message_payload(m)
                             for m in chat_service.messages_of(conversation, before=before)]
    return Response(ChatOut(state).data)


@extend_schema(request=ChatMessageIn, responses={201: ChatMessageOut})
@api_view(["POST"])
def chat_messages(request):
    """Send a message to customer service (opens a conversation if none is open); the same
    ``client_id`` sent twice stores one message. Staff consoles receive it live. 400
    ``validation_error`` (empty or over 1000 characters)."""
    data = ChatMessageIn(data=request.data)
    data.is_valid(raise_exception=True)
    message = chat_service.chat_member_send(member=request.user, **data.validated_data)
    return Response(chat_service.message_payload(message), status=status.HTTP_201_CREATED)


@extend_schema(request=ChatReadIn, responses=ConversationOut)
@api_view(["POST"])
def chat_read(request):
    """Mark staff messages read up to message id ``upto`` (never moves back). 404
    ``conversation_not_found`` when the member has no conversation."""
    data = ChatReadIn(data=request.data)
    data.is_valid(raise_exception=True)
    conversation = chat_service.conversation_of_member(request.user)
    if conversation is None:
        raise chat_service.ChatError("conversation_not_found", _("No such conversation."), 404)
    conversation = chat_service.chat_read(conversation_id=conversation.pk, member=request.user,
                                          upto=data.validated_data["upto"])
    return Response(chat_service.conversation_payload(conversation))
