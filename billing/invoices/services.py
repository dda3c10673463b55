"""Invoicing writes: titles, requests, review, submission to the provider, red-letter
reversal (红冲) on refund and re-issue of what remains.

- Request numbers (``Invoice.number``, the provider's ``orderNo``) are made once and reused
  by every retry of the same request. Before a call the row is marked ``unclear``; only a
  clear answer clears it, and an unclear request is *queried* before it is sent again — so a
  lost answer never becomes a second invoice. A request the provider refused for good
  (FAILED) gets a new number when staff retry it.
- The provider is never called inside a transaction or under a row lock; state changes take
  the invoice's row lock (``select_for_update``) and re-check the state they expect.
- A provider outage leaves the request QUEUED with ``next_try_at`` (backing off to an hour);
  :func:`invoices_reconcile` (beat, per operator) sends it again, so nothing is lost.
- Amounts: :mod:`billing.invoices.amounts`, rounded by :mod:`evplatform.money` only.

Refusals are :class:`InvoiceError` (a DomainError) with the codes listed per function.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Member
from evplatform.errors import DomainError
from evplatform.money import ZERO
from evplatform.queue import task_queue_on_commit

from . import amounts
from .models import Invoice, InvoiceLine, InvoiceOrder, InvoiceSettings, InvoiceTitle, TitleKind
from .nuonuo import NuonuoProvider
from .orders import InvoiceableOrder, order_source
from .provider import (
    FAILED,
    PENDING,
    FapiaoProvider,
    IssueLine,
    IssueRequest,
    IssueResult,
    Party,
    ProviderError,
)
from .uscc import uscc_normalise, uscc_valid

logger = logging.getLogger(__name__)

MAX_ORDERS = 100
S = Invoice.Status

__all__ = [
    "InvoiceError", "invoice_settings", "provider_for", "title_validate", "title_save",
    "title_delete", "invoice_request", "invoice_review", "invoice_submit", "invoice_sync",
    "invoice_callback", "invoice_retry", "invoice_reject", "invoice_order_refunded",
    "invoices_reconcile",
]


class InvoiceError(DomainError):
    code = "invoice_refused"


# --- settings and provider ----------------------------------------------------------------


def invoice_settings() -> InvoiceSettings:
    """The operator's one settings row (made, disabled, on first use)."""
    return InvoiceSettings.load()


def _token_get() -> str | None:
    row = invoice_settings()
    if row.access_token and row.token_expires_at and row.token_expires_at > timezone.now():
        return row.access_token
    return None


def _token_put(token: str, expires_in_s: int) -> None:
    row = invoice_settings()
    row.access_token = token
    # Renew a little early: a token that expires mid-call is an avoidable refusal.
    row.token_expires_at = timezone.now() + timedelta(seconds=max(expires_in_s - 300, 60))
    row.save(update_fields=["access_token", "token_expires_at"])


def provider_for(row: InvoiceSettings) -> FapiaoProvider:
    """The operator's provider adapter."""
    return NuonuoProvider(
        api_url=row.api_url, token_url=row.token_url, app_key=row.app_key,
        app_secret=row.app_secret or "", seller_tax_number=row.seller_tax_number,
        token_get=_token_get, token_put=_token_put,
    )


def _line_specs(row: InvoiceSettings) -> dict[str, amounts.LineSpec]:
    return {
        amounts.ELECTRICITY: amounts.LineSpec(
            amounts.ELECTRICITY, row.electricity_goods_name, row.electricity_goods_code,
            row.electricity_tax_rate,
        ),
        amounts.SERVICE: amounts.LineSpec(
            amounts.SERVICE, row.service_goods_name, row.service_goods_code, row.service_tax_rate
        ),
    }


def _settings_ready() -> InvoiceSettings:
    row = invoice_settings()
    if not row.enabled:
        raise InvoiceError("invoicing_disabled", _("This operator does not issue invoices online."), 409)
    if not (row.seller_tax_number and row.electricity_goods_code and row.service_goods_code):
        raise InvoiceError(
            "invoicing_not_configured", _("Invoicing is not fully configured yet."), 409
        )
    return row


# --- titles ---------------------------------------------------------------------------------


