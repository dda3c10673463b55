"""The member's invoices (电子发票): invoiceable orders, saved titles, requests, PDF."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from billing.invoices import selectors, services
from billing.invoices.models import Invoice
from billing.invoices.pdf import invoice_pdf
from evplatform.api.pagination import Pagination
from evplatform.api.schema import paginated

from .serializers import InvoiceableOrderOut, InvoiceOut, InvoiceRequestIn, TitleIn, TitleOut

TAG = ["invoices"]


@extend_schema(tags=TAG, responses=InvoiceableOrderOut(many=True))
@api_view(["GET"])
def invoiceable_orders(request):
    """Settled orders with something paid (net of discounts and refunds) on no live invoice."""
    return Response(InvoiceableOrderOut(selectors.invoiceable_orders(request.user), many=True).data)


@extend_schema(tags=TAG, methods=["GET"], responses=TitleOut(many=True))
@extend_schema(tags=TAG, methods=["POST"], request=TitleIn, responses={201: TitleOut})
@api_view(["GET", "POST"])
def titles(request):
    """Saved titles (发票抬头). POST refuses 400 ``tax_number_invalid`` (GB 32100 check
    digit), ``tax_number_required`` (company), ``title_required``."""
    if request.method == "GET":
        return Response(TitleOut(selectors.member_titles(request.user), many=True).data)
    data = TitleIn(data=request.data)
    data.is_valid(raise_exception=True)
    title = services.title_save(member=request.user, **data.validated_data)
    return Response(TitleOut(title).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=TAG, methods=["PUT"], request=TitleIn, responses=TitleOut)
@extend_schema(tags=TAG, methods=["DELETE"], responses={204: None})
@api_view(["PUT", "DELETE"])
def title_detail(request, pk: int):
    title = get_object_or_404(selectors.member_titles(request.user), pk=pk)
    if request.method == "DELETE":
        services.title_delete(title=title)
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = TitleIn(data=request.data)
    data.is_valid(raise_exception=True)
    title = services.title_save(member=request.user, title=title, **data.validated_data)
    return Response(TitleOut(title).data)


@extend_schema(
    tags=TAG, methods=["GET"], operation_id="invoices_list",
    responses=paginated("InvoicePage", InvoiceOut(many=True)),
)
@extend_schema(
    tags=TAG, methods=["POST"], request=InvoiceRequestIn, responses={201: InvoiceOut},
    description=(
        "Request one invoice for several settled orders. Refusals: 400 tax_number_invalid, "
        "tax_number_required, title_required, orders_required, too_many_orders; 404 "
        "order_not_found (not this member's); 409 order_not_settled, order_zero_amount, "
        "order_already_invoiced, invoicing_disabled, invoicing_not_configured."
    ),
)
@api_view(["GET", "POST"])
def invoices(request):
    if request.method == "GET":
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.member_invoices(request.user), request)
        return paginator.get_paginated_response(InvoiceOut(page, many=True).data)
    data = InvoiceRequestIn(data=request.data)
    data.is_valid(raise_exception=True)
    invoice = services.invoice_request(member=request.user, **data.validated_data)
    return Response(InvoiceOut(invoice).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=TAG, responses=InvoiceOut)
@api_view(["GET"])
def invoice_detail(request, pk: int):
    return Response(InvoiceOut(get_object_or_404(selectors.member_invoices(request.user), pk=pk)).data)


@extend_schema(
    tags=TAG,
    responses={
        (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The invoice PDF."),
        409: OpenApiResponse(description="invoice_not_issued"),
    },
)
@api_view(["GET"])
def invoice_pdf_download(request, pk: int):
    """The issued invoice as a PDF (409 ``invoice_not_issued`` before it is issued)."""
    invoice = get_object_or_404(selectors.member_invoices(request.user), pk=pk)
    if invoice.status not in (Invoice.Status.ISSUED, Invoice.Status.REVERSED):
        raise services.InvoiceError("invoice_not_issued", _("This invoice is not issued yet."), 409)
    link = request.build_absolute_uri(f"/api/app/v1/invoices/{invoice.pk}")
    body = invoice_pdf(invoice, services.invoice_settings(), link=link)
    response = HttpResponse(body, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.invoice_no or invoice.number}.pdf"'
    return response
