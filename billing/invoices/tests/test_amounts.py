"""Invoice amounts (pure): lines sum to the orders' paid total; tax follows the rule to the fen;
the USCC check character (GB 32100-2015)."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing.invoices import amounts
from billing.invoices.pdf import amount_in_words
from billing.invoices.uscc import ALPHABET, uscc_check_char, uscc_normalise, uscc_valid
from evplatform.money import yuan

money = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("5000.00"), places=2)
rates = st.sampled_from([Decimal("0.13"), Decimal("0.09"), Decimal("0.06"), Decimal("0.03"),
                         Decimal("0.01"), Decimal("0")])
SPECS = {
    amounts.ELECTRICITY: amounts.LineSpec(amounts.ELECTRICITY, "电费", "1100101020000000000", Decimal("0.13")),
    amounts.SERVICE: amounts.LineSpec(amounts.SERVICE, "充电服务费", "3040502020200000000", Decimal("0.06")),
}


@st.composite
def orders(draw):
    electricity, service = draw(money), draw(money)
    net = draw(st.decimals(min_value=Decimal("0.01"), max_value=electricity + service + Decimal("1"), places=2)) \
        if electricity + service > 0 else draw(money)
    return amounts.OrderAmounts("X", electricity, service, net)


@given(st.lists(orders(), min_size=1, max_size=30), rates, rates)
def test_lines_always_sum_to_the_paid_total(batch, e_rate, s_rate):
    specs = {
        amounts.ELECTRICITY: amounts.LineSpec(amounts.ELECTRICITY, "电费", "1", e_rate),
        amounts.SERVICE: amounts.LineSpec(amounts.SERVICE, "服务费", "2", s_rate),
    }
    lines = amounts.invoice_lines(batch, specs)
    assert sum(line.amount for line in lines) == sum(o.net for o in batch)
    for line in lines:
        assert line.amount > 0 and line.amount == line.amount_ex_tax + line.tax
        assert line.tax.as_tuple().exponent == -2 and line.amount_ex_tax.as_tuple().exponent == -2


@given(money, rates)
def test_tax_is_never_off_by_a_fen_from_the_rule(amount, rate):
    ex_tax, tax = amounts.line_tax(amount, rate)
    # The rule, to the fen: tax = round_half_up(amount × rate / (1 + rate)).
    exact = amount * rate / (1 + rate)
    assert abs(tax - exact) <= Decimal("0.005")
    assert tax == yuan(exact)
    # And the providers' check on 金额 × 税率 ≈ 税额 holds within one fen.
    assert abs(ex_tax * rate - tax) <= Decimal("0.01")
    assert ex_tax + tax == amount


@given(orders())
def test_an_order_splits_into_parts_that_sum_to_what_was_paid(order):
    electricity, service = amounts.order_split(order)
    assert electricity + service == order.net
    assert electricity >= 0 and service >= 0


def test_split_is_in_proportion_to_the_bill_rounded_once():
    # 10 kWh at 1.0 + 0.5: ¥15 billed, ¥12.34 paid after a discount.
    order = amounts.OrderAmounts("A", Decimal("10.00"), Decimal("5.00"), Decimal("12.34"))
    assert amounts.order_split(order) == (Decimal("8.23"), Decimal("4.11"))
    lines = amounts.invoice_lines([order], SPECS)
    assert [(line.kind, line.amount, line.amount_ex_tax, line.tax) for line in lines] == [
        ("electricity", Decimal("8.23"), Decimal("7.28"), Decimal("0.95")),
        ("service", Decimal("4.11"), Decimal("3.88"), Decimal("0.23")),
    ]


def test_a_kind_with_nothing_gets_no_line():
    order = amounts.OrderAmounts("A", Decimal("0"), Decimal("3.00"), Decimal("3.00"))
    assert [line.kind for line in amounts.invoice_lines([order], SPECS)] == ["service"]
    assert amounts.order_split(amounts.OrderAmounts("B", Decimal("1"), Decimal("1"), Decimal("0"))) == (0, 0)


def test_uscc_known_codes_and_typos():
    assert uscc_valid("91350100M000100Y43")
    assert uscc_valid("91110000802100433B")
    assert not uscc_valid("91350100M000100Y44")  # check character wrong
    assert not uscc_valid("91350100M000100Y4")  # 17 characters
    assert not uscc_valid("91350100I000100Y43")  # I is not in the alphabet
    assert uscc_normalise(" 91350100m000100y43 ") == "91350100M000100Y43"


@given(st.text(alphabet=ALPHABET, min_size=17, max_size=17), st.integers(0, 16), st.sampled_from(ALPHABET))
def test_uscc_any_single_character_change_is_caught(first17, where, replacement):
    code = first17 + uscc_check_char(first17)
    assert uscc_valid(code)
    changed = code[:where] + replacement + code[where + 1:]
    assert uscc_valid(changed) == (changed == code)


def test_amount_in_words():
    assert amount_in_words(Decimal("12.30")) == "壹拾贰圆叁角整"
    assert amount_in_words(Decimal("1005.07")) == "壹仟零伍圆零柒分"
    assert amount_in_words(Decimal("-15.00")) == "(负数)壹拾伍圆整"
    assert amount_in_words(Decimal("100000.00")) == "壹拾万圆整"
