"""YKC pile sync: the billing model a pile is due, what it was sent and acknowledged; tariff
assignments, new versions and seasons reach it through ``tariffs_changed``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from billing.tariffs import pricing
from billing.tariffs.services import (
    pile_tariff_assign,
    station_tariff_assign,
    tariff_version_publish,
    tariff_version_reschedule,
)
from billing.tariffs.tests.conftest import make_pile
from protocols.ykc.models import PileBillingModel
from protocols.ykc.tariff_sync import (
    PileNotFound,
    pile_billing_model,
    pile_billing_model_acked,
    pile_billing_model_sent,
    pile_billing_model_verified,
    pile_billing_models_refresh,
    piles_due_billing_model,
)


def test_no_tariff_means_no_model_and_not_due(pile):
    assert pile_billing_model(pile.code) is None
    assert piles_due_billing_model() == []
    assert pile_billing_model_verified(pile_code=pile.code, model_number=0) is False


def test_unknown_pile_has_no_model(tenant):
    assert pile_billing_model("99999999999999") is None


def test_model_is_the_pricing_model_with_the_version_number(station, pile, gd_tariff):
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    version = gd_tariff.versions.get()
    model = pile_billing_model(pile.code)
    assert model["model_number"] == version.model_number
    assert model["rates"][1] == Decimal("1.02000")  # peak electricity 0.6 × 1.7
    assert model["rates"][3] == Decimal("0.22800")  # valley electricity 0.6 × 0.38
    assert model["rates"][4:] == (Decimal("0.40000"),) * 4
    assert model["slots"][:16] == (3,) * 16  # valley 00:00–08:00
    assert model["loss_ratio"] == 0


def test_assignment_makes_piles_due_until_acknowledged(station, pile, other_pile, gd_tariff):
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    assert piles_due_billing_model() == [pile.code, other_pile.code]
    number = gd_tariff.versions.get().model_number

    pile_billing_model_sent(pile_code=pile.code, model_number=number)
    assert piles_due_billing_model() == [pile.code, other_pile.code]
    pile_billing_model_acked(pile_code=pile.code, model_number=number, success=True)
    assert piles_due_billing_model() == [other_pile.code]

    state = PileBillingModel.objects.get(pile=pile)
    assert state.model_number_acked == number
    assert state.last_result == "ok"
    assert pile_billing_model_verified(pile_code=pile.code, model_number=number) is True


def test_failed_ack_keeps_the_pile_due(station, pile, flat_tariff):
    station_tariff_assign(stations=[station], tariff=flat_tariff)
    number = flat_tariff.versions.get().model_number
    pile_billing_model_sent(pile_code=pile.code, model_number=number)
    pile_billing_model_acked(pile_code=pile.code, model_number=number, success=False)
    assert piles_due_billing_model() == [pile.code]
    assert PileBillingModel.objects.get(pile=pile).last_result == "failed"


def test_verify_with_an_unknown_map_says_differs_then_sync_fixes_it(station, pile, flat_tariff):
    station_tariff_assign(stations=[station], tariff=flat_tariff)
    number = flat_tariff.versions.get().model_number
    # The pile claims the right number, but we never saw it accept today's map.
    assert pile_billing_model_verified(pile_code=pile.code, model_number=number) is False
    assert pile_billing_model_verified(pile_code=pile.code, model_number=0) is False
    # 0x09 → 0x0A: sent, and 0x0A has no answer, so the gateway acks it itself.
    pile_billing_model_sent(pile_code=pile.code, model_number=number)
    pile_billing_model_acked(pile_code=pile.code, model_number=number, success=True)
    assert pile_billing_model_verified(pile_code=pile.code, model_number=number) is True
    assert PileBillingModel.objects.get(pile=pile).last_result == "same"


def test_pile_override_changes_what_is_due(station, pile, other_pile, gd_tariff, flat_tariff):
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    gd = gd_tariff.versions.get().model_number
    for p in (pile, other_pile):
        pile_billing_model_sent(pile_code=p.code, model_number=gd)
        pile_billing_model_acked(pile_code=p.code, model_number=gd, success=True)
    assert piles_due_billing_model() == []

    pile_tariff_assign(pile=pile, tariff=flat_tariff)
    assert piles_due_billing_model() == [pile.code]
    assert pile_billing_model(pile.code)["model_number"] == flat_tariff.versions.get().model_number
    state = PileBillingModel.objects.get(pile=pile)
    assert state.model_number_due == flat_tariff.versions.get().model_number
    assert state.due_since is not None


def test_ocpp_piles_are_never_due(station, gd_tariff):
    make_pile(station, "44010600000009", protocol="ocpp")
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    assert piles_due_billing_model() == []


def test_unknown_pile_code_is_refused(tenant):
    import pytest

    with pytest.raises(PileNotFound) as err:
        pile_billing_model_sent(pile_code="00000000000000", model_number=1)
    assert err.value.code == "pile_not_found"


def test_model_for_a_summer_date_has_sharp_slots(station, pile, gd_tariff):
    from datetime import date

    station_tariff_assign(stations=[station], tariff=gd_tariff)
    spring = pile_billing_model(pile.code, date(2026, 3, 10))
    summer = pile_billing_model(pile.code, date(2026, 8, 10))
    assert spring["model_number"] == summer["model_number"]
    assert pricing.Period.SHARP.code not in spring["slots"]
    assert summer["slots"][22] == pricing.Period.SHARP.code  # 11:00–11:30


def test_new_version_makes_piles_due_again(station, pile, flat_tariff):
    station_tariff_assign(stations=[station], tariff=flat_tariff)
    first = flat_tariff.versions.get().model_number
    pile_billing_model_sent(pile_code=pile.code, model_number=first)
    pile_billing_model_acked(pile_code=pile.code, model_number=first, success=True)
    assert piles_due_billing_model() == []

    later = timezone.now() + timedelta(hours=1)
    scheduled = tariff_version_publish(tariff=flat_tariff, effective_from=later)
    assert piles_due_billing_model() == []  # not in force yet
    tariff_version_reschedule(version=scheduled, effective_from=timezone.now())
    assert piles_due_billing_model() == [pile.code]
    assert PileBillingModel.objects.get(pile=pile).model_number_due == scheduled.model_number


def test_season_switch_changes_the_due_slot_map(station, pile, gd_tariff):
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    june = datetime(2026, 6, 30, 15, 0, tzinfo=UTC)  # 23:00 local, June 30
    july = datetime(2026, 6, 30, 16, 30, tzinfo=UTC)  # 00:30 local, July 1
    pile_billing_models_refresh(at=june)
    before = PileBillingModel.objects.get(pile=pile)
    assert "0" not in before.slots_due
    assert pile_billing_models_refresh(at=july) == 1
    after = PileBillingModel.objects.get(pile=pile)
    assert after.model_number_due == before.model_number_due
    assert after.slots_due[22:24] == "00"  # sharp 11:00–12:00
    assert after.due_since == july
    assert pile_billing_models_refresh(at=july + timedelta(hours=1)) == 0


def test_what_the_pile_holds_counts_only_once_we_delivered_it(station, pile, flat_tariff):
    from protocols.ykc.tariff_sync import pile_billing_model_held

    station_tariff_assign(stations=[station], tariff=flat_tariff)
    number = flat_tariff.versions.get().model_number
    assert pile_billing_model_held(pile.code) == (None, None)
    # A pile moved from another platform claims a model with our number: not ours.
    pile_billing_model_verified(pile_code=pile.code, model_number=number)
    assert pile_billing_model_held(pile.code) == (None, None)
    before = timezone.now()
    pile_billing_model_sent(pile_code=pile.code, model_number=number)
    pile_billing_model_acked(pile_code=pile.code, model_number=number, success=True)
    held, since = pile_billing_model_held(pile.code)
    assert held == number and since >= before
    # Re-verifying the same number (a reconnection mid-session) keeps the time it began.
    pile_billing_model_verified(pile_code=pile.code, model_number=number)
    assert pile_billing_model_held(pile.code) == (number, since)
    # A refused push changes nothing; a different number claimed clears it.
    pile_billing_model_acked(pile_code=pile.code, model_number=number + 1, success=False)
    assert pile_billing_model_held(pile.code) == (number, since)
    pile_billing_model_verified(pile_code=pile.code, model_number=number + 1)
    assert pile_billing_model_held(pile.code) == (None, None)


def test_batch_verification_answers_and_records_as_one_by_one(station, pile, other_pile,
                                                              flat_tariff):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from protocols.ykc.tariff_sync import pile_billing_model_held, pile_billing_models_verified

    station_tariff_assign(stations=[station], tariff=flat_tariff)
    number = flat_tariff.versions.get().model_number
    pile_billing_model_sent(pile_code=pile.code, model_number=number)
    pile_billing_model_acked(pile_code=pile.code, model_number=number, success=True)
    held = pile_billing_model_held(pile.code)
    # One pile holds today's model, the other (no record yet) claims a number it never got,
    # a third code names no pile.
    answers = pile_billing_models_verified(
        {pile.code: number, other_pile.code: number, "00000000000000": number})
    assert answers == {pile.code: True, other_pile.code: False}
    assert pile_billing_model_held(pile.code) == held  # the same number keeps its time
    assert pile_billing_model_held(other_pile.code) == (None, None)
    states = {s.pile_id: s for s in PileBillingModel.objects.all()}
    assert states[pile.pk].last_result == "same" and states[other_pile.pk].last_result == "differs"
    assert states[other_pile.pk].model_number_acked == number
    # A different number claimed clears what the pile held, as one by one.
    assert pile_billing_models_verified({pile.code: number + 1}) == {pile.code: False}
    assert pile_billing_model_held(pile.code) == (None, None)
    assert pile_billing_models_verified({}) == {}
    # The cost does not grow with the number of piles.
    more = [make_pile(station, f"44010600001{i:03d}") for i in range(20)]
    with CaptureQueriesContext(connection) as two:
        pile_billing_models_verified({pile.code: number, other_pile.code: number})
    with CaptureQueriesContext(connection) as many:
        pile_billing_models_verified({p.code: number for p in [pile, other_pile, *more]})
    assert len(many.captured_queries) == len(two.captured_queries)


def test_batch_verification_of_piles_without_tariff_says_differs(station, pile):
    from protocols.ykc.tariff_sync import pile_billing_models_verified

    assert pile_billing_models_verified({pile.code: 0}) == {pile.code: False}
    assert PileBillingModel.objects.get(pile=pile).last_result == "differs"


def test_batch_delivery_records_as_one_by_one(station, pile, other_pile, flat_tariff):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from protocols.ykc.tariff_sync import (
        pile_billing_model_held,
        pile_billing_models_delivered,
        slots_code,
    )

    station_tariff_assign(stations=[station], tariff=flat_tariff)
    model = pile_billing_model(pile.code)
    number, slots = model["model_number"], slots_code(model)
    # One pile already holds the model (its time kept), the other has no record yet.
    pile_billing_model_sent(pile_code=pile.code, model_number=number)
    pile_billing_model_acked(pile_code=pile.code, model_number=number, success=True)
    held = pile_billing_model_held(pile.code)

    pile_billing_models_delivered({pile.pk: (number, slots), other_pile.pk: (number, slots)})

    assert pile_billing_model_held(pile.code) == held
    assert pile_billing_model_held(other_pile.code)[0] == number
    for p in (pile, other_pile):
        state = PileBillingModel.objects.get(pile=p)
        assert (state.model_number_sent, state.slots_sent, state.slots_acked,
                state.last_result) == (number, slots, slots, "ok")
        assert pile_billing_model_verified(pile_code=p.code, model_number=number) is True
    pile_billing_models_delivered({})
    # The cost does not grow with the number of piles.
    more = [make_pile(station, f"44010600002{i:03d}") for i in range(20)]
    with CaptureQueriesContext(connection) as two:
        pile_billing_models_delivered({p.pk: (number, slots) for p in [pile, other_pile]})
    with CaptureQueriesContext(connection) as many:
        pile_billing_models_delivered({p.pk: (number, slots)
                                       for p in [pile, other_pile, *more]})
    assert len(many.captured_queries) == len(two.captured_queries)
