"""Hypothesis strategies: a valid value for every field of every YKC message.

Fixed layouts get one strategy per wire field (chosen from the field's range on the wire);
variable or nested messages have hand-written strategies.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from decimal import Decimal

from hypothesis import strategies as st

from protocols.ykc import (
    MESSAGE_TYPES,
    PILE_TZ,
    BillingModel,
    CardClear,
    CardClearReply,
    CardClearResult,
    CardQuery,
    CardQueryReply,
    CardQueryResult,
    CardSync,
    HardwareFault,
    OfflineCard,
    PeriodUsage,
    TariffPeriod,
    TransactionRecord,
    enums,
)

HEX = "0123456789ABCDEF"
DIGITS = "0123456789"


def digits(count: int, alphabet: str = DIGITS) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=count, max_size=count)


def scaled(size: int, places: int, offset: int = 0) -> st.SearchStrategy[Decimal]:
    return st.integers(0, (1 << (8 * size)) - 1).map(
        lambda n: Decimal(n).scaleb(-places) - offset)


def times() -> st.SearchStrategy[datetime | None]:
    moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2127, 12, 31),
                           timezones=st.just(PILE_TZ), allow_imaginary=False)
    return st.none() | moments.map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


def text(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=size)


def enum_or_int(enum_cls) -> st.SearchStrategy:
    return st.sampled_from(list(enum_cls)) | st.integers(0, 255)


def for_kind(kind: str) -> st.SearchStrategy:
    """Strategy for a codec kind (see protocols.ykc.fields)."""
    if kind.startswith("uint"):
        return st.integers(0, (1 << int(kind[4:])) - 1)
    if kind.startswith("bool"):
        return st.booleans()
    if kind.startswith("enum:"):
        return enum_or_int(getattr(enums, kind[5:]))
    if kind.startswith("flags:"):
        return st.integers(0, 0xFFFF).map(HardwareFault)
    if kind == "temp":
        return st.integers(-50, 205)
    if kind.startswith("dec"):
        size, rest = kind[3:].split("e-")
        places, offset = rest.split("+")
        return scaled(int(size), int(places), int(offset))
    if kind == "cellv+group":
        return st.tuples(st.integers(0, 0x0FFF).map(lambda n: Decimal(n).scaleb(-2)),
                         st.integers(0, 15))
    if kind.startswith("bcd1int"):
        return st.integers(0, 99)
    if kind.startswith("bcd"):
        return digits(2 * int(kind[3:]), HEX)
    if kind.startswith("hex"):
        return digits(2 * int(kind[3:]), HEX)
    if kind.startswith("raw"):
        size = int(kind[3:])
        return st.binary(min_size=size, max_size=size)
    if kind.startswith("ascii"):
        return text(int(kind[5:]))
    if kind == "cp56":
        return times()
    if kind.startswith("int+"):
        offset = int(kind[4:])
        return st.integers(offset, 255 + offset)
    if kind == "billing-model":
        return billing_models()
    raise AssertionError(f"no strategy for codec kind {kind}")


def billing_models() -> st.SearchStrategy[BillingModel]:
    rate = scaled(4, 5)
    slot = st.sampled_from(list(TariffPeriod)) | st.integers(0, 255)
    return st.builds(BillingModel, digits(4), rate, rate, rate, rate, rate, rate, rate, rate,
                     st.integers(0, 255), st.tuples(*[slot] * 48))


def card() -> st.SearchStrategy[str]:
    return digits(16, HEX)


def _fixed(cls) -> st.SearchStrategy:
    parts = []
    for codec in cls._CODECS:
        strategy = for_kind(codec.kind)
        parts.append(strategy if codec.arity == 1 else strategy)
    names = [field.name for field in fields(cls)]

    def build(values):
        flat = []
        for codec, value in zip(cls._CODECS, values, strict=True):
            flat.extend(value if codec.arity > 1 else (value,))
        return cls(**dict(zip(names, flat, strict=True)))

    return st.tuples(*parts).map(build)


def _transaction_records() -> st.SearchStrategy[TransactionRecord]:
    group = st.builds(PeriodUsage, scaled(4, 5), scaled(4, 4), scaled(4, 4), scaled(4, 4))
    return st.builds(
        TransactionRecord, trade_no=digits(32), pile_code=digits(14),
        connector_no=st.integers(0, 99), start_time=times(), end_time=times(),
        periods=st.lists(group, min_size=4, max_size=5).map(tuple),
        meter_start=scaled(5, 4), meter_end=scaled(5, 4), total_energy=scaled(4, 4),
        total_energy_with_loss=scaled(4, 4), total_amount=scaled(4, 4), vin=text(17),
        trade_type=enum_or_int(enums.TradeType), trade_time=times(),
        stop_reason=enum_or_int(enums.StopReason), physical_card_no=card())


CUSTOM = {
    0x3B: _transaction_records(),
    0x44: st.builds(CardSync, pile_code=digits(14), cards=st.lists(
        st.builds(OfflineCard, digits(16), card()), max_size=15).map(tuple)),
    0x45: st.builds(CardClearReply, pile_code=digits(14), results=st.lists(
        st.builds(CardClearResult, card(), st.booleans(), st.integers(0, 255)),
        max_size=24).map(tuple)),
    0x46: st.builds(CardClear, pile_code=digits(14),
                    physical_card_nos=st.lists(card(), max_size=24).map(tuple)),
    0x47: st.builds(CardQueryReply, pile_code=digits(14), results=st.lists(
        st.builds(CardQueryResult, card(), st.booleans()), max_size=26).map(tuple)),
    0x48: st.builds(CardQuery, pile_code=digits(14),
                    physical_card_nos=st.lists(card(), max_size=26).map(tuple)),
}


def messages_of(frame_type: int) -> st.SearchStrategy:
    if frame_type in CUSTOM:
        return CUSTOM[frame_type]
    return _fixed(MESSAGE_TYPES[frame_type])


def any_message() -> st.SearchStrategy:
    return st.sampled_from(sorted(MESSAGE_TYPES)).flatmap(messages_of)


def sequences() -> st.SearchStrategy[bytes]:
    return st.binary(min_size=2, max_size=2)
