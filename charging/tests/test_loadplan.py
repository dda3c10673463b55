"""Sharing a station's power limit (charging.loadplan): examples and properties over random
arrivals and departures."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charging.loadplan import Demand, allocate

D = Decimal


def dc(key, rated="120", floor_pct=30, weight="1"):
    rated = D(rated)
    return Demand(key=key, floor_kw=rated * floor_pct / 100, ceiling_kw=rated, weight=D(weight))


def test_four_120_kw_sessions_share_200_kw_equally():
    plan = allocate(D("200"), [dc(k) for k in "abcd"])
    assert plan.caps == {k: D("50.0") for k in "abcd"}
    assert plan.unserved == []


def test_under_the_limit_everyone_gets_their_rating():
    plan = allocate(D("500"), [dc("a"), dc("b", rated="60")])
    assert plan.caps == {"a": D("120.0"), "b": D("60.0")}


def test_what_a_small_pile_cannot_use_goes_to_the_others():
    plan = allocate(D("200"), [dc("ac", rated="7"), dc("b"), dc("c")])
    assert plan.caps == {"ac": D("7.0"), "b": D("96.5"), "c": D("96.5")}


def test_a_floor_that_no_longer_fits_leaves_the_newest_pile_out():
    # 5 × 36 kW floors = 180 ≤ 200; a sixth (216) does not fit.
    plan = allocate(D("200"), [dc(k) for k in "abcdef"])
    assert plan.unserved == ["f"]
    assert plan.total_kw <= 200
    assert all(cap >= D("36") for cap in plan.caps.values())


def test_priority_weights_share_in_proportion():
    plan = allocate(D("150"), [dc("svip", weight="2"), dc("b"), dc("c")])
    # floors 36 each, 42 left: shared 2:1:1 on top of the floors.
    assert plan.caps["svip"] == D("57.0")
    assert plan.caps["b"] == plan.caps["c"] == D("46.5")


def test_bad_demands_are_refused():
    with pytest.raises(ValueError):
        allocate(D("10"), [Demand("a", D("5"), D("4"))])
    with pytest.raises(ValueError):
        allocate(D("10"), [dc("a"), dc("a")])
    with pytest.raises(ValueError):
        allocate(D("10"), [dc("a", weight="0")])


ratings = st.sampled_from(["7", "22", "30", "60", "120", "160", "240"])
events = st.lists(st.tuples(st.booleans(), ratings, st.integers(1, 3)), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(limit=st.decimals(min_value=1, max_value=2000, places=1), floor_pct=st.integers(0, 60),
       events=events)
def test_every_replan_over_random_arrivals_and_departures_keeps_the_sum_under_the_limit(
        limit, floor_pct, events):
    running: list[Demand] = []
    serial = 0
    for arrives, rating, weight in events:
        if arrives or not running:
            serial += 1
            running.append(dc(f"p{serial}", rated=rating, floor_pct=floor_pct, weight=str(weight)))
        else:
            running.pop(serial % len(running))
        plan = allocate(limit, running)
        assert plan.total_kw <= limit
        served = set(plan.caps)
        assert served | set(plan.unserved) == {d.key for d in running}
        assert not served & set(plan.unserved)
        for d in running:
            if d.key in served:
                assert d.floor_kw <= plan.caps[d.key] <= d.ceiling_kw
                assert plan.caps[d.key] == plan.caps[d.key].quantize(D("0.1"))
        # Nothing left on the table: below the limit, every pile served is at its ceiling
        # (up to the 0.1 kW steps each pile's share is rounded down to).
        slack = limit - plan.total_kw
        if slack >= D("0.1") * (len(served) + 1):
            assert all(plan.caps[d.key] >= d.ceiling_kw.quantize(D("0.1"), "ROUND_DOWN")
                       for d in running if d.key in served)
        # Equal weights and equal ratings → equal caps within one step.
        same = [plan.caps[d.key] for d in running
                if d.key in served and d.ceiling_kw == D("120") and d.weight == 1]
        if same:
            assert max(same) - min(same) <= D("0.1")
        # Earlier piles are never left out for later ones.
        if plan.unserved:
            first_out = [d.key for d in running].index(plan.unserved[0])
            floors_before = sum((d.floor_kw for d in running[:first_out]), D(0))
            assert floors_before <= limit
