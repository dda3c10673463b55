"""A pile's tariff day (``charging.port.TariffDay``) as T/CEC 102-2016 price policy
(``PolicyInfos``)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from charging.port import TariffDay

__all__ = ["to_cec_policy_infos"]


def to_cec_policy_infos(day: TariffDay, *, places: int = 4) -> list[dict[str, Any]]:
    """T/CEC 102 ``PolicyInfos`` for one local day (ask the port for the day with
    ``PileTariffQuery(pile_code, on_date)``).

    Returns ``[{"StartTime": "HHmmss", "ElecPrice": Decimal, "SevicePrice": Decimal}, ...]``
    (the standard's spelling "Sevice"), first at ``"000000"``, each running to the next
    StartTime; prices yuan/kWh rounded HALF_UP to ``places`` decimals (4 in the standard), and
    neighbours with equal rounded prices merged. ``SumPeriod`` is ``len()`` of the result.
    Raises KeyError when a slot names a period the day does not price.
    """
    quantum = Decimal(1).scaleb(-places)
    infos: list[dict[str, Any]] = []
    for slot in range(len(day.slots)):
        elec, service = (p.quantize(quantum, rounding=ROUND_HALF_UP) for p in day.price_at(slot))
        if infos and (infos[-1]["ElecPrice"], infos[-1]["SevicePrice"]) == (elec, service):
            continue
        minutes = slot * 30
        infos.append({"StartTime": f"{minutes // 60:02d}{minutes % 60:02d}00",
                      "ElecPrice": elec, "SevicePrice": service})
    return infos
