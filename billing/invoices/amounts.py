"""What an invoice says, computed from orders: pure functions, ``Decimal`` yuan, rounded only
by :mod:`evplatform.money`.

1. Each order's net paid amount (paid − refunded; discounts were never paid) is split into an
   electricity part and a service part (service fee plus occupancy fee) in proportion to the
   order's bill, rounded once: ``electricity = yuan(net · e / (e + s))``, service the rest — so
   the two parts always sum to the net amount.
2. The invoice has one line per kind with a non-zero amount: the sum of its parts
   (tax-inclusive, 含税).
3. Per line, the rule: ``tax = yuan(amount · rate / (1 + rate))``,
   ``amount_ex_tax = amount − tax``. Lines therefore sum exactly to the orders' paid total,
   and ``|amount_ex_tax · rate − tax| ≤ 0.01`` (the providers' check on 税额).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from evplatform.money import ZERO, yuan

__all__ = ["OrderAmounts", "LineSpec", "Line", "order_split", "line_tax", "invoice_lines"]

ELECTRICITY = "electricity"
SERVICE = "service"


@dataclass(frozen=True)
class OrderAmounts:
    """One order's bill (yuan): ``electricity``, ``service`` (incl. occupancy), ``net`` paid."""

    number: str
    electricity: Decimal
    service: Decimal
    net: Decimal


@dataclass(frozen=True)
class LineSpec:
    """The operator's configuration of one line kind: goods name, 税收分类编码, rate (0.13)."""

    kind: str
    goods_name: str
    goods_code: str
    tax_rate: Decimal


@dataclass(frozen=True)
class Line:
    kind: str
    goods_name: str
    goods_code: str
    tax_rate: Decimal
    amount: Decimal  # tax-inclusive
    amount_ex_tax: Decimal
    tax: Decimal


def order_split(order: OrderAmounts) -> tuple[Decimal, Decimal]:
    """(electricity, service) parts of ``order.net`` in yuan; they sum to ``order.net``."""
    billed = order.electricity + order.service
    net = yuan(order.net)
    if net <= 0:
        return ZERO, ZERO
    if billed <= 0:
        return ZERO, net
    electricity = yuan(net * order.electricity / billed)
    return electricity, net - electricity


def line_tax(amount: Decimal, rate: Decimal) -> tuple[Decimal, Decimal]:
    """(amount_ex_tax, tax) of a tax-inclusive ``amount`` at ``rate`` (0.13 for 13%)."""
    tax = yuan(amount * rate / (1 + rate))
    return amount - tax, tax


def invoice_lines(orders: Iterable[OrderAmounts], specs: dict[str, LineSpec]) -> list[Line]:
    """The invoice's lines (electricity first) for ``orders``; ``specs`` by kind. A kind whose
    sum is zero gets no line. The lines' ``amount`` sums to Σ ``order.net``."""
    sums = {ELECTRICITY: ZERO, SERVICE: ZERO}
    for order in orders:
        electricity, service = order_split(order)
        sums[ELECTRICITY] += electricity
        sums[SERVICE] += service
    lines = []
    for kind in (ELECTRICITY, SERVICE):
        if sums[kind] <= 0:
            continue
        spec = specs[kind]
        ex_tax, tax = line_tax(sums[kind], spec.tax_rate)
        lines.append(Line(kind, spec.goods_name, spec.goods_code, spec.tax_rate, sums[kind], ex_tax, tax))
    return lines
