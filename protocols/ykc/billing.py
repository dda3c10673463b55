"""Billing model (计费模型) of YKC 0x0A and 0x58 — reference §3.2 and §3.4.

Body after the pile code (83 bytes): model no. (BCD 2), eight UINT32 LE rates in
0.00001 yuan/kWh — sharp/peak/flat/valley × electricity (电费) then service (服务费) —,
loss ratio (1 byte, "set 0"), and 48 half-hour slot codes (0 sharp, 1 peak, 2 flat, 3 valley;
slot i covers local time [i×30 min, (i+1)×30 min)).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from typing import Any

from .enums import TariffPeriod
from .errors import EncodeError
from .fields import MODEL_NO, RATE, U8, Codec

SLOTS_PER_DAY = 48
_PERIODS = {member.value: member for member in TariffPeriod}


@dataclass(frozen=True, slots=True)
class BillingModel:
    """A YKC tariff: rates in yuan/kWh (``Decimal``, 5 decimals) and 48 half-hour slots.

    ``model_no`` is the 4-digit BCD 计费模型编号 as a string (e.g. ``"0100"``); ``slots[i]``
    is the :class:`TariffPeriod` (or raw int for an unknown code) for half-hour ``i``.
    """

    model_no: str
    sharp_electricity: Decimal
    sharp_service: Decimal
    peak_electricity: Decimal
    peak_service: Decimal
    flat_electricity: Decimal
    flat_service: Decimal
    valley_electricity: Decimal
    valley_service: Decimal
    loss_ratio: int
    slots: tuple[TariffPeriod | int, ...]

    SIZE = 83

    def rates(self, period: TariffPeriod) -> tuple[Decimal, Decimal]:
        """(electricity, service) yuan/kWh of ``period``."""
        name = TariffPeriod(period).name.lower()
        return getattr(self, f"{name}_electricity"), getattr(self, f"{name}_service")

    def unit_price(self, period: TariffPeriod) -> Decimal:
        """Electricity + service yuan/kWh — what the pile reports as 单价 in 0x3B."""
        electricity, service = self.rates(period)
        return electricity + service

    def period_at(self, moment: time) -> TariffPeriod | int:
        """Period that applies at local wall-clock ``moment``."""
        return self.slots[moment.hour * 2 + (1 if moment.minute >= 30 else 0)]

    @classmethod
    def build(
        cls,
        *,
        model_no: str,
        rates: Mapping[TariffPeriod, tuple[Decimal, Decimal]],
        schedule: Iterable[tuple[time, time, TariffPeriod]],
        default: TariffPeriod = TariffPeriod.FLAT,
        loss_ratio: int = 0,
    ) -> BillingModel:
        """Build a model from (electricity, service) yuan/kWh per period and a day schedule.

        ``schedule`` items are ``(start, end, period)`` on half-hour boundaries, ``end`` of
        ``time(0, 0)`` meaning midnight; later items override earlier ones; slots not covered
        get ``default``. Periods missing from ``rates`` get 0. Raises :class:`EncodeError`
        for a bound that is not on a half hour.
        """
        slots: list[TariffPeriod | int] = [default] * SLOTS_PER_DAY
        for start, end, period in schedule:
            first = _slot_index("schedule.start", start)
            last = _slot_index("schedule.end", end) or SLOTS_PER_DAY
            indexes = range(first, last) if first < last else [
                *range(first, SLOTS_PER_DAY), *range(0, last)]
            for index in indexes:
                slots[index] = TariffPeriod(period)
        zero = (Decimal("0.00000"), Decimal("0.00000"))
        sharp, peak, flat, valley = (rates.get(p, zero) for p in TariffPeriod)
        return cls(model_no, sharp[0], sharp[1], peak[0], peak[1], flat[0], flat[1],
                   valley[0], valley[1], loss_ratio, tuple(slots))


def _slot_index(name: str, moment: time) -> int:
    if moment.minute not in (0, 30) or moment.second or moment.microsecond:
        raise EncodeError(name, moment, "not on a half-hour boundary")
    return moment.hour * 2 + moment.minute // 30


def _decode(buf: bytes, off: int) -> BillingModel:
    rate = RATE.dec
    get = _PERIODS.get
    return BillingModel(
        MODEL_NO.dec(buf, off),
        rate(buf, off + 2), rate(buf, off + 6), rate(buf, off + 10), rate(buf, off + 14),
        rate(buf, off + 18), rate(buf, off + 22), rate(buf, off + 26), rate(buf, off + 30),
        buf[off + 34],
        tuple(get(code, code) for code in buf[off + 35:off + 83]),
    )


def _encode(name: str, value: Any) -> bytes:
    if not isinstance(value, BillingModel):
        raise EncodeError(name, value, "expected a BillingModel")
    if len(value.slots) != SLOTS_PER_DAY:
        raise EncodeError(f"{name}.slots", value.slots, "expected 48 half-hour slots")
    parts = [MODEL_NO.enc(f"{name}.model_no", value.model_no)]
    for field in ("sharp_electricity", "sharp_service", "peak_electricity", "peak_service",
                  "flat_electricity", "flat_service", "valley_electricity", "valley_service"):
        parts.append(RATE.enc(f"{name}.{field}", getattr(value, field)))
    parts.append(U8.enc(f"{name}.loss_ratio", value.loss_ratio))
    parts.append(b"".join(U8.enc(f"{name}.slots", int(code) if isinstance(code, TariffPeriod)
                                   else code) for code in value.slots))
    return b"".join(parts)


#: Codec for the 83-byte billing-model block used by 0x0A and 0x58.
BILLING_MODEL = Codec(BillingModel.SIZE, _decode, _encode, kind="billing-model")
