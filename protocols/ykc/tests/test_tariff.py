"""The domain's tariff ⇄ the YKC billing model: worked examples, bad input, round trips.

Pure functions: no database is touched (``.venv/bin/pytest protocols/ykc/tests/test_tariff.py``).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.tariffs.pricing import (
    Period,
    TariffError,
    TariffKind,
    TariffSnapshot,
    flat_tariff,
    guangdong_tou_tariff,
    price_at,
)
from protocols.ykc.tariff import from_ykc_billing_model, to_ykc_billing_model, ykc_wire_rates

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")
price5 = st.integers(min_value=0, max_value=500_000).map(lambda i: D(i).scaleb(-5))


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def gd() -> TariffSnapshot:
    """Guangdong TOU at flat 0.65 + 0.40: sharp 1.38125, peak 1.10500, valley 0.24700."""
    return guangdong_tou_tariff(D("0.65"), D("0.40"))


def test_ykc_model_for_a_summer_day(gd):
    model = to_ykc_billing_model(gd, date(2026, 7, 15))

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
    assert to_ykc_billing_model(gd, date(2026, 1, 15))["slots"][22] == 1


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
    tariff = from_ykc_billing_model(model)

    assert tariff.kind is TariffKind.TOU
    assert price_at(tariff, sh(2026, 5, 1, 13, 0)).total == D("1.95000")
    assert to_ykc_billing_model(tariff) == model


def test_flat_tariff_is_one_ykc_class():
    tariff = flat_tariff(D("0.8"), D("0.6"))

    assert set(to_ykc_billing_model(tariff)["slots"]) == {Period.FLAT.code}
    assert from_ykc_billing_model(to_ykc_billing_model(tariff)) == tariff


def test_from_ykc_rejects_bad_slot_codes_and_rates():
    good = to_ykc_billing_model(guangdong_tou_tariff(D("0.65"), D("0.40")))
    with pytest.raises(TariffError) as err:
        from_ykc_billing_model({**good, "slots": good["slots"][:5] + (4,) + good["slots"][6:]})
    assert err.value.field == "slots[5]"
    with pytest.raises(TariffError) as err:
        from_ykc_billing_model({**good, "rates": good["rates"][:7]})
    assert err.value.field == "rates"
    with pytest.raises(TariffError) as err:
        from_ykc_billing_model(
            {**good, "rates": good["rates"][:5] + (D("0.000001"),) + good["rates"][6:]}
        )
    assert err.value.field.startswith("rates[5]")


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


@given(model=ykc_models(), tz=st.sampled_from(["Asia/Shanghai", "Asia/Urumqi", "Europe/Berlin"]))
def test_property_ykc_encode_then_decode_is_identity(model, tz):
    snapshot = from_ykc_billing_model(model, timezone=tz)
    again = from_ykc_billing_model(to_ykc_billing_model(snapshot), timezone=tz)
    assert again == snapshot
    assert TariffSnapshot.from_dict(json.loads(json.dumps(snapshot.to_dict()))) == snapshot
