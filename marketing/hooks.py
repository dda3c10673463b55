"""Hooks the other domains call; marketing fills them in (coupons, SVIP, points …)."""

from __future__ import annotations

from decimal import Decimal


def order_discount(*, order, gross: Decimal) -> Decimal:
    """The discount (yuan, 2 dp, ≥ 0) marketing grants on a charging order of ``gross``
    yuan. No campaigns exist yet, so none is granted."""
    return Decimal("0.00")
