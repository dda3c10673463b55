"""The port's tariff queries (one pile, many piles), its tariff-change notice and the pile
queries protocol tooling uses, answered by the domain (billing's tariffs, stations)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django_tenants.utils import get_public_schema_name, schema_context

from billing.tariffs import pricing
from billing.tariffs.services import (
    pile_tariff_assign,
    station_tariff_assign,
    tariff_create,
    tariff_version_publish,
)
from billing.tariffs.tests.conftest import LONG_AGO, make_pile
from charging import handlers, port

D = Decimal
# 2026-03-11 00:00 Asia/Shanghai: the second flat version takes effect at local midnight.
MIDNIGHT = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)


# The station fixture is charging's (a station in Asia/Shanghai); two YKC piles on it.
@pytest.fixture
def pile(station):
    return make_pile(station, "44010600000001")


@pytest.fixture
def other_pile(station):
    return make_pile(station, "44010600000002")


def _tariff(name: str, draft) -> object:
    tariff = tariff_create(name=name, draft=draft)
    tariff_version_publish(tariff=tariff, effective_from=LONG_AGO)
    return tariff


@pytest.fixture
def gd_tariff(tenant):
    """Guangdong TOU (flat 0.6 + 0.4), in force since 2020."""
    return _tariff("广东分时", pricing.guangdong_tou_tariff(D("0.6"), D("0.4")))


@pytest.fixture
def flat_tariff(tenant):
    """Flat 1.0 + 0.5, in force since 2020."""
    return _tariff("统一价", pricing.flat_tariff(D("1.0"), D("0.5")))


@pytest.fixture
def midnight_change(station, pile, flat_tariff):
    """The station on flat 1.0 + 0.5; from local midnight of 11 March, flat 1.2 + 0.5."""
    station_tariff_assign(stations=[station], tariff=flat_tariff)
    return tariff_version_publish(
        tariff=flat_tariff, effective_from=MIDNIGHT, draft=pricing.flat_tariff(D("1.2"), D("0.5"))
    )


def test_single_query_gives_the_day_in_neutral_terms(station, pile, gd_tariff):
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    summer = handlers.handle(port.PileTariffQuery(pile.code, date(2026, 8, 10)))

    assert summer.version_number == gd_tariff.versions.get().model_number
    assert len(summer.slots) == 48 and summer.slots[:16] == ("valley",) * 16
    assert summer.slots[22] == "sharp"  # 11:00–11:30 in summer
    assert summer.prices["peak"] == (D("1.02000"), D("0.40000"))  # 0.6 × 1.7
    assert summer.price_at(0) == summer.prices["valley"]
    spring = handlers.handle(port.PileTariffQuery(pile.code, date(2026, 3, 10)))
    assert "sharp" not in spring.slots


def test_single_query_on_each_side_of_a_midnight_change(pile, midnight_change):
    before = handlers.handle(port.PileTariffQuery(pile.code, date(2026, 3, 10)))
    after = handlers.handle(port.PileTariffQuery(pile.code, date(2026, 3, 11)))

    assert before.prices == {"flat": (D("1.0"), D("0.5"))}
    assert after.prices == {"flat": (D("1.2"), D("0.5"))}
    assert after.version_number == midnight_change.model_number != before.version_number


def test_batch_query_at_a_midnight_change(pile, other_pile, midnight_change):
    late = handlers.handle(port.PileTariffsQuery(at=MIDNIGHT - timedelta(minutes=1)))
    early = handlers.handle(port.PileTariffsQuery(at=MIDNIGHT))

    assert set(late.piles) == set(early.piles) == {pile.code, other_pile.code}
    for code in (pile.code, other_pile.code):
        assert late.piles[code].on_date == date(2026, 3, 10)
        assert late.day(code).prices == {"flat": (D("1.0"), D("0.5"))}
        assert early.piles[code].on_date == date(2026, 3, 11)
        assert early.day(code).prices == {"flat": (D("1.2"), D("0.5"))}
        assert early.day(code).version_number == midnight_change.model_number
    assert early.piles[pile.code].pile_id == pile.pk


def test_batch_query_mixes_tariffs_and_names_what_is_missing(
        station, pile, other_pile, gd_tariff, flat_tariff):
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    pile_tariff_assign(pile=pile, tariff=flat_tariff)
    bare_station = type(station).objects.create(
        name="无价站", code="ST0002", address="广州", area_code="440106",
        latitude=D("23.1"), longitude=D("113.3"))
    bare = make_pile(bare_station, "44010600000003")
    codes = (pile.code, other_pile.code, bare.code, "99999999999999")

    answer = handlers.handle(port.PileTariffsQuery(pile_codes=codes, at=datetime.now(UTC)))

    assert set(answer.day(pile.code).prices) == {"flat"}
    assert set(answer.day(other_pile.code).prices) == {"sharp", "peak", "flat", "valley"}
    assert answer.piles[bare.code].day is None
    assert answer.piles[bare.code].missing is port.TariffMissing.NO_TARIFF
    assert answer.unknown == ("99999999999999",)
    with pytest.raises(port.TariffUnavailable) as err:
        answer.day(bare.code)
    assert (err.value.pile_code, err.value.reason) == (bare.code, port.TariffMissing.NO_TARIFF)
    assert bare.code in str(err.value) and "no_tariff" in str(err.value)
    with pytest.raises(port.TariffUnavailable) as err:
        answer.day("99999999999999")
    assert err.value.reason is port.TariffMissing.PILE_UNKNOWN


def test_pile_without_tariff_single_query_is_none(pile):
    assert handlers.handle(port.PileTariffQuery(pile.code)) is None
    assert handlers.handle(port.PileTariffQuery("99999999999999")) is None
    with pytest.raises(port.TariffUnavailable):
        handlers.handle(port.PileTariffsQuery(pile_codes=(pile.code,))).day(pile.code)


def test_batch_query_keeps_one_protocol(station, pile, gd_tariff):
    ocpp = make_pile(station, "44010600000009", protocol="ocpp")
    station_tariff_assign(stations=[station], tariff=gd_tariff)

    assert set(handlers.handle(port.PileTariffsQuery(protocol="ykc")).piles) == {pile.code}
    assert set(handlers.handle(port.PileTariffsQuery(protocol="ocpp")).piles) == {ocpp.code}


def test_tariff_changes_reach_listeners_as_pile_codes(station, pile, other_pile, flat_tariff):
    heard: list[port.TariffsChanged] = []

    def listener(notice):
        heard.append(notice)
        return 0

    handlers.listen(port.TariffsChanged, listener)
    handlers.listen(port.TariffsChanged, listener)  # a second registration is a no-op
    try:
        pile_tariff_assign(pile=pile, tariff=flat_tariff)
    finally:
        handlers._LISTENERS[port.TariffsChanged].remove(listener)

    assert len(heard) == 1
    assert heard[0].pile_codes == (pile.code,)
    assert heard[0].at.tzinfo is not None


def test_piles_query_and_operator_query(tenant, station, pile, other_pile):
    other_pile.enabled = False
    other_pile.save(update_fields=["enabled"])

    infos = handlers.handle(port.PilesQuery())
    assert [p.pile_code for p in infos] == [pile.code, other_pile.code]
    assert infos[0].pile_id == pile.pk and infos[0].rated_power_kw == D("60.0")
    assert [p.pile_code for p in handlers.handle(port.PilesQuery(enabled_only=True))] == [
        pile.code]
    assert handlers.handle(port.PilesQuery(pile_codes=("nope",))) == ()
    with schema_context(get_public_schema_name()):
        assert handlers.handle(port.OperatorQuery(tenant.slug)) == tenant.schema_name
        assert handlers.handle(port.OperatorQuery("no-such-operator")) is None
