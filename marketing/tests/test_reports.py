"""Marketing's statistics on the operator's report page: SVIP, points and coupons by day,
with a date range, XLSX export, and only for staff with the marketing permission."""

from datetime import timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from django.test import Client

from accounts.models import Member
from charging.tests.money import wallet_credit
from marketing import coupons, mall, reports, svip
from marketing.common import local
from marketing.models import CouponTemplate, MallItem, PointsAccount, SvipPlan

from .helpers import settled_order

D = Decimal
HOST = {"HTTP_HOST": "tenant-a.testserver"}
pytestmark = pytest.mark.django_db


def _client(django_user_model, role):
    from accounts.roles import role_group

    user = django_user_model.objects.create_user(role, password="x", is_staff=True)
    user.groups.add(role_group(role))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def activity(funded_member, connector, tariff):
    plan = SvipPlan.objects.create(name="月卡", months=1, price=D("20"), service_discount_percent=D("10"))
    svip.svip_buy(member=funded_member, plan_id=plan.pk)
    svip.svip_buy(member=funded_member, plan_id=plan.pk)  # a renewal
    other = Member.objects.create(openid="openid-report-2", nickname="车主2")
    wallet_credit(other, D("50"))
    refunded = svip.svip_buy(member=other, plan_id=plan.pk)
    svip.svip_refund(purchase_id=refunded.pk, member=other)
    template = CouponTemplate.objects.create(name="满10减3", kind="threshold", amount=D("3"), threshold=D("10"),
                                             claimable=True, per_member_limit=2)
    coupons.coupon_claim(member=funded_member, template_id=template.pk)
    coupons.coupon_claim(member=other, template_id=template.pk)
    settled_order(funded_member, connector)  # ¥15: SVIP ¥0.50 + coupon ¥3 off, pays ¥11.50 → 11 points
    item = MallItem.objects.create(name="洗车券", kind="goods", points=5, stock=3)
    mall.mall_redeem(member=funded_member, item_id=item.pk, recipient="张三", phone="13800000000",
                     address="广州市天河区")
    return local().date()


def test_the_three_reports_by_day(activity):
    today = activity
    columns, rows = reports.svip_report(None, today - timedelta(days=1), today)
    assert len(columns) == 9 and rows[0][1:] == [0, 0, D("0.00"), 0, D("0.00"), 0, D("0.00"), 0]
    assert rows[1][1:] == [2, 1, D("60.00"), 1, D("20.00"), 1, D("0.50"), 1]
    _c, rows = reports.points_report(None, today, today)
    assert rows == [[today, 11, 5, 0, 0, 6]]
    assert sum(PointsAccount.objects.values_list("balance", flat=True)) == 6  # the liability shown
    _c, rows = reports.coupon_report(None, today, today)
    assert rows == [[today, "满10减3", 2, 1, D("3.00")], ["合计", "", 2, 1, D("3.00")]]


def test_the_report_page_lists_them_with_export_and_permission(activity, django_user_model):
    from openpyxl import load_workbook

    from accounts.roles import OPERATOR_ADMIN, STATION_OWNER

    boss = _client(django_user_model, OPERATOR_ADMIN)
    day = activity.isoformat()
    r = boss.get("/reports/", {"kind": "svip", "from": day, "to": day}, **HOST)
    assert r.status_code == 200
    assert {"svip", "points", "coupons"} <= {k for k, _t in r.context["kinds"]}
    assert r.context["rows"][0][1] == 2 and not r.context["by_station"]
    r = boss.get("/reports/", {"kind": "coupons", "from": day, "to": day, "format": "xlsx"}, **HOST)
    sheet = load_workbook(BytesIO(r.content)).active
    assert [c.value for c in sheet[2]][1:] == ["满10减3", 2, 1, 3]
    r = boss.get("/reports/", {"kind": "points", "from": "2026-02-30", "to": day}, **HOST)
    assert r.status_code == 400
    home = boss.get("/admin/", **HOST)
    assert b'data-kind="svip"' in home.content and b'data-kind="coupons"' in home.content
    owner = _client(django_user_model, STATION_OWNER)
    r = owner.get("/reports/", {"kind": "svip", "from": day, "to": day}, **HOST)
    assert r.status_code == 400 and "svip" not in {k for k, _t in r.context["kinds"]}
