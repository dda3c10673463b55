"""The tariff fixtures (a station with two YKC piles, tariffs) for the billing-model sync tests;
the codec tests need none."""

from billing.tariffs.tests.conftest import (  # noqa: F401 (fixtures)
    flat_tariff,
    gd_tariff,
    other_pile,
    pile,
    station,
)