def title_validate(*, kind: str, name: str, tax_number: str) -> str:
    """The normalised tax number. A company title needs a valid USCC (GB 32100 check
    character); a personal one may have none. Raises InvoiceError ``title_required``,
    ``tax_number_required``, ``tax_number_invalid`` (400, with ``fields``)."""
    tax_number = uscc_normalise(tax_number or "")
    if not name.strip():
        raise InvoiceError("title_required", _("Give the invoice title."),
                           fields={"title_name": [_("Required.")]})
    if kind == TitleKind.COMPANY and not tax_number:
        raise InvoiceError(
            "tax_number_required", _("A company title needs its tax number."),
            fields={"tax_number": [_("Required for a company.")]},
        )
    if tax_number and not uscc_valid(tax_number):
        raise InvoiceError(
            "tax_number_invalid",
            _("This is not a valid unified social credit code (18 characters, check digit)."),
            fields={"tax_number": [_("Not a valid unified social credit code.")]},
        )
    return tax_number


@transaction.atomic
def title_save(
    *, member: Member, kind: str, name: str, tax_number: str = "", email: str = "",
    phone: str = "", address: str = "", bank_account: str = "", is_default: bool = False,
    title: InvoiceTitle | None = None,
) -> InvoiceTitle:
    """Create (or, given ``title``, update) a saved title. Raises as :func:`title_validate`."""
    tax_number = title_validate(kind=kind, name=name, tax_number=tax_number)
    if is_default:
        InvoiceTitle.objects.filter(member=member, is_default=True).exclude(
            pk=title.pk if title else None
        ).update(is_default=False)
    title = title or InvoiceTitle(member=member)
    for field, value in dict(
        kind=kind, name=name.strip(), tax_number=tax_number, email=email, phone=phone,
        address=address, bank_account=bank_account, is_default=is_default,
    ).items():
        setattr(title, field, value)
    title.save()
    return title


def title_delete(*, title: InvoiceTitle) -> None:
    title.delete()


# --- requests -------------------------------------------------------------------------------


def _new_number() -> str:
    return f"FP{timezone.now():%y%m%d}{secrets.token_hex(5).upper()}"


def _totals(invoice: Invoice, lines: list[amounts.Line]) -> None:
    invoice.total = sum((line.amount for line in lines), ZERO)
    invoice.amount_ex_tax = sum((line.amount_ex_tax for line in lines), ZERO)
    invoice.tax = sum((line.tax for line in lines), ZERO)


def _save_with_lines(invoice: Invoice, lines: list[amounts.Line]) -> None:
    """Save a new invoice, then its lines (the totals are their sums)."""
    _totals(invoice, lines)
    invoice.save()
    _write_lines(invoice, lines)


def _write_lines(invoice: Invoice, lines: list[amounts.Line]) -> None:
    """Replace the lines of a saved invoice and set its totals (the caller saves it)."""
    invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice, kind=line.kind, goods_name=line.goods_name, goods_code=line.goods_code,
            tax_rate=line.tax_rate, amount=line.amount, amount_ex_tax=line.amount_ex_tax, tax=line.tax,
        )
        for line in lines
    )
    _totals(invoice, lines)


def _amounts_of(orders: Sequence[InvoiceableOrder]) -> list[amounts.OrderAmounts]:
    return [amounts.OrderAmounts(o.number, o.electricity, o.service, o.net) for o in orders]


def _enqueue_submit(invoice: Invoice, countdown: float | None = None) -> None:
    task_queue_on_commit("billing.invoice_submit", invoice.pk, countdown=countdown)


