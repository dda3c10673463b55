"""The ledger: balanced, append-only, idempotent; holds, charges, arrears, reversals."""

from contextlib import nullcontext
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from django_tenants.utils import tenant_context

from settlement import services
from settlement.models import Account, Entry, Hold, MoneyPolicy, Posting
from settlement.selectors import ledger_check, wallet_balance, wallet_history

D = Decimal


def test_top_up_posts_balanced_entries(funded):
    posting = Posting.objects.get(key="wx:txn:seed")
    amounts = sorted(posting.entries.values_list("amount", flat=True))
    assert amounts == [D("-100.00"), D("-10.00"), D("10.00"), D("100.00")]
    assert wallet_balance(funded) == services_balance(cash="100", bonus="10", free_cash="100")
    assert services.system_account(Account.Kind.CLEARING).balance == D("100.00")


def services_balance(*, cash="0", bonus="0", held="0", arrears="0", free_cash=None, available=None):
    from settlement.selectors import WalletBalance

    cash, bonus, held = D(cash), D(bonus), D(held)
    return WalletBalance(
        cash=cash, bonus=bonus, held=held,
        available=D(available) if available is not None else cash + bonus - held,
        arrears=D(arrears), free_cash=D(free_cash) if free_cash is not None else cash,
    )


def test_same_key_posts_once(funded):
    again = services.wallet_top_up(member=funded, amount=D("999"), key="wx:txn:seed")
    assert again.key == "wx:txn:seed"
    assert wallet_balance(funded).cash == D("100.00")
    assert Posting.objects.count() == 1


def test_hold_then_charge_consumes_the_hold(funded):
    hold = services.wallet_hold(member=funded, amount=D("30"), key="order:1")
    assert (hold.cash, hold.bonus) == (D("30.00"), D("0.00"))
    assert wallet_balance(funded).available == D("80.00")
    assert wallet_balance(funded).held == D("30.00")
    assert services.wallet_hold(member=funded, amount=D("30"), key="order:1").pk == hold.pk
    services.order_charge(member=funded, amount=D("25.50"), key="order:1:charge", hold_key="order:1")
    hold.refresh_from_db()
    assert hold.status == Hold.Status.CONSUMED
    assert wallet_balance(funded) == services_balance(cash="74.50", bonus="10")
    assert services.system_account(Account.Kind.REVENUE).balance == D("25.50")


def test_hold_release_gives_everything_back(funded):
    services.wallet_hold(member=funded, amount=D("105"), key="order:2")
    assert wallet_balance(funded).available == D("5.00")
    services.wallet_hold_release(key="order:2")
    services.wallet_hold_release(key="order:2")  # idempotent
    assert wallet_balance(funded) == services_balance(cash="100", bonus="10")


def test_hold_beyond_available_is_refused(funded):
    with pytest.raises(services.InsufficientFunds):
        services.wallet_hold(member=funded, amount=D("110.01"), key="order:3")
    assert not Hold.objects.exists()


def test_charge_spends_cash_then_bonus_then_arrears(funded):
    services.order_charge(member=funded, amount=D("115"), key="order:4:charge", memo="桩 1 枪 1")
    assert wallet_balance(funded) == services_balance(arrears="5")
    # the next top-up pays the arrears first
    services.wallet_top_up(member=funded, amount=D("20"), key="wx:txn:2")
    assert wallet_balance(funded) == services_balance(cash="15")
    history = list(wallet_history(funded))
    assert [p.kind for p in history] == ["arrears_settle", "top_up", "order_charge", "top_up"]
    charge = history[2]
    assert (charge.cash_delta, charge.bonus_delta, charge.arrears_delta) == (
        D("-100.00"), D("-10.00"), D("5.00")
    )


def test_bonus_first_policy(funded):
    MoneyPolicy.objects.update_or_create(defaults={"spend_order": "bonus_first"})
    services.order_charge(member=funded, amount=D("15"), key="order:5:charge")
    assert wallet_balance(funded) == services_balance(cash="95", bonus="0")


def test_charge_goes_to_operator_revenue(funded):
    # Owners' shares are moved out of revenue by the split posting (settlement/tests/test_splits.py).
    services.order_charge(member=funded, amount=D("10"), key="order:6:charge")
    assert services.system_account(Account.Kind.REVENUE).balance == D("10.00")


def test_reverse_takes_back_from_several_credits_in_proportion(funded):
    revenue = services.system_account(Account.Kind.REVENUE)
    commission = services.system_account(Account.Kind.COMMISSION)
    clearing = services.system_account(Account.Kind.CLEARING)
    posting = services.posting_create(
        key="p", kind=Posting.Kind.ADJUSTMENT,
        lines=[(clearing, D("100.01")), (revenue, D("-50.01")), (commission, D("-50.00"))],
    )
    services.posting_reverse(posting=posting, key="p:1", amount=D("10.01"))
    revenue.refresh_from_db()
    commission.refresh_from_db()
    # 10.01 in proportion 50.01 : 50.00 → 5.01 and 5.00 (the spare fen to the larger fraction).
    assert (revenue.balance, commission.balance) == (D("45.00"), D("45.00"))
    services.posting_reverse(posting=posting, key="p:2")
    revenue.refresh_from_db()
    commission.refresh_from_db()
    assert (revenue.balance, commission.balance) == (D("0.00"), D("0.00"))


