"""The demo operator's tariff: Guangdong time-of-use, made through the tariffs services."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils.translation import gettext as _

from billing.tariffs import pricing
from billing.tariffs.models import Tariff
from billing.tariffs.services import station_tariff_assign, tariff_create, tariff_version_publish
from stations.models import Station

__all__ = ["DEMO_TARIFF_NAME", "GUANGDONG_TOU_SINCE", "tariff_create_guangdong_demo"]

DEMO_TARIFF_NAME = "广东分时电价（演示）"
# 粤发改价格〔2021〕331号 took effect on 1 October 2021.
GUANGDONG_TOU_SINCE = datetime(2021, 10, 1, tzinfo=ZoneInfo("Asia/Shanghai"))


@transaction.atomic
def tariff_create_guangdong_demo(
    *,
    stations: Iterable[Station] = (),
    flat_electricity: Decimal = Decimal("0.60000"),
    service: Decimal = Decimal("0.40000"),
    critical_peak_days: Iterable[date] = (),
    effective_from: datetime | None = None,
    created_by=None,
    name: str = DEMO_TARIFF_NAME,
) -> Tariff:
    """The Guangdong TOU tariff (pricing.guangdong_tou_tariff: peak ×1.7, valley ×0.38,
    sharp in July–September and on ``critical_peak_days``; yuan/kWh) with an occupancy fee
    (0.50 yuan/min after 15 min, capped at 30 yuan) and a 1-yuan minimum, published from
    ``effective_from`` (default: 2021-10-01, when the Guangdong rule took effect) and made the default of ``stations``.

    Idempotent by ``name``: an existing tariff of that name is reused (and published only if
    it has no version), so demo seeding can run repeatedly. Returns the tariff.
    """
    snapshot = pricing.guangdong_tou_tariff(
        flat_electricity,
        service,
        critical_peak_days=critical_peak_days,
        occupancy=pricing.OccupancyFee(Decimal("0.50000"), 15, Decimal("30.00")),
        minimum_charge=Decimal("1.00"),
    )
    tariff = Tariff.objects.filter(name=name).first()
    if tariff is None:
        tariff = tariff_create(
            name=name,
            draft=snapshot,
            description=_("Guangdong time-of-use grid price plus a flat service fee."),
        )
    if not tariff.versions.exists():
        tariff_version_publish(
            tariff=tariff,
            effective_from=effective_from or GUANGDONG_TOU_SINCE,
            created_by=created_by,
        )
    stations = list(stations)
    if stations:
        station_tariff_assign(stations=stations, tariff=tariff)
    return tariff
