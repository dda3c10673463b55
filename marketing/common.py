"""What marketing's services share: the error type, the operator's clock, ledger gifts."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone

from evplatform.errors import DomainError
from evplatform.money import yuan
from settlement import services as ledger
from settlement.models import Account, Posting


class MarketingError(DomainError):
    """A refused marketing request (coupon, SVIP, points, scratch card, point card)."""

    code = "marketing_refused"


def operator_zone() -> zoneinfo.ZoneInfo:
    """The current operator's time zone (coupon time-of-day scopes, points bonus days)."""
    name = getattr(getattr(connection, "tenant", None), "time_zone", None) or settings.TIME_ZONE
    return zoneinfo.ZoneInfo(name)


def local(at: datetime | None = None) -> datetime:
    return timezone.localtime(at or timezone.now(), operator_zone())


def gift_to_bonus(*, member, amount: Decimal, key: str, ref: str, memo: str) -> Posting:
    """Credit ``amount`` yuan of wallet bonus as a promotion expense (points mall, scratch
    card prize, a gift point card). Idempotent by ``key``."""
    promotion = ledger.system_account(Account.Kind.PROMOTION)
    bonus = ledger.member_accounts(member).bonus
    return ledger.posting_create(
        key=key, kind=Posting.Kind.GIFT, lines=[(promotion, yuan(amount)), (bonus, -yuan(amount))],
        member=member, ref=ref[:64], memo=memo,
    )