def test_reverse_in_full_and_in_parts(funded):
    charge = services.order_charge(member=funded, amount=D("100.01"), key="c")
    part = services.posting_reverse(posting=charge, key="c:refund:1", amount=D("10.01"))
    assert part.reverses_id == charge.pk
    assert wallet_balance(funded).cash == D("10.01")  # back to cash first (cash was all spent)
    assert services.system_account(Account.Kind.REVENUE).balance == D("90.00")
    rest = services.posting_reverse(posting=charge, key="c:refund:2")
    assert sum(e.amount for e in rest.entries.all()) == 0
    assert wallet_balance(funded) == services_balance(cash="100", bonus="10")
    with pytest.raises(services.LedgerError) as exc:
        services.posting_reverse(posting=charge, key="c:refund:3", amount=D("0.01"))
    assert exc.value.code == "reversal_exceeds"


def test_reversing_a_spent_top_up_is_refused(funded):
    services.order_charge(member=funded, amount=D("100"), key="spend")
    with pytest.raises(services.InsufficientFunds):
        services.posting_reverse(posting=Posting.objects.get(key="wx:txn:seed"), key="undo")


def test_free_order_leaves_a_trace_without_entries(funded):
    posting = services.order_charge(member=funded, amount=D("0"), key="free")
    assert posting.entries.count() == 0
    assert wallet_balance(funded).cash == D("100.00")


def test_unbalanced_posting_is_refused(member):
    cash = services.member_accounts(member).cash
    clearing = services.system_account(Account.Kind.CLEARING)
    with pytest.raises(services.LedgerError):
        services.posting_create(key="bad", kind="adjustment", lines=[(clearing, D("1")), (cash, D("-0.99"))])
    assert not Posting.objects.filter(key="bad").exists()


def test_entries_are_append_only(funded):
    entry = Entry.objects.first()
    # The trigger's RAISE (SQLSTATE P0001) is InternalError under psycopg2 and
    # ProgrammingError under psycopg 3: the trigger is identified by its message.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Entry.objects.filter(pk=entry.pk).update(amount=D("1"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Entry.objects.filter(pk=entry.pk).delete()


def test_database_refuses_an_unbalanced_posting_at_commit(funded):
    clearing = services.system_account(Account.Kind.CLEARING)
    posting = Posting.objects.create(key="raw", kind="adjustment")
    with pytest.raises(DatabaseError, match="does not balance"), transaction.atomic():
        Entry.objects.create(posting=posting, account=clearing, amount=D("1"))
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _balance_function(schema: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef(%s::regproc)", [f"{schema}.settlement_posting_balanced"])
        return cursor.fetchone()[0]


def _unbalanced_refused(key: str, *, commit_in=None) -> None:
    """An entry of 1.00 alone on a new posting is refused when the deferred check runs
    (``SET CONSTRAINTS ALL IMMEDIATE`` stands for the commit), run under ``commit_in``'s
    search path when given."""
    clearing = services.system_account(Account.Kind.CLEARING)
    posting = Posting.objects.create(key=key, kind="adjustment")
    with pytest.raises(DatabaseError, match="does not balance"), transaction.atomic():
        Entry.objects.create(posting=posting, account=clearing, amount=D("1"))
        with tenant_context(commit_in) if commit_in else nullcontext(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_the_balance_check_is_static_sql_on_each_operators_own_entries(funded, tenant, other_tenant):
    """Migration 0010: the trigger function of every schema (operators cloned from the
    template too) reads its own schema's entries with static SQL, whatever the search path
    when the check runs."""
    for operator in (tenant, other_tenant):
        assert f"FROM {operator.schema_name}.settlement_entry" in _balance_function(operator.schema_name)
    # The check runs with the other operator's search path: still this operator's entries.
    _unbalanced_refused("raw-a", commit_in=other_tenant)
    with tenant_context(other_tenant):
        _unbalanced_refused("raw-b", commit_in=tenant)


def test_a_balance_function_naming_another_schema_falls_back_to_its_tables_schema(tenant, other_tenant):
    """A copy of the function whose body still names another schema (a clone not rewritten)
    must not check against that schema's entries: it takes the dynamic query."""
    body = _balance_function(tenant.schema_name)
    copied = body.replace(f"FUNCTION {tenant.schema_name}.", f"FUNCTION {other_tenant.schema_name}.", 1)
    assert copied != body and f"FROM {tenant.schema_name}.settlement_entry" in copied
    with tenant_context(other_tenant):
        with connection.cursor() as cursor:
            cursor.execute(copied)
        _unbalanced_refused("raw-copy")


def test_wallet_cannot_go_negative_in_the_database(funded):
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(kind=Account.Kind.WALLET_CASH).update(balance=D("-1"))


def test_ledger_verify_command(funded, capsys, tenant):
    call_command("ledger_verify", tenant="tenant-a")
    assert "ok" in capsys.readouterr().out
    cash = services.member_accounts(funded).cash
    Account.objects.filter(pk=cash.pk).update(balance=D("99.99"))  # drift
    assert not ledger_check().ok
    with pytest.raises(SystemExit) as exc:
        call_command("ledger_verify", tenant="tenant-a")
    assert exc.value.code == 1
    assert "DRIFT" in capsys.readouterr().err
    Account.objects.filter(pk=cash.pk).update(balance=D("100.00"))


def test_wallet_api_and_history_pages(funded, member_api):
    for i in range(3):
        services.order_charge(member=funded, amount=D("1"), key=f"o{i}", memo=f"订单 {i}")
    services.wallet_hold(member=funded, amount=D("5"), key="h")
    body = member_api.get("/api/app/v1/wallet").json()
    assert body == {"cash": "97.00", "bonus": "10.00", "held": "5.00", "available": "102.00", "arrears": "0.00"}
    page = member_api.get("/api/app/v1/wallet/ledger?page_size=2").json()
    assert page["count"] == 4 and len(page["results"]) == 2  # the hold is not a movement
    assert page["results"][0]["memo"] == "订单 2" and page["results"][0]["cash"] == "-1.00"
