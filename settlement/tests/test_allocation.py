"""The split arithmetic: largest remainder, the fen to the operator, per-kWh out of the
operator's part; shares always sum to the base and are never negative."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.allocation import Party, allocate, proportional_part

D = Decimal


def test_worked_example():
    # Base ¥10.00: platform 5 %, owner 1 33.333 %, owner 2 per kWh 0.10 × 12.5 kWh.
    parts = allocate(
        base=D("10.00"), energy_kwh=D("12.5"),
        parties=[Party("platform", percent=D("5")), Party("owner:1", percent=D("33.333")),
                 Party("owner:2", per_kwh=D("0.10"))],
    )
    assert parts == {"platform": D("0.50"), "owner:1": D("3.33"), "owner:2": D("1.25"),
                     "operator": D("4.92")}


def test_remainder_fen_goes_to_the_operator_on_a_tie():
    # Three parties of a third each: 0.01 / 3 leaves one fen; equal fractions → operator.
    parts = allocate(base=D("0.01"), energy_kwh=D("0"),
                     parties=[Party("a", percent=D("33.3333")), Party("b", percent=D("33.3333"))])
    assert parts == {"a": D("0.00"), "b": D("0.00"), "operator": D("0.01")}
    parts = allocate(base=D("1.00"), energy_kwh=D("0"),
                     parties=[Party("a", percent=D("50")), Party("b", percent=D("50"))])
    assert parts == {"a": D("0.50"), "b": D("0.50"), "operator": D("0.00")}


def test_largest_fraction_gets_the_fen():
    parts = allocate(base=D("0.10"), energy_kwh=D("0"),
                     parties=[Party("a", percent=D("66")), Party("b", percent=D("4"))])
    # exact: a 6.6 fen, b 0.4 fen, operator 3.0 fen → a gets the spare fen.
    assert parts == {"a": D("0.07"), "b": D("0.00"), "operator": D("0.03")}


def test_per_kwh_is_capped_by_the_operator_part():
    parts = allocate(base=D("2.00"), energy_kwh=D("100"),
                     parties=[Party("p", percent=D("50")), Party("i", per_kwh=D("0.5"))])
    assert parts == {"p": D("1.00"), "i": D("1.00"), "operator": D("0.00")}


@pytest.mark.parametrize("parties", [
    [Party("a", percent=D("60")), Party("b", percent=D("40.01"))],
    [Party("a", percent=D("-1"))],
    [Party("a", per_kwh=D("-0.1"))],
    [Party("a", percent=D("1")), Party("a", percent=D("1"))],
    [Party("operator", percent=D("1"))],
])
def test_refused(parties):
    with pytest.raises(ValueError):
        allocate(base=D("1"), energy_kwh=D("1"), parties=parties)


percent = st.decimals(min_value=0, max_value=100, places=3)
party_lists = st.lists(
    st.one_of(
        st.tuples(st.just("percent"), percent),
        st.tuples(st.just("per_kwh"), st.decimals(min_value=0, max_value=5, places=4)),
    ),
    max_size=6,
).filter(lambda ps: sum(v for k, v in ps if k == "percent") <= 100)


@given(
    base=st.decimals(min_value=0, max_value=100000, places=2),
    energy=st.decimals(min_value=0, max_value=1000, places=4),
    spec=party_lists,
)
def test_parts_sum_to_the_base_and_are_never_negative(base, energy, spec):
    parties = [
        Party(f"p{i}", percent=v if k == "percent" else None, per_kwh=v if k == "per_kwh" else None)
        for i, (k, v) in enumerate(spec)
    ]
    parts = allocate(base=base, energy_kwh=energy, parties=parties)
    assert sum(parts.values()) == base
    assert all(v >= 0 for v in parts.values())
    assert all(v == v.quantize(D("0.01")) for v in parts.values())
    # Largest remainder: no percentage party is more than a fen from its exact share.
    for party in parties:
        if party.percent is not None:
            assert abs(parts[party.key] - base * party.percent / 100) < D("0.01")


@given(
    base=st.decimals(min_value=D("-1000"), max_value=D("-0.01"), places=2),
    a=percent,
)
def test_negative_bases_mirror(base, a):
    parts = allocate(base=base, energy_kwh=D("0"), parties=[Party("a", percent=a)])
    assert sum(parts.values()) == base and all(v <= 0 for v in parts.values())


def test_proportional_part():
    assert proportional_part(D("3.00"), D("1"), D("3")) == D("1.00")
    assert proportional_part(D("1.00"), D("1"), D("0")) == D("0.00")
