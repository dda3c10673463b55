import pytest


@pytest.fixture(autouse=True)
def ledger_clean(request):
    """After each test that touched the database: tenant-a's ledger balances (checked
    before the test's transaction is rolled back)."""
    if "db" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("db")
    yield
    from django_tenants.utils import tenant_context

    from settlement.selectors import ledger_check

    with tenant_context(request.getfixturevalue("operators")["tenant-a"]):
        report = ledger_check()
    assert report.ok, report


@pytest.fixture
def funded(member):
    """``member`` with 100.00 cash and 10.00 bonus."""
    from decimal import Decimal

    from settlement.services import wallet_top_up

    wallet_top_up(member=member, amount=Decimal("100"), bonus=Decimal("10"), key="wx:txn:seed")
    return member


# The charging fixtures (station, pile, flat tariff 1.0 + 0.5 yuan/kWh, funded member) for
# orders settled end to end.
from charging.tests.conftest import connector, funded_member, pile, station, tariff  # noqa: E402, F401


@pytest.fixture
def owner(tenant, django_user_model):
    return django_user_model.objects.create_user("owner-li", password="owner-pass-123", is_staff=True)


@pytest.fixture
def owner2(tenant, django_user_model):
    return django_user_model.objects.create_user("owner-wang", password="owner-pass-123", is_staff=True)
