"""Concurrency on committed data in an operator made for this module (dropped after).

Threads have their own database connections, so they need committed rows: this module
does not use the rolled-back ``db`` fixture; its operator's schema is dropped at the end,
after ``ledger_verify`` has checked it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests
from django.core.management import call_command
from django.db import connection, connections
from django_tenants.utils import tenant_context

from billing.payments import services
from billing.payments.models import Payment
from demo.wechatpay import configure_for_fake
from settlement import services as ledger
from settlement.models import Posting
from settlement.selectors import wallet_balance

D = Decimal
SLUG = "wallet-live"


@pytest.fixture(scope="module")
def live_operator(pay_fake, django_db_blocker):
    from accounts.models import Member
    from tenants.models import MiniProgram
    from tenants.services import operator_create

    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        operator = operator_create(
            slug=SLUG, name="并发测试", domain=f"{SLUG}.testserver", admin_username="admin",
            admin_password="admin-pass-123",
        ).operator
        mp = MiniProgram.objects.create(operator=operator, appid="wxwalletlive0001", app_secret="s")
        configure_for_fake(mp, fake_url=pay_fake.server.url, mchid="1900000199", notify_base_url=pay_fake.live.url)
        with tenant_context(operator):
            operator.member = Member.objects.create(openid="openid-live")
        try:
            yield operator
            call_command("ledger_verify", tenant=SLUG)  # exits 1 (fails the test run) on drift
        finally:
            connection.set_schema_to_public()
            operator.delete(force_drop=True)


def test_notify_route_takes_post_only(db, pay_fake):
    # (Also makes pytest-django set up the test database when this module runs alone.)
    from django.test import Client

    assert Client().get("/api/pay/notify/tenant-a/payment").status_code == 405


def _in_thread(operator, func, *args):
    def run():
        try:
            with tenant_context(operator):
                return func(*args)
        finally:
            connections.close_all()

    return run


def _post_note(url: str, note: dict) -> int:
    return requests.post(url, data=note["body"].encode(), headers=note["headers"], timeout=20).status_code


def test_same_notification_ten_times_at_once_credits_once(live_operator, pay_fake):
    with tenant_context(live_operator):
        member = live_operator.member
        payment = services.top_up_create(member=member, amount=D("66")).payment
        before = wallet_balance(member).cash
    note = pay_fake.paid_notification(payment.out_trade_no)
    url = f"{pay_fake.live.url}/api/pay/notify/{SLUG}/payment"
    barrier = threading.Barrier(10)

    def send():
        barrier.wait()
        return _post_note(url, note)

    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda _: send(), range(10)))
    assert codes == [204] * 10
    with tenant_context(live_operator):
        assert wallet_balance(member).cash == before + D("66.00")
        assert Posting.objects.filter(ref=payment.out_trade_no).count() == 1
        assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PAID


def test_fifty_concurrent_charges_and_top_ups_on_one_wallet(live_operator, pay_fake):
    with tenant_context(live_operator):
        member = live_operator.member
        start = wallet_balance(member)
        notes = []
        for _ in range(25):
            payment = services.top_up_create(member=member, amount=D("10")).payment
            notes.append(pay_fake.paid_notification(payment.out_trade_no))
    url = f"{pay_fake.live.url}/api/pay/notify/{SLUG}/payment"
    jobs = [lambda n=n: _post_note(url, n) for n in notes]
    jobs += [
        _in_thread(
            live_operator,
            lambda i=i: ledger.order_charge(member=member, amount=D("3.33"), key=f"live:order:{i}").pk,
        )
        for i in range(25)
    ]
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(run, jobs))
    assert results[:25] == [204] * 25
    with tenant_context(live_operator):
        end = wallet_balance(member)
        net = (end.cash - end.arrears) - (start.cash - start.arrears)
        assert net == D("250.00") - D("83.25")
        assert end.cash == 0 or end.arrears == 0  # a top-up pays arrears off first
        assert Posting.objects.filter(kind="order_charge", key__startswith="live:order:").count() == 25
