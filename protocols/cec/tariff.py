"""The domain's tariff as T/CEC 102-2016 price policy (``PolicyInfos``)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from billing.tariffs.pricing import TariffSnapshot, day_runs, slot_time

__all__ = ["to_cec_policy_infos"]


def to_cec_policy_infos(
    snapshot: TariffSnapshot, on_date: date, *, places: int = 4
) -> list[dict[str, Any]]:
    """T/CEC 102 ``PolicyInfos`` for local date ``on_date``.

    Returns ``[{"StartTime": "HHmmss", "ElecPrice": Decimal, "SevicePrice": Decimal}, ...]``
    (the standard's spelling "Sevice"), first at ``"000000"``, each running to the next
    StartTime; prices yuan/kWh rounded HALF_UP to ``places`` decimals (4 in the standard), and
    neighbours with equal rounded prices merged. ``SumPeriod`` is ``len()`` of the result.
    """
    quantum = Decimal(1).scaleb(-places)
    priced = [
        (
            snapshot.price_of(p).electricity.quantize(quantum, rounding=ROUND_HALF_UP),
            snapshot.price_of(p).service.quantize(quantum, rounding=ROUND_HALF_UP),
        )
        for p in snapshot.slots_on(on_date)
    ]
    return [
        {
            "StartTime": slot_time(first).strftime("%H%M%S"),
            "ElecPrice": elec,
            "SevicePrice": service,
        }
        for first, _end, (elec, service) in day_runs(priced)
    ]
