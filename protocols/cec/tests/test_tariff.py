"""The domain's tariff as T/CEC 102 PolicyInfos."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from billing.tariffs.pricing import flat_tariff, guangdong_tou_tariff
from charging.handlers import tariff_day
from protocols.cec.tariff import to_cec_policy_infos

D = Decimal


def test_cec_policy_infos_start_at_midnight_and_merge_equal_neighbours():
    gd = guangdong_tou_tariff(D("0.65"), D("0.40"))
    infos = to_cec_policy_infos(tariff_day(gd, date(2026, 1, 1)))

    assert infos[0] == {"StartTime": "000000", "ElecPrice": D("0.2470"), "SevicePrice": D("0.4000")}
    assert [i["StartTime"] for i in infos] == [
        "000000", "080000", "100000", "120000", "140000", "190000",
    ]  # fmt: skip
    summer = to_cec_policy_infos(tariff_day(gd, date(2026, 7, 1)))
    assert [i["StartTime"] for i in summer] == [
        "000000", "080000", "100000", "110000", "120000", "140000", "150000", "170000", "190000",
    ]  # fmt: skip
    assert summer[3]["ElecPrice"] == D("1.3813")  # 1.38125 at the standard's 4 dp
    assert to_cec_policy_infos(tariff_day(gd, date(2026, 7, 1)), places=5)[3]["ElecPrice"] == D("1.38125")


def test_flat_tariff_is_one_policy():
    tariff = flat_tariff(D("0.8"), D("0.6"))

    assert to_cec_policy_infos(tariff_day(tariff, date(2026, 1, 1))) == [
        {"StartTime": "000000", "ElecPrice": D("0.8000"), "SevicePrice": D("0.6000")}
    ]
