"""The one money module: yuan 0.01, unit prices 0.00001, kWh 0.0001, all ROUND_HALF_UP."""

from decimal import Decimal

import pytest

from evplatform import money

D = Decimal


def test_yuan_is_half_up_to_cents_once():
    assert money.yuan(D("23.625")) == D("23.63")
    assert money.yuan(D("0.005")) == D("0.01")
    assert money.yuan(D("0.0049999")) == D("0.00")
    assert str(money.yuan(D("13"))) == "13.00"
    assert money.yuan(D("1.005")) == D("1.01") and money.yuan(D("1.004")) == D("1.00")
    assert money.yuan("-1.005") == D("-1.01")  # half away from zero, as refunds need


def test_unit_price_and_kwh_places():
    assert str(money.unit_price(D("1.234565"))) == "1.23457"
    assert str(money.unit_price(D("0.6"))) == "0.60000"
    assert str(money.kwh(D("12.34565"))) == "12.3457"
    assert str(money.kwh(7)) == "7.0000"
    assert str(money.ZERO) == "0.00" and str(money.ZERO_KWH) == "0.0000"


def test_fen_round_trip():
    assert money.to_fen(D("12.34")) == 1234
    assert money.to_fen(D("0.005")) == 1
    assert money.from_fen(1234) == D("12.34") and str(money.from_fen(5)) == "0.05"


@pytest.mark.parametrize("fn", [money.yuan, money.unit_price, money.kwh])
def test_floats_are_refused(fn):
    with pytest.raises(TypeError):
        fn(1.5)