@transaction.atomic
def invoice_request(
    *, member: Member, order_numbers: Sequence[str], title_kind: str, title_name: str,
    email: str, tax_number: str = "", phone: str = "", address: str = "", bank_account: str = "",
    remark: str = "", save_title: bool = False,
) -> Invoice:
    """The member asks for one invoice covering ``order_numbers`` (their settled orders).

    Lines: electricity and service at the operator's rates and codes, summing to the orders'
    net paid total. Issued at once (queued for the provider) or held for review, per the
    operator's settings.

    Raises InvoiceError: ``invoicing_disabled`` / ``invoicing_not_configured`` (409),
    ``orders_required`` / ``too_many_orders`` (400), title errors of :func:`title_validate`
    (400), ``order_not_found`` (404: none such of this member), ``order_not_settled`` (409),
    ``order_zero_amount`` (409: nothing paid after discounts and refunds),
    ``order_already_invoiced`` (409).
    """
    row = _settings_ready()
    numbers = list(dict.fromkeys(n.strip() for n in order_numbers if n and n.strip()))
    if not numbers:
        raise InvoiceError("orders_required", _("Choose at least one order."),
                           fields={"order_numbers": [_("Required.")]})
    if len(numbers) > MAX_ORDERS:
        raise InvoiceError("too_many_orders", _("At most %(n)d orders per invoice.") % {"n": MAX_ORDERS})
    tax_number = title_validate(kind=title_kind, name=title_name, tax_number=tax_number)
    found = {o.number: o for o in order_source().settled_orders(member_id=member.pk, numbers=numbers)}
    for number in numbers:
        order = found.get(number)
        if order is None or order.member_id != member.pk:
            raise InvoiceError("order_not_found", _("No such order: %(n)s.") % {"n": number}, 404)
        if not order.settled:
            raise InvoiceError("order_not_settled", _("Order %(n)s is not settled yet.") % {"n": number}, 409)
        if order.net <= 0:
            raise InvoiceError(
                "order_zero_amount", _("Nothing was paid for order %(n)s.") % {"n": number}, 409
            )
    if InvoiceOrder.objects.filter(order_number__in=numbers, active=True).exists():
        raise InvoiceError("order_already_invoiced", _("An order you chose is already invoiced."), 409)
    orders = [found[n] for n in numbers]
    invoice = Invoice(
        number=_new_number(), member=member, title_kind=title_kind, title_name=title_name.strip(),
        tax_number=tax_number, email=email, phone=phone, address=address,
        bank_account=bank_account, remark=remark[:200],
        status=S.QUEUED if row.auto_issue else S.REVIEW,
    )
    _save_with_lines(invoice, amounts.invoice_lines(_amounts_of(orders), _line_specs(row)))
    try:
        # The partial unique index is the guarantee; the check above only words the refusal.
        with transaction.atomic():
            InvoiceOrder.objects.bulk_create(
                InvoiceOrder(invoice=invoice, order_number=o.number, amount=o.net) for o in orders
            )
    except IntegrityError:
        raise InvoiceError(
            "order_already_invoiced", _("An order you chose is already invoiced."), 409
        ) from None
    if save_title and not InvoiceTitle.objects.filter(
        member=member, kind=title_kind, name=invoice.title_name, tax_number=tax_number
    ).exists():
        title_save(member=member, kind=title_kind, name=title_name, tax_number=tax_number,
                   email=email, phone=phone, address=address, bank_account=bank_account)
    if invoice.status == S.QUEUED:
        _enqueue_submit(invoice)
    return invoice


def _lock(invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice_id)


@transaction.atomic
def invoice_review(
    *, invoice: Invoice, approve: bool, reviewer: AbstractBaseUser | None, note: str = ""
) -> Invoice:
    """Staff approve (queue for issue) or reject (its orders become invoiceable again) a
    request waiting for review. Raises InvoiceError ``not_in_review`` (409)."""
    invoice = _lock(invoice.pk)
    if invoice.status != S.REVIEW:
        raise InvoiceError("not_in_review", _("This invoice is not waiting for review."), 409)
    invoice.reviewed_by, invoice.reviewed_at, invoice.review_note = reviewer, timezone.now(), note[:200]
    invoice.status = S.QUEUED if approve else S.REJECTED
    invoice.save(update_fields=["reviewed_by", "reviewed_at", "review_note", "status"])
    if approve:
        _enqueue_submit(invoice)
    else:
        invoice.orders.update(active=False)
    return invoice


@transaction.atomic
def invoice_reject(*, invoice: Invoice, user: AbstractBaseUser | None, note: str = "") -> Invoice:
    """Staff give up on a failed request: its orders become invoiceable again. A red-letter
    reversal is owed once its refund happened: it can be retried, not rejected.
    Raises InvoiceError ``not_failed``, ``reversal_required`` (409)."""
    invoice = _lock(invoice.pk)
    if invoice.status not in (S.FAILED, S.REVIEW):
        raise InvoiceError("not_failed", _("Only failed requests can be rejected."), 409)
    if invoice.kind == Invoice.Kind.RED:
        raise InvoiceError(
            "reversal_required", _("A refund must be reversed on the invoice: retry it instead."), 409
        )
    invoice.status, invoice.reviewed_by, invoice.reviewed_at = S.REJECTED, user, timezone.now()
    invoice.review_note = note[:200]
    invoice.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
    if invoice.kind == Invoice.Kind.BLUE:
        invoice.orders.update(active=False)
    return invoice


