"""The e-invoice provider's call-back: ``POST /api/pay/notify/<operator slug>/fapiao``.

The body only names our request; we query the provider before changing anything (the
call-back is not signed). Answers 200 ``{"status": "0000"}`` once handled — also for a
request we do not know, so the provider stops retrying — and 502 when the provider could
not be asked (it calls back again).
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.invoices import services


@csrf_exempt
@require_POST
def fapiao_notify(request, slug: str):
    invoice = services.invoice_callback(
        body=request.body, content_type=request.headers.get("Content-Type", "")
    )
    if invoice is not None and invoice.status == invoice.Status.SUBMITTED and invoice.last_error:
        # The provider could not be asked: answer an error so that it calls back again.
        return JsonResponse({"status": "9999", "message": "query failed"}, status=502)
    return JsonResponse({"status": "0000", "message": "success"})
