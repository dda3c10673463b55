"""Fixtures for all of billing's tests: a ledger check after every test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def ledger_clean(request):
    """After each test that touched the database: the tenant's ledger balances."""
    if "db" not in request.fixturenames or "live_operator" in request.fixturenames:
        yield
        return
    request.getfixturevalue("db")
    yield
    from django_tenants.utils import tenant_context

    from settlement.selectors import ledger_check

    with tenant_context(request.getfixturevalue("operators")["tenant-a"]):
        report = ledger_check()
    assert report.ok, report