@transaction.atomic
def invoice_retry(*, invoice: Invoice, user: AbstractBaseUser | None = None) -> Invoice:
    """Staff send a failed request again, under a new request number (the provider closed
    the old one), with amounts recomputed for refunds since. Raises InvoiceError
    ``not_failed`` (409)."""
    invoice = _lock(invoice.pk)
    if invoice.status != S.FAILED:
        raise InvoiceError("not_failed", _("Only failed requests can be retried."), 409)
    invoice.number = _new_number()
    invoice.status, invoice.unclear, invoice.last_error, invoice.next_try_at = S.QUEUED, False, "", None
    if invoice.kind == Invoice.Kind.BLUE and not _rebuild(invoice):
        return invoice
    invoice.save()
    _enqueue_submit(invoice)
    return invoice


def _rebuild(invoice: Invoice) -> bool:
    """Recompute a not-yet-issued blue invoice from its orders as they are now (refunds).
    Returns False (and rejects it) when nothing is left to invoice."""
    active = list(invoice.orders.filter(active=True))
    current = {
        o.number: o
        for o in order_source().settled_orders(
            member_id=invoice.member_id, numbers=[o.order_number for o in active]
        )
    }
    left = [current[o.order_number] for o in active if o.order_number in current and current[o.order_number].net > 0]
    for link in active:
        order = current.get(link.order_number)
        if order is None or order.net <= 0:
            link.active = False
            link.save(update_fields=["active"])
        elif link.amount != order.net:
            link.amount = order.net
            link.save(update_fields=["amount"])
    invoice.needs_reversal = False
    if not left:
        invoice.status = S.REJECTED
        invoice.review_note = _("Nothing left to invoice after refunds.")
        invoice.save()
        return False
    _write_lines(invoice, amounts.invoice_lines(_amounts_of(left), _line_specs(invoice_settings())))
    invoice.save()
    return True


# --- talking to the provider ------------------------------------------------------------------


def _issue_request(invoice: Invoice, row: InvoiceSettings) -> IssueRequest:
    red_of = None
    if invoice.kind == Invoice.Kind.RED and invoice.original_id:
        red_of = (invoice.original.invoice_code, invoice.original.invoice_no)
    callback = ""
    if row.callback_base_url:
        slug = getattr(connection.tenant, "slug", "")
        callback = f"{row.callback_base_url.rstrip('/')}/api/pay/notify/{slug}/fapiao"
    return IssueRequest(
        number=invoice.number,
        red=invoice.kind == Invoice.Kind.RED,
        buyer=Party(invoice.title_name, invoice.tax_number, invoice.address, invoice.phone,
                    invoice.bank_account, invoice.email),
        seller=Party(row.seller_name, row.seller_tax_number, row.seller_address, row.seller_phone,
                     row.seller_bank_account),
        clerk=row.clerk,
        invoice_line=row.invoice_line,
        lines=tuple(
            IssueLine(line.goods_name, line.goods_code, line.tax_rate, line.amount,
                      line.amount_ex_tax, line.tax)
            for line in invoice.lines.all()
        ),
        issued_on=timezone.localtime(invoice.created_at),
        callback_url=callback,
        remark=invoice.remark,
        red_of=red_of,
    )


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def invoice_submit(*, invoice_id: int, provider: FapiaoProvider | None = None) -> Invoice:
    """Send a QUEUED request to the provider (query first if an earlier try was unclear).
    A clear answer moves it on; an unclear one (or an outage) keeps it QUEUED for a later
    try. Never raises for provider trouble."""
    with transaction.atomic():
        invoice = _lock(invoice_id)
        if invoice.status != S.QUEUED:
            return invoice
        if invoice.kind == Invoice.Kind.BLUE and invoice.needs_reversal and not _rebuild(invoice):
            return invoice  # refunded before it was ever sent: nothing to reverse
        ask_first = invoice.unclear
        invoice.attempts += 1
        invoice.unclear = True  # until a clear answer: a crash mid-call means "ask first"
        invoice.next_try_at = timezone.now() + _backoff(invoice.attempts)
        invoice.save(update_fields=["attempts", "unclear", "next_try_at"])
    row = invoice_settings()
    provider = provider or provider_for(row)
    try:
        result = provider.query(invoice.number) if ask_first else None
        if result is None:
            result = provider.issue(_issue_request(invoice, row))
    except ProviderError as exc:
        if exc.unclear:
            logger.warning("invoice %s: unclear answer, will ask: %s", invoice.number, exc)
            Invoice.objects.filter(pk=invoice.pk).update(last_error=str(exc)[:300])
            with transaction.atomic():
                _enqueue_submit(invoice, countdown=_backoff(invoice.attempts).total_seconds())
            invoice.refresh_from_db()
            return invoice
        logger.error("invoice %s refused: %s", invoice.number, exc)
        result = IssueResult(FAILED, message=str(exc))
    return _apply(invoice.pk, result)


