"""The pricing engine's two errors, each naming the field at fault."""

from __future__ import annotations


class TariffError(ValueError):
    """A tariff snapshot (or its dict / YKC form) is invalid; ``.field`` names the culprit.

    ``field`` is a path such as ``"slots[17]"``, ``"prices.peak.electricity"`` or
    ``"seasons[0].start_month"``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class PricingError(ValueError):
    """Engine input (energies, meter readings, instants) is invalid; ``.field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
