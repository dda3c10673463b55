"""Service-provider mode (服务商 / 特约商户) against the fake WeChat Pay server, real HTTP and
real crypto: tenant-a is a sub-merchant of the platform's service provider; the payment is a
partner JSAPI order signed with the provider's key, naming sp_mchid/sp_appid and the
operator's sub_mchid/sub_appid; the notification comes to ``…/payment/sp``, signed by WeChat
and encrypted with the provider's APIv3 key; refunds, queries and closes go the partner way;
a missing sub_mchid is a clear refusal, never a 500."""

from decimal import Decimal
from urllib.parse import urlparse

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from billing.payments import services
from billing.payments.models import Payment, PaymentRefund, WalletRefund
from billing.payments.wechatpay import PayError
from fakes.pytest_wechatpay import SP_MCHID, SUB_MCHID, TENANT_A_MCHID
from settlement.models import Posting
from settlement.selectors import ledger_check, wallet_balance
from tenants.models import MiniProgram, Operator, ServiceProvider

D = Decimal
TOP_UPS = "/api/app/v1/wallet/top-ups"


def _post(note: dict, path: str | None = None):
    """Deliver a notification the fake built to the path WeChat would call (its notify_url)."""
    return Client().post(
        path or urlparse(note["url"]).path, data=note["body"].encode(), content_type="application/json",
        headers={k: v for k, v in note["headers"].items() if k.lower() != "content-type"},
    )


def _top_up(member_api, amount="100.00"):
    r = member_api.post(TOP_UPS, {"amount": amount}, format="json")
    assert r.status_code == 201, r.json()
    return Payment.objects.get(out_trade_no=r.json()["payment"]["out_trade_no"]), r.json()["pay_params"]


def test_top_up_paid_as_a_sub_merchant_credits_once(partner, fake, member, member_api):
    payment, params = _top_up(member_api)
    appid = MiniProgram.objects.get(operator__schema_name=connection.schema_name).appid
    assert (payment.sp_mchid, payment.mchid, payment.appid) == (SP_MCHID, SUB_MCHID, appid)
    sent = fake.server.order(payment.out_trade_no, SUB_MCHID).request
    assert (sent["sp_mchid"], sent["sp_appid"], sent["sub_mchid"], sent["sub_appid"]) == (
        SP_MCHID, partner.sp_appid, SUB_MCHID, appid)
    assert sent["payer"] == {"sub_openid": member.openid} and "mchid" not in sent
    assert urlparse(sent["notify_url"]).path == "/api/pay/notify/tenant-a/payment/sp"
    # wx.requestPayment with the mini-program's appid, signed with the provider's key
    assert params["appId"] == appid
    reply = requests.post(f"{fake.server.url}/_fake/pay",
                          json={**params, "pay_sign": params["paySign"], "deliver": False}, timeout=5)
    assert reply.status_code == 200, reply.text
    note = reply.json()["notification"]
    assert note["resource"]["sp_mchid"] == SP_MCHID and note["resource"]["sub_mchid"] == SUB_MCHID
    # Encrypted with the provider's APIv3 key: the direct merchant's path cannot read it.
    assert _post(note, "/api/pay/notify/tenant-a/payment").status_code == 401
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    assert _post(note).status_code == 204
    assert _post(note).status_code == 204  # a duplicate: answered, not credited again
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.transaction_id
    assert wallet_balance(member).cash == D("100.00")
    assert Posting.objects.filter(kind=Posting.Kind.TOP_UP, ref=payment.out_trade_no).count() == 1
    # The order query goes the partner way too (lost-notification recovery finds it paid).
    txn = services.common._payment_gateway(payment).query(payment.out_trade_no)
    assert (txn["trade_state"], txn["sub_mchid"], txn["payer"]) == ("SUCCESS", SUB_MCHID, {"sub_openid": member.openid})
    assert ledger_check().ok


def test_notification_of_another_sub_merchant_is_refused(partner, fake, member, member_api):
    payment, _params = _top_up(member_api, "30.00")
    fake.server.register_sub_merchant(SP_MCHID, "1900009199", payment.appid)
    order = fake.server.order(payment.out_trade_no, SUB_MCHID)
    order.mchid = "1900009199"  # WeChat says another sub-merchant was paid
    note = fake.paid_notification(payment.out_trade_no, mchid=SUB_MCHID)
    assert _post(note).status_code == 400
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING and payment.flagged and "sub_mchid" in payment.flag_reason


def test_lost_notification_is_recovered_by_the_partner_query(partner, fake, member, member_api):
    payment, _params = _top_up(member_api, "20.00")
    fake.paid_notification(payment.out_trade_no)  # paid; the notification never arrives
    assert services.payment_sync(payment=payment).status == Payment.Status.PAID
    assert wallet_balance(member).cash == D("20.00")


