"""WeChat's calls to the third-party platform (public host; see tenants.open_platform):

- ``POST /wechat/component/events`` — authorisation event URL (授权事件接收URL):
  ``component_verify_ticket``, ``authorized``, ``updateauthorized``, ``unauthorized``.
- ``POST /wechat/component/<appid>/events`` — message and event URL (消息与事件接收URL) of
  each authorised mini-program: audit results.
- ``GET /wechat/component/authorized?auth_code=…`` — where WeChat sends the operator's
  administrator after confirming the authorisation.

Pushes are answered ``success`` (WeChat retries otherwise); a bad signature is 403 and
changes nothing; a push we cannot apply is 400 (logged) so WeChat retries it.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import open_platform

logger = logging.getLogger(__name__)


def _receive(request, appid: str = "") -> HttpResponse:
    q = request.GET
    try:
        open_platform.event_receive(
            body=request.body, msg_signature=q.get("msg_signature", ""),
            timestamp=q.get("timestamp", ""), nonce=q.get("nonce", ""), appid=appid,
        )
    except open_platform.InvalidSignature as exc:
        logger.warning("WeChat push to %s refused: %r", request.path, exc.__cause__)
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    except open_platform.OpenPlatformError as exc:
        logger.warning("WeChat push to %s not applied: %s", request.path, exc)
        return HttpResponse("not applied", status=400, content_type="text/plain")
    return HttpResponse("success", content_type="text/plain")


@csrf_exempt
@require_POST
def component_events(request):
    return _receive(request)


@csrf_exempt
@require_POST
def authorizer_events(request, appid: str):
    return _receive(request, appid)


@require_GET
def authorized(request):
    """The operator's administrator lands here after authorising in WeChat."""
    code = request.GET.get("auth_code", "")
    context = {"mini_program": None, "error": ""}
    if not code:
        context["error"] = "missing"
    else:
        try:
            context["mini_program"] = open_platform.authorization_complete(auth_code=code)
        except open_platform.OpenPlatformError as exc:
            logger.warning("authorisation callback failed: %s", exc)
            context["error"] = str(exc)
    status = 200 if context["mini_program"] else 400
    return render(request, "tenants/authorized.html", context, status=status)