def invoice_sync(*, invoice_id: int, provider: FapiaoProvider | None = None) -> Invoice:
    """Ask the provider where a submitted (or unclear) request is, and apply it."""
    invoice = Invoice.objects.get(pk=invoice_id)
    if invoice.status == S.QUEUED:
        return invoice_submit(invoice_id=invoice_id, provider=provider)
    if invoice.status != S.SUBMITTED:
        return invoice
    provider = provider or provider_for(invoice_settings())
    try:
        result = provider.query(invoice.number)
    except ProviderError as exc:
        invoice.last_error = str(exc)[:300]
        Invoice.objects.filter(pk=invoice.pk).update(last_error=invoice.last_error)
        return invoice
    if result is None:
        # Accepted once, unknown now: send it again under the same number.
        Invoice.objects.filter(pk=invoice.pk, status=S.SUBMITTED).update(status=S.QUEUED, unclear=False)
        return invoice_submit(invoice_id=invoice_id, provider=provider)
    return _apply(invoice.pk, result)


def invoice_callback(*, body: bytes, content_type: str, provider: FapiaoProvider | None = None) -> Invoice | None:
    """The provider says a request is done: find it and *query* (the call-back is unsigned).
    Returns None when it names no request of ours."""
    provider = provider or provider_for(invoice_settings())
    number = provider.callback_number(body, content_type)
    invoice = Invoice.objects.filter(number=number).first() if number else None
    if invoice is None:
        return None
    return invoice_sync(invoice_id=invoice.pk, provider=provider)


@transaction.atomic
def _apply(invoice_id: int, result: IssueResult) -> Invoice:
    invoice = _lock(invoice_id)
    if invoice.status not in (S.QUEUED, S.SUBMITTED):
        return invoice  # already final (a late answer or a repeated call-back)
    invoice.unclear = False
    invoice.provider_serial = result.serial or invoice.provider_serial
    fields = ["unclear", "provider_serial", "status", "last_error", "next_try_at"]
    if result.status == PENDING:
        invoice.status, invoice.submitted_at = S.SUBMITTED, invoice.submitted_at or timezone.now()
        invoice.last_error, invoice.next_try_at = "", timezone.now() + timedelta(minutes=2)
        invoice.save(update_fields=[*fields, "submitted_at"])
        return invoice
    if result.status == FAILED:
        invoice.status, invoice.last_error, invoice.next_try_at = S.FAILED, result.message[:300], None
        invoice.save(update_fields=fields)
        return invoice
    invoice.status, invoice.last_error, invoice.next_try_at = S.ISSUED, "", None
    invoice.invoice_code, invoice.invoice_no = result.invoice_code, result.invoice_no
    invoice.pdf_url, invoice.issued_at = result.pdf_url, result.issued_at or timezone.now()
    invoice.save(update_fields=[*fields, "invoice_code", "invoice_no", "pdf_url", "issued_at"])
    if invoice.kind == Invoice.Kind.RED:
        _reversal_done(invoice)
    elif invoice.needs_reversal:
        _reversal_start(invoice)
    return invoice


# --- refunds: 红冲 and re-issue -----------------------------------------------------------------