def test_refund_as_a_sub_merchant(partner, fake, member, member_api):
    payment, _params = _top_up(member_api, "50.00")
    assert _post(fake.paid_notification(payment.out_trade_no)).status_code == 204
    wallet_refund = services.wallet_refund_request(member=member, amount=D("20.00"))
    if wallet_refund.status == WalletRefund.Status.REVIEW:
        services.wallet_refund_review(refund=wallet_refund, approve=True, reviewer=None)
    made = PaymentRefund.objects.get(payment=payment)
    made = services.payment_refund_submit(refund_id=made.pk)  # the task queued on commit
    assert made.status == PaymentRefund.Status.PROCESSING
    no = made.out_refund_no
    stored = fake.server.refunds[(SUB_MCHID, no)]
    assert stored.request["sub_mchid"] == SUB_MCHID
    assert urlparse(stored.notify_url).path == "/api/pay/notify/tenant-a/refund/sp"
    assert services.payment_refund_sync(refund=made).status == PaymentRefund.Status.PROCESSING
    note = fake.server.complete_refund(no, mchid=SUB_MCHID, deliver=False)["notification"]
    assert (note["resource"]["sp_mchid"], note["resource"]["sub_mchid"]) == (SP_MCHID, SUB_MCHID)
    assert _post(note).status_code == 204
    assert _post(note).status_code == 204  # once
    made.refresh_from_db()
    assert made.status == PaymentRefund.Status.SUCCESS
    assert Posting.objects.filter(kind=Posting.Kind.REFUND_SUCCESS).count() == 1
    assert wallet_balance(member).cash == D("30.00") and ledger_check().ok


def test_missing_sub_mchid_is_a_clear_refusal(partner, member_api):
    Operator.objects.filter(pk=connection.tenant.pk).update(wechatpay_sub_mchid="")
    r = member_api.post(TOP_UPS, {"amount": "10.00"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "sub_mchid_missing", r.json()
    assert "sub_mchid" in r.json()["detail"] and not Payment.objects.exists()
    ServiceProvider.objects.all().delete()
    r = member_api.post(TOP_UPS, {"amount": "10.00"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "sp_not_configured"


def test_direct_merchant_stays_the_default(fake, member_api):
    payment, _params = _top_up(member_api, "10.00")
    assert (payment.sp_mchid, payment.mchid) == ("", TENANT_A_MCHID)
    sent = fake.server.order(payment.out_trade_no, TENANT_A_MCHID).request
    assert "sub_mchid" not in sent and sent["payer"] == {"openid": payment.openid}


def test_a_sub_merchant_not_under_the_provider_is_refused(partner, fake, member_api):
    Operator.objects.filter(pk=connection.tenant.pk).update(wechatpay_sub_mchid="1900009888")
    r = member_api.post(TOP_UPS, {"amount": "10.00"}, format="json")
    assert r.status_code == 502 and r.json()["code"] == "payment_refused", r.json()
    assert "NO_AUTH" in Payment.objects.get().last_error


def test_super_admin_switch_needs_the_provider_and_sub_mchid(tenant):
    connection.set_schema_to_public()
    root = get_user_model().objects.create_superuser("sp-root", "", "sp-root-pass-1")
    client = Client(HTTP_HOST="testserver")
    client.force_login(root)
    url = f"/admin/tenants/operator/{tenant.pk}/change/"
    form = {"name": tenant.name, "time_zone": tenant.time_zone, "wechatpay_partner_mode": "on",
            "wechatpay_sub_mchid": "", "domains-TOTAL_FORMS": "0", "domains-INITIAL_FORMS": "0"}
    page = client.post(url, form)
    assert page.status_code == 200, page.status_code
    text = page.content.decode()
    assert "服务商模式需要运营商的特约商户号" in text
    page = client.post(url, {**form, "wechatpay_sub_mchid": "1900009101"})
    assert page.status_code == 200 and "请先设置平台的微信支付服务商账户" in page.content.decode()
    assert not Operator.objects.get(pk=tenant.pk).wechatpay_partner_mode
    # the provider's page: secrets masked, never shown
    ServiceProvider.objects.create(
        sp_mchid=SP_MCHID, sp_appid="wxsp000000000001", merchant_name="平台服务商",
        apiv3_key="k" * 32, merchant_cert_serial="AB", merchant_private_key="-----BEGIN PRIVATE KEY-----x",
        wechatpay_public_key="-----BEGIN PUBLIC KEY-----y", wechatpay_public_key_id="PUB_KEY_ID_1")
    page = client.post(url, {**form, "wechatpay_sub_mchid": "1900009101"})
    assert page.status_code == 302, page.content.decode()[:2000]
    saved = Operator.objects.get(pk=tenant.pk)
    assert (saved.wechatpay_partner_mode, saved.wechatpay_sub_mchid) == (True, "1900009101")
    sp_page = client.get(f"/admin/tenants/serviceprovider/{ServiceProvider.current().pk}/change/")
    assert sp_page.status_code == 200 and "k" * 32 not in sp_page.content.decode()
    tenant.wechatpay_partner_mode, tenant.wechatpay_sub_mchid = False, ""


def test_merchant_transfers_are_never_sent_from_the_provider(partner, fake):
    gateway = services.common._gateway()
    assert gateway.partner and gateway.mchid == SUB_MCHID and gateway.sp_mchid == SP_MCHID
    with pytest.raises(PayError) as exc:
        gateway.transfer(out_bill_no="OB0001", openid="o-x", amount_fen=100, remark="x", scene_id="1005")
    assert exc.value.code == "PARTNER_NO_TRANSFER" and not exc.value.unclear
    assert not [k for k in fake.server.transfers if k[1] == "OB0001"]
    # the operator's payouts use its own merchant, whatever the mode
    assert services.common._gateway(partner=False).mchid == TENANT_A_MCHID
