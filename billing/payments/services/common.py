"""What the payments services share: their refusals, row locks, the operator's WeChat Pay
gateway, outbound ids."""

from __future__ import annotations

import logging
import secrets
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext as _

from evplatform.errors import DomainError
from settlement.models import Account
from tenants.models import MiniProgram

from ..wechatpay import Gateway, PayNotConfigured, gateway_for

logger = logging.getLogger("billing.payments.services")

REFUND_TRANSIT = Account.Kind.REFUND_TRANSIT
WITHDRAWAL_TRANSIT = Account.Kind.WITHDRAWAL_TRANSIT


class BillingError(DomainError):
    """A payments refusal with a stable ``code`` and the HTTP ``status`` (400 unless given)."""


class NotificationMismatch(Exception):
    """A verified notification that does not match our record (answered 4xx, flagged)."""


def _locked(model: type[Model], *pks: int) -> list:
    """Row-lock ``model`` rows in primary-key order (the billing app's one lock helper)."""
    return list(model.objects.select_for_update().filter(pk__in=pks).order_by("pk"))


def _mini_program() -> MiniProgram:
    mp = MiniProgram.objects.select_related("operator").filter(
        operator__schema_name=connection.schema_name
    ).first()
    if mp is None:
        raise BillingError("pay_not_configured", _("WeChat Pay is not set up."), 409)
    return mp


def _gateway(*, partner: bool | None = None) -> Gateway:
    """The operator's WeChat Pay gateway: in its current mode, or (``partner``) the mode a
    payment was made in. Raises BillingError 409 ``pay_not_configured``,
    ``sp_not_configured`` (service-provider mode without the platform's provider account),
    ``sub_mchid_missing`` (service-provider mode without the operator's sub_mchid)."""
    try:
        return gateway_for(_mini_program(), partner=partner)
    except PayNotConfigured as exc:
        messages = {
            "sp_not_configured": _("The platform's WeChat Pay service-provider account is not set up."),
            "sub_mchid_missing": _("Service-provider mode is on, but the operator's sub-merchant id "
                                   "(sub_mchid) is missing."),
        }
        raise BillingError(
            exc.code, messages.get(exc.code, _("WeChat Pay is not set up.")), 409
        ) from None


def _payment_gateway(payment) -> Gateway:
    """The gateway in the mode ``payment`` (a Payment) was made in: its refunds, queries
    and splits go the same way even after the operator switches mode."""
    return _gateway(partner=bool(payment.sp_mchid))


def commission_by_sharing(gateway: Gateway) -> bool:
    """Whether the platform's commission on this gateway's pay-per-order payments is taken
    by service-provider profit sharing: partner mode, the provider says so, and the
    operator pays a commission."""
    from tenants.models import ServiceProvider

    if not gateway.partner or not gateway.mini_program.operator.commission_percent:
        return False
    sp = ServiceProvider.current()
    return bool(sp and sp.commission_by_profit_sharing)


def _new_no(prefix: str) -> str:
    return f"{prefix}{timezone.now():%y%m%d%H%M}{secrets.token_hex(6).upper()}"


def _flag(model: type[Model], pk: int, reason: str) -> None:
    # Committed on its own: a mismatch must stay visible although the notification fails.
    model.objects.filter(pk=pk).update(flagged=True, flag_reason=reason[:200])
    logger.error("%s %s flagged: %s", model.__name__, pk, reason)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    """The operator-local day ``day`` as [start, end) aware datetimes (bill days)."""
    from settlement.statements import operator_zone

    start = datetime.combine(day, time(0), operator_zone())
    return start, start + timedelta(days=1)