def invoice_order_refunded(*, order_number: str) -> Invoice | None:
    """Charging refunded (part of) order ``order_number``: the live invoice holding it is
    corrected — recomputed if not yet issued, red-reversed (then re-issued for what remains)
    if issued, or marked to be reversed as soon as an in-flight request is issued. Call it
    inside the refund's transaction. Returns the invoice concerned, or None."""
    link = InvoiceOrder.objects.filter(order_number=order_number, active=True).first()
    if link is None:
        return None
    with transaction.atomic():
        invoice = _lock(link.invoice_id)
        invoice.needs_reversal = True
        invoice.save(update_fields=["needs_reversal"])
        if invoice.status in (S.REVIEW, S.FAILED):
            _rebuild(invoice)
        elif invoice.status == S.ISSUED:
            _reversal_start(invoice)
        # QUEUED: rebuilt before it is sent; SUBMITTED: reversed once issued (_apply).
    return invoice


def _reversal_start(blue: Invoice) -> Invoice:
    """Queue the red-letter invoice that reverses ``blue`` in full (inside a transaction)."""
    existing = Invoice.objects.filter(original=blue, kind=Invoice.Kind.RED).first()
    if existing is not None:
        return existing
    red = Invoice.objects.create(
        number=f"{blue.number}H", kind=Invoice.Kind.RED, original=blue, member_id=blue.member_id,
        title_kind=blue.title_kind, title_name=blue.title_name, tax_number=blue.tax_number,
        email=blue.email, phone=blue.phone, address=blue.address, bank_account=blue.bank_account,
        remark=_("Reverses invoice %(no)s (refund).") % {"no": blue.invoice_no}, status=S.QUEUED,
        total=-blue.total, amount_ex_tax=-blue.amount_ex_tax, tax=-blue.tax,
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(invoice=red, kind=line.kind, goods_name=line.goods_name,
                    goods_code=line.goods_code, tax_rate=line.tax_rate, amount=-line.amount,
                    amount_ex_tax=-line.amount_ex_tax, tax=-line.tax)
        for line in blue.lines.all()
    )
    _enqueue_submit(red)
    return red


def _reversal_done(red: Invoice) -> Invoice | None:
    """The red invoice is issued: the blue one is reversed, its orders free, and a new blue
    invoice is requested for what the member still paid on them (same title)."""
    blue = _lock(red.original_id)
    blue.status, blue.needs_reversal = S.REVERSED, False
    blue.save(update_fields=["status", "needs_reversal"])
    numbers = list(blue.orders.filter(active=True).values_list("order_number", flat=True))
    blue.orders.update(active=False)
    left = [
        o for o in order_source().settled_orders(member_id=blue.member_id, numbers=numbers)
        if o.settled and o.net > 0
    ]
    if not left:
        return None
    row = invoice_settings()
    again = Invoice(
        number=_new_number(), member_id=blue.member_id, replaces=blue, title_kind=blue.title_kind,
        title_name=blue.title_name, tax_number=blue.tax_number, email=blue.email, phone=blue.phone,
        address=blue.address, bank_account=blue.bank_account, remark=blue.remark,
        status=S.QUEUED if row.auto_issue else S.REVIEW,
    )
    _save_with_lines(again, amounts.invoice_lines(_amounts_of(left), _line_specs(row)))
    InvoiceOrder.objects.bulk_create(
        InvoiceOrder(invoice=again, order_number=o.number, amount=o.net) for o in left
    )
    if again.status == S.QUEUED:
        _enqueue_submit(again)
    return again


# --- the periodic job -----------------------------------------------------------------------


def invoices_reconcile(*, now: datetime | None = None, provider: FapiaoProvider | None = None) -> dict[str, int]:
    """Finish what was lost: QUEUED requests due again are sent (asked first when unclear),
    SUBMITTED ones past their wait are queried, ISSUED ones owing a reversal get it.
    Returns counts per kind."""
    now = now or timezone.now()
    counts = {"submitted": 0, "queried": 0, "reversed": 0}
    due = Invoice.objects.filter(next_try_at__lte=now) | Invoice.objects.filter(next_try_at__isnull=True)
    for pk in due.filter(status=S.QUEUED).values_list("pk", flat=True):
        invoice_submit(invoice_id=pk, provider=provider)
        counts["submitted"] += 1
    for pk in due.filter(status=S.SUBMITTED).values_list("pk", flat=True):
        invoice_sync(invoice_id=pk, provider=provider)
        counts["queried"] += 1
    for pk in Invoice.objects.filter(
        status=S.ISSUED, kind=Invoice.Kind.BLUE, needs_reversal=True
    ).exclude(reversals__isnull=False).values_list("pk", flat=True):
        with transaction.atomic():
            _reversal_start(_lock(pk))
        counts["reversed"] += 1
    return counts
