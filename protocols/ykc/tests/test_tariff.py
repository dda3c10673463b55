"""A pile's tariff day (the port's TariffDay) ⇄ the YKC billing model: worked examples, bad
input, round trips.

Pure functions: no database is touched (``.venv/bin/pytest protocols/ykc/tests/test_tariff.py``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.tariffs.pricing import TariffSnapshot, flat_tariff, guangdong_tou_tariff
from charging.handlers import tariff_day
from charging.port import TariffDay
from protocols.ykc.tariff import (
    YkcTariffError,
    from_ykc_billing_model,
    to_ykc_billing_model,
    ykc_wire_rates,
)

D = Decimal
price5 = st.integers(min_value=0, max_value=500_000).map(lambda i: D(i).scaleb(-5))
JAN = date(2026, 1, 15)


@pytest.fixture
def gd() -> TariffSnapshot:
    """Guangdong TOU at flat 0.65 + 0.40: sharp 1.38125, peak 1.10500, valley 0.24700."""
    return guangdong_tou_tariff(D("0.65"), D("0.40"))


def test_ykc_model_for_a_summer_day(gd):
    model = to_ykc_billing_model(tariff_day(gd, date(2026, 7, 15)))

    assert model["model_number"] == 1
    assert model["loss_ratio"] == 0
    assert model["rates"] == (
        D("1.38125"), D("1.10500"), D("0.65000"), D("0.24700"),
        D("0.40000"), D("0.40000"), D("0.40000"), D("0.40000"),
    )  # fmt: skip
    assert ykc_wire_rates(model)[:4] == (D("1.38125"), D("0.40000"), D("1.10500"), D("0.40000"))
    assert (
        model["slots"]
        == (3,) * 16
        + (2,) * 4
        + (1, 1, 0, 0)
        + (2,) * 4
        + (1,) * 2
        + (0,) * 4
        + (1,) * 4
        + (2,) * 10
    )
    assert to_ykc_billing_model(tariff_day(gd, JAN))["slots"][22] == 1


def test_ykc_real_push_decodes_and_prices():
    # Frame L4 in the YKC notes: model 0062; sharp 00–08, peak 08–12, flat 12–18, valley 18–24.
    model = {
        "model_number": 62,
        "rates": (
            D("1.00000"), D("1.45000"), D("1.75000"), D("1.72000"),
            D("0.80000"), D("0.20000"), D("0.20000"), D("0.20000"),
        ),
        "loss_ratio": 0,
        "slots": (0,) * 16 + (1,) * 8 + (2,) * 12 + (3,) * 12,
    }  # fmt: skip
    day = from_ykc_billing_model(model)

    assert len(set(day.slots)) == 4  # time of use
    assert sum(day.price_at(26)) == D("1.95000")  # 13:00–13:30 is flat: 1.75 + 0.20
    assert to_ykc_billing_model(day) == model


def test_flat_tariff_is_one_ykc_class():
    day = tariff_day(flat_tariff(D("0.8"), D("0.6")), JAN)

    assert set(to_ykc_billing_model(day)["slots"]) == {2}  # flat
    assert from_ykc_billing_model(to_ykc_billing_model(day)) == day


def test_from_ykc_rejects_bad_slot_codes_and_rates():
    good = to_ykc_billing_model(tariff_day(guangdong_tou_tariff(D("0.65"), D("0.40")), JAN))
    with pytest.raises(YkcTariffError) as err:
        from_ykc_billing_model({**good, "slots": good["slots"][:5] + (4,) + good["slots"][6:]})
    assert err.value.field == "slots[5]"
    with pytest.raises(YkcTariffError) as err:
        from_ykc_billing_model({**good, "rates": good["rates"][:7]})
    assert err.value.field == "rates"
    with pytest.raises(YkcTariffError) as err:
        from_ykc_billing_model(
            {**good, "rates": good["rates"][:5] + (D("0.000001"),) + good["rates"][6:]}
        )
    assert err.value.field.startswith("rates[5]")
    with pytest.raises(YkcTariffError) as err:
        from_ykc_billing_model({**good, "model_number": 10000})
    assert err.value.field == "model_number"
    with pytest.raises(YkcTariffError) as err:
        from_ykc_billing_model({**good, "loss_ratio": 256})
    assert err.value.field == "loss_ratio"


def test_unpriced_periods_go_out_as_zero():
    day = TariffDay(version_number=7, prices={"valley": (D("0.3"), D("0.1"))},
                    slots=("valley",) * 48)
    model = to_ykc_billing_model(day)
    assert model["rates"] == (D("0"),) * 3 + (D("0.30000"),) + (D("0"),) * 3 + (D("0.10000"),)
    assert model["model_number"] == 7


@st.composite
def ykc_models(draw) -> dict:
    slots = tuple(draw(st.lists(st.integers(0, 3), min_size=48, max_size=48)))
    rates = [draw(price5) for _ in range(8)]
    for code in range(4):
        if code not in slots:  # unused classes go out as 0
            rates[code] = rates[code + 4] = D("0.00000")
    return {
        "model_number": draw(st.integers(0, 9999)),
        "rates": tuple(r.quantize(D("0.00001")) for r in rates),
        "loss_ratio": draw(st.integers(0, 255)),
        "slots": slots,
    }


@given(model=ykc_models())
def test_property_ykc_decode_then_encode_is_identity(model):
    assert to_ykc_billing_model(from_ykc_billing_model(model)) == model


@given(model=ykc_models())
def test_property_ykc_encode_then_decode_is_identity(model):
    day = from_ykc_billing_model(model)
    assert from_ykc_billing_model(to_ykc_billing_model(day)) == day
