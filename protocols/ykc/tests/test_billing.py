"""Billing model 0x0A / 0x58 (reference §3.4)."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

import pytest

from protocols.ykc import (
    BillingModel,
    BillingModelReply,
    EncodeError,
    SetBillingModel,
    TariffPeriod,
    decode_frame,
    encode_frame,
)

S, P, F, V = TariffPeriod


def _l4_like() -> BillingModel:
    """The decoded real push of §3.4 (frame L4): model 0062, 4 periods over the day."""
    return BillingModel.build(
        model_no="0062",
        rates={S: (Decimal("1.00000"), Decimal("0.80000")),
               P: (Decimal("1.45000"), Decimal("0.20000")),
               F: (Decimal("1.75000"), Decimal("0.20000")),
               V: (Decimal("1.72000"), Decimal("0.20000"))},
        schedule=[(time(0), time(8), S), (time(8), time(12), P), (time(12), time(18), F),
                  (time(18), time(0), V)],
    )


def test_build_slots_and_prices():
    model = _l4_like()
    assert model.slots == (S,) * 16 + (P,) * 8 + (F,) * 12 + (V,) * 12
    assert model.unit_price(S) == Decimal("1.80000")
    assert model.rates(P) == (Decimal("1.45000"), Decimal("0.20000"))
    assert model.period_at(time(11, 59)) is P
    assert model.period_at(time(23, 30)) is V


def test_set_billing_model_body_layout():
    data = encode_frame(SetBillingModel(pile_code="32010200000001", billing_model=_l4_like()))
    assert data[1] == 0x5E
    body = data[6:-2]
    assert body[7:9] == bytes.fromhex("0062")
    assert body[9:13] == (100000).to_bytes(4, "little")       # sharp electricity 1.00000
    assert body[13:17] == (80000).to_bytes(4, "little")       # sharp service 0.80000
    assert body[37:41] == (20000).to_bytes(4, "little")       # valley service
    assert body[41] == 0                                       # loss ratio
    assert body[42:] == bytes([0] * 16 + [1] * 8 + [2] * 12 + [3] * 12)
    assert decode_frame(data).message.billing_model == _l4_like()


def test_billing_model_reply_roundtrip():
    message = BillingModelReply(pile_code="55031412782305", billing_model=_l4_like())
    assert decode_frame(encode_frame(message)).message == message


def test_schedule_wrapping_midnight_and_default():
    model = BillingModel.build(model_no="0100", rates={}, schedule=[(time(22), time(6), V)])
    assert model.slots[:12] == (V,) * 12
    assert model.slots[12:44] == (F,) * 32
    assert model.slots[44:] == (V,) * 4
    assert model.sharp_electricity == Decimal(0)


def test_schedule_off_half_hour_is_refused():
    with pytest.raises(EncodeError):
        BillingModel.build(model_no="0100", rates={}, schedule=[(time(7, 15), time(8), P)])


@pytest.mark.parametrize("changes", [
    {"slots": (0,) * 47},
    {"slots": (4096,) + (0,) * 47},
    {"sharp_electricity": Decimal("0.000001")},
    {"model_no": "12345"},
    {"loss_ratio": 256},
])
def test_invalid_models_do_not_encode(changes):
    from dataclasses import replace

    model = replace(_l4_like(), **changes)
    with pytest.raises(EncodeError):
        encode_frame(SetBillingModel(pile_code="32010200000001", billing_model=model))


def test_pdf_rate_bytes_are_read_little_endian():
    # §3.4: the PDF's service fee bytes 9C 40 00 00 read 0.16540, whatever its annotation says.
    from protocols.ykc.fields import RATE

    assert RATE.dec(bytes.fromhex("9C400000"), 0) == Decimal("0.16540")
    assert RATE.dec(bytes.fromhex("E0930400"), 0) == Decimal("3.00000")
