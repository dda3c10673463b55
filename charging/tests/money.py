"""Money helpers for charging tests: put cash in a wallet, read it, check the ledger."""

from decimal import Decimal

from settlement import selectors, services


def wallet_credit(member, amount: Decimal) -> None:
    """Cash in ``member``'s wallet as a paid top-up would leave it (WeChat clearing → cash)."""
    import uuid

    services.wallet_top_up(member=member, amount=amount, key=f"test-top-up:{uuid.uuid4().hex}")


def balance(member):
    return selectors.wallet_balance(member)


def ledger_clean() -> None:
    report = selectors.ledger_check()
    assert not report.drift and not report.unbalanced, report
