"""The discount plan's money invariants, over generated orders, SVIP rates and coupons."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from marketing import discounts
from marketing.discounts import CouponTerms, OrderFacts

cents = st.integers(min_value=0, max_value=500_000).map(lambda c: Decimal(c) / 100)
pct = st.integers(min_value=0, max_value=10_000).map(lambda c: Decimal(c) / 100)


@st.composite
def orders(draw):
    gross = draw(cents)
    service = min(draw(cents), gross)
    return OrderFacts(gross=gross, service=service, station_id=draw(st.sampled_from([1, 2])),
                      current=draw(st.sampled_from(["ac", "dc"])), hour=draw(st.integers(0, 23)))


@st.composite
def coupon_terms(draw, coupon_id):
    return CouponTerms(
        coupon_id=coupon_id, kind=draw(st.sampled_from(["fixed", "threshold", "percent"])),
        amount=draw(cents), threshold=draw(cents), percent=draw(pct),
        base=draw(st.sampled_from(["service", "total"])), cap=draw(st.none() | cents),
        stacks_with_svip=draw(st.booleans()), station_ids=frozenset(draw(st.sets(st.sampled_from([1, 2])))),
        current=draw(st.sampled_from(["any", "ac", "dc"])), hour_from=draw(st.none() | st.integers(0, 23)),
        hour_to=draw(st.none() | st.integers(0, 24)), remaining_budget=draw(st.none() | cents),
    )


@st.composite
def coupon_lists(draw):
    n = draw(st.integers(0, 4))
    return [draw(coupon_terms(i + 1)) for i in range(n)]


@settings(max_examples=400, deadline=None)
@given(orders(), st.none() | pct, coupon_lists(), st.none() | st.integers(1, 5))
def test_a_plan_never_takes_off_more_than_the_order_nor_counts_a_yuan_twice(facts, svip, coupons, chosen):
    lines = discounts.plan(facts, svip_percent=svip, coupons=coupons, chosen_id=chosen)
    total = sum((line.amount for line in lines), Decimal("0.00"))
    assert total <= facts.gross
    assert all(line.amount > 0 and line.amount == line.amount.quantize(Decimal("0.01")) for line in lines)
    assert len([x for x in lines if x.kind == "svip"]) <= 1
    coupon_lines = [x for x in lines if x.kind == "coupon"]
    assert len(coupon_lines) <= 1
    svip_part = sum((x.amount for x in lines if x.kind == "svip"), Decimal("0.00"))
    assert svip_part <= facts.service
    by_id = {c.coupon_id: c for c in coupons}
    for line in coupon_lines:
        terms = by_id[line.coupon_id]
        assert discounts.applies(terms, facts)
        if terms.base == "service":
            assert line.amount + svip_part <= facts.service
        if terms.cap is not None and terms.kind == "percent":
            assert line.amount <= terms.cap
        if terms.remaining_budget is not None:
            assert line.amount <= terms.remaining_budget
        if not terms.stacks_with_svip:
            assert svip_part == 0
    paid = facts.gross - total
    assert paid >= 0 and paid + total == facts.gross


@settings(max_examples=200, deadline=None)
@given(orders(), st.none() | pct, coupon_lists())
def test_the_default_plan_is_the_best_single_option(facts, svip, coupons):
    best = sum((x.amount for x in discounts.plan(facts, svip_percent=svip, coupons=coupons)), Decimal(0))
    for c in coupons:
        alone = sum((x.amount for x in discounts.plan(facts, svip_percent=None, coupons=[c])), Decimal(0))
        assert best >= alone
    assert best >= discounts.svip_amount(min(facts.service, facts.gross), svip or Decimal(0))


def test_examples():
    facts = OrderFacts(gross=Decimal("15.00"), service=Decimal("5.00"), station_id=1, current="dc", hour=10)
    ten_off_service = CouponTerms(1, "percent", Decimal(0), Decimal(0), Decimal("50"), "service", Decimal("2.00"),
                                  True, frozenset(), "any", None, None)
    lines = discounts.plan(facts, svip_percent=Decimal("10"), coupons=[ten_off_service])
    assert [(x.kind, x.amount) for x in lines] == [("svip", Decimal("0.50")), ("coupon", Decimal("2.00"))]
    night = CouponTerms(2, "fixed", Decimal("3"), Decimal(0), Decimal(0), "total", None, True, frozenset(),
                        "any", 22, 6)
    assert not discounts.applies(night, facts)
    assert discounts.applies(night, OrderFacts(Decimal(15), Decimal(5), 1, "dc", 23))
    assert discounts.applies(night, OrderFacts(Decimal(15), Decimal(5), 1, "dc", 5))
