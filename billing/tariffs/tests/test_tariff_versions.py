"""Versions, effective-time selection, locking, assignment precedence, the demo tariff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.tariffs import pricing
from billing.tariffs.models import TariffVersion
from billing.tariffs.selectors import (
    snapshot_for_connector,
    tariff_for_pile,
    tariff_version_effective,
)
from billing.tariffs.services import (
    InvalidTariff,
    TariffVersionLocked,
    pile_tariff_assign,
    station_tariff_assign,
    tariff_update,
    tariff_version_delete,
    tariff_version_lock,
    tariff_version_publish,
    tariff_version_reschedule,
)
from billing.tariffs.tests.conftest import SPRING_MORNING

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_effective_version_is_the_latest_started(flat_tariff):
    first = flat_tariff.versions.get()
    tariff_update(tariff=flat_tariff, draft=pricing.flat_tariff(Decimal("1.2"), Decimal("0.5")))
    second = tariff_version_publish(tariff=flat_tariff, effective_from=T0)
    assert second.model_number != first.model_number
    assert tariff_version_effective(flat_tariff, T0 - timedelta(microseconds=1)) == first
    assert tariff_version_effective(flat_tariff, T0) == second
    assert tariff_version_effective(flat_tariff, datetime(2019, 1, 1, tzinfo=UTC)) is None


def test_publish_freezes_the_working_copy(flat_tariff):
    version = flat_tariff.versions.get()
    tariff_update(tariff=flat_tariff, draft=pricing.flat_tariff(Decimal("9"), Decimal("9")))
    version.refresh_from_db()
    assert version.snapshot["prices"]["flat"] == {"electricity": "1.00000", "service": "0.50000"}


def test_model_numbers_are_unique_across_tariffs(flat_tariff, gd_tariff):
    numbers = list(TariffVersion.objects.values_list("model_number", flat=True))
    assert len(numbers) == len(set(numbers)) == 2
    assert all(1 <= n <= 9999 for n in numbers)


def test_publish_refuses_a_naive_time_and_a_duplicate_instant(flat_tariff):
    with pytest.raises(InvalidTariff) as err:
        tariff_version_publish(tariff=flat_tariff, effective_from=datetime(2027, 1, 1))
    assert err.value.field == "effective_from"
    with pytest.raises(InvalidTariff):
        tariff_version_publish(tariff=flat_tariff, effective_from=datetime(2020, 1, 1, tzinfo=UTC))
    assert flat_tariff.versions.count() == 1


def test_invalid_draft_is_refused_naming_the_field(flat_tariff):
    draft = dict(flat_tariff.draft, slots=["flat"] * 47)
    with pytest.raises(InvalidTariff) as err:
        tariff_update(tariff=flat_tariff, draft=draft)
    assert err.value.field == "slots"
    assert err.value.code == "tariff_invalid"


def test_locked_version_cannot_be_rescheduled_or_deleted(flat_tariff):
    version = flat_tariff.versions.get()
    locked = tariff_version_lock(version, at=SPRING_MORNING)
    assert locked.locked_at == SPRING_MORNING
    tariff_version_lock(version)  # idempotent: the first lock time stays
    version.refresh_from_db()
    assert version.locked_at == SPRING_MORNING
    with pytest.raises(TariffVersionLocked):
        tariff_version_reschedule(version=version, effective_from=T0)
    with pytest.raises(TariffVersionLocked):
        tariff_version_delete(version=version)
    version.refresh_from_db()
    assert version.effective_from == datetime(2020, 1, 1, tzinfo=UTC)


def test_unlocked_version_can_be_deleted(flat_tariff):
    version = tariff_version_publish(tariff=flat_tariff, effective_from=T0)
    tariff_version_delete(version=version)
    assert flat_tariff.versions.count() == 1


def test_pile_override_beats_station_default(station, pile, other_pile, gd_tariff, flat_tariff):
    assert tariff_for_pile(pile, SPRING_MORNING) is None
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    pile.refresh_from_db()
    assert tariff_for_pile(pile, SPRING_MORNING).tariff == gd_tariff
    pile_tariff_assign(pile=pile, tariff=flat_tariff)
    pile.refresh_from_db()
    other_pile.refresh_from_db()
    assert tariff_for_pile(pile, SPRING_MORNING).tariff == flat_tariff
    assert tariff_for_pile(other_pile, SPRING_MORNING).tariff == gd_tariff
    pile_tariff_assign(pile=pile, tariff=None)
    pile.refresh_from_db()
    assert tariff_for_pile(pile, SPRING_MORNING).tariff == gd_tariff


def test_snapshot_for_connector_reads_the_station_clock(station, pile, gd_tariff):
    station.time_zone = "Asia/Urumqi"
    station.save(update_fields=["time_zone"])
    station_tariff_assign(stations=[station], tariff=gd_tariff)
    connector = pile.connectors.get()
    version, snapshot = snapshot_for_connector(connector, SPRING_MORNING)
    assert version == gd_tariff.versions.get()
    assert snapshot.timezone == "Asia/Urumqi"
    assert snapshot.model_number == version.model_number
    # 02:15 UTC is 08:15 in Urumqi (flat) but 10:15 in Shanghai (peak).
    assert pricing.price_at(snapshot, SPRING_MORNING).period is pricing.Period.FLAT


def test_snapshot_for_connector_without_tariff_is_none(pile):
    assert snapshot_for_connector(pile.connectors.get(), SPRING_MORNING) is None


def test_pile_snapshots_read_each_version_once_and_follow_a_new_one(station, pile, other_pile,
                                                                   flat_tariff):
    """The batch read of a login storm: every pile's tariff in two statements once a version
    is known (its snapshot parsed once and shared), the station's zone on it, and a newly
    published version in force at once (versions are immutable: no stale entry to drop)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.tariffs.selectors import pile_snapshots
    from stations.models import Pile

    station_tariff_assign(stations=[station], tariff=flat_tariff)
    first = flat_tariff.versions.get()
    piles = Pile.objects.filter(pk__in=[pile.pk, other_pile.pk]).order_by("code")
    assert [(row.code, row.pile_id) for row in pile_snapshots(piles, SPRING_MORNING)] == \
        sorted([(pile.code, pile.pk), (other_pile.code, other_pile.pk)])
    with CaptureQueriesContext(connection) as sent:
        rows = pile_snapshots(piles, SPRING_MORNING)
    assert len(sent.captured_queries) == 2  # the piles, the versions in force; no snapshot
    assert rows[0].snapshot is rows[1].snapshot
    assert rows[0].snapshot.model_number == first.model_number
    assert rows[0].time_zone == station.time_zone == rows[0].snapshot.timezone

    tariff_update(tariff=flat_tariff, draft=pricing.flat_tariff(Decimal("1.2"), Decimal("0.5")))
    second = tariff_version_publish(tariff=flat_tariff, effective_from=T0)
    later = pile_snapshots(piles, T0)
    assert {row.snapshot.model_number for row in later} == {second.model_number}
    assert later[0].snapshot.price_of(later[0].snapshot.slots[0]).electricity == Decimal("1.2")
    assert pile_snapshots(piles, T0 - timedelta(microseconds=1))[0].snapshot is rows[0].snapshot
