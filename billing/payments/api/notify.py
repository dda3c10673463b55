"""WeChat Pay notifications: ``POST /api/pay/notify/<operator slug>/<kind>``.

Verified (signature with the WeChat Pay public key, timestamp within 5 minutes, no
SIGNTEST probe), decrypted, checked against our record, applied once. Answers 204 when
applied or already applied; 401 when it cannot be trusted; 400 when it does not match
our record (flagged for staff); WeChat retries anything but 200/204.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.payments import services
from evplatform.api.errors import error_response

logger = logging.getLogger(__name__)

KINDS = ("payment", "refund", "transfer")


@csrf_exempt
@require_POST
def pay_notify(request, slug: str, kind: str, partner: bool = False):
    if kind not in KINDS:
        return error_response("not_found", _("Not found."), 404)
    try:
        services.notification_handle(
            kind=kind, headers=request.headers, body=request.body, partner=partner
        )
    except services.NotifyRejected as exc:
        logger.warning("pay notify %s/%s rejected: %s", slug, kind, exc)
        return error_response("notify_rejected", _("Notification not accepted."), 401)
    except services.NotificationMismatch as exc:
        logger.error("pay notify %s/%s does not match: %s", slug, kind, exc)
        return error_response("notify_mismatch", _("Notification does not match."), 400)
    except services.BillingError as exc:
        return error_response(exc.code, exc.detail, exc.status)
    return HttpResponse(status=204)
