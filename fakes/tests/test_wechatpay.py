"""fakes.wechatpay driven by the real wechatpayv3 2.0.4 SDK (public-key mode) over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import requests
from wechatpayv3 import WeChatPay
from wechatpayv3.utils import rsa_sign

from fakes import wechatpay
from fakes.tests.conftest import APPID, MCHID, MerchantKeys, Receiver, make_wxpay

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


def _no() -> str:
    return "T" + uuid.uuid4().hex[:20]


def _prepay(wxpay: WeChatPay, out_trade_no: str, total: int = 5363) -> dict:
    code, text = wxpay.pay(
        description="充电订单",
        out_trade_no=out_trade_no,
        amount={"total": total},
        payer={"openid": OPENID},
    )
    assert code == 200, text
    return json.loads(text)


def _control(server: wechatpay.WeChatPayServer, path: str, payload: dict) -> requests.Response:
    return requests.post(f"{server.url}/_fake/{path}", json=payload, timeout=10)


def test_prepay_query_pay_and_notification(
    pay_server: wechatpay.WeChatPayServer, wxpay: WeChatPay, receiver: Receiver
) -> None:
    no = _no()
    prepay = _prepay(wxpay, no)
    code, text = wxpay.query(out_trade_no=no)
    before = json.loads(text)

    paid = _control(pay_server, "pay", {"out_trade_no": no})
    note = receiver.next_accepted()
    code2, text2 = wxpay.query(out_trade_no=no)
    after = json.loads(text2)
    code3, by_id = wxpay.query(transaction_id=after["transaction_id"])

    assert prepay["prepay_id"].startswith("wx")
    assert code == 200 and before["trade_state"] == "NOTPAY"
    assert paid.status_code == 200
    assert paid.json()["notification"]["delivered"] is True
    assert paid.json()["notification"]["attempts"][0]["status"] == 204
    assert note["event_type"] == "TRANSACTION.SUCCESS"
    assert note["resource_type"] == "encrypt-resource"
    assert note["resource"]["out_trade_no"] == no
    assert note["resource"]["amount"]["total"] == 5363
    assert note["resource"]["mchid"] == MCHID and note["resource"]["appid"] == APPID
    assert note["resource"]["payer"]["openid"] == OPENID
    assert code2 == 200 and after["trade_state"] == "SUCCESS"
    assert after["transaction_id"] == note["resource"]["transaction_id"]
    assert code3 == 200 and json.loads(by_id)["out_trade_no"] == no


def test_repeat_prepay_and_conflicts(
    pay_server: wechatpay.WeChatPayServer, wxpay: WeChatPay
) -> None:
    no = _no()
    _prepay(wxpay, no)
    _prepay(wxpay, no)  # same parameters again: allowed, new prepay_id
    code, text = wxpay.pay(
        description="other", out_trade_no=no, amount={"total": 1}, payer={"openid": OPENID}
    )
    pay_server.mark_paid(no, deliver=False)
    code2, text2 = wxpay.pay(
        description="充电订单", out_trade_no=no, amount={"total": 5363}, payer={"openid": OPENID}
    )

    assert code == 400 and json.loads(text)["code"] == "INVALID_REQUEST"
    assert code2 == 400 and json.loads(text2)["code"] == "ORDERPAID"


def test_close(pay_server: wechatpay.WeChatPayServer, wxpay: WeChatPay) -> None:
    no = _no()
    _prepay(wxpay, no)

    code, text = wxpay.close(out_trade_no=no)
    _, queried = wxpay.query(out_trade_no=no)
    late_pay = _control(pay_server, "pay", {"out_trade_no": no})

    assert code == 204
    assert json.loads(queried)["trade_state"] == "CLOSED"
    assert late_pay.status_code == 400 and late_pay.json()["code"] == "ORDER_CLOSED"


def test_query_unknown_order(wxpay: WeChatPay) -> None:
    code, text = wxpay.query(out_trade_no="NOPE000000001")

    assert code == 404 and json.loads(text)["code"] == "ORDER_NOT_EXIST"


def test_refund_flow(
    pay_server: wechatpay.WeChatPayServer, wxpay: WeChatPay, receiver: Receiver
) -> None:
    no, rno = _no(), _no()
    _prepay(wxpay, no, total=1000)
    pay_server.mark_paid(no)
    receiver.next_accepted()

    code, text = wxpay.refund(
        out_refund_no=rno, amount={"refund": 600, "total": 1000, "currency": "CNY"}, out_trade_no=no
    )
    again = wxpay.refund(
        out_refund_no=rno, amount={"refund": 600, "total": 1000, "currency": "CNY"}, out_trade_no=no
    )
    too_much = wxpay.refund(
        out_refund_no=_no(),
        amount={"refund": 500, "total": 1000, "currency": "CNY"},
        out_trade_no=no,
    )
    _, pending = wxpay.query_refund(out_refund_no=rno)
    done = _control(pay_server, "refund", {"out_refund_no": rno})
    note = receiver.next_accepted()
    _, final = wxpay.query_refund(out_refund_no=rno)
    _, order = wxpay.query(out_trade_no=no)

    refund = json.loads(text)
    assert code == 200 and refund["status"] == "PROCESSING"
    assert refund["amount"]["refund"] == 600 and refund["out_trade_no"] == no
    assert again[0] == 200 and json.loads(again[1])["refund_id"] == refund["refund_id"]
    assert too_much[0] == 400 and json.loads(too_much[1])["code"] == "INVALID_REQUEST"
    assert json.loads(pending)["status"] == "PROCESSING"
    assert done.status_code == 200
    assert note["event_type"] == "REFUND.SUCCESS"
    assert note["resource"]["refund_status"] == "SUCCESS"
    assert note["resource"]["out_refund_no"] == rno
    assert note["resource"]["amount"]["refund"] == 600
    assert json.loads(final)["status"] == "SUCCESS" and json.loads(final)["success_time"]
    assert json.loads(order)["trade_state"] == "REFUND"


def test_auto_refund(
    platform_key: wechatpay.PlatformKey, merchant_keys: MerchantKeys, receiver: Receiver
) -> None:
    server = wechatpay.start_in_thread(platform_key=platform_key, auto_refund_seconds=0.1)
    try:
        server.register_merchant(
            MCHID,
            APPID,
            merchant_keys.apiv3_key,
            merchant_public_key=merchant_keys.public_pem,
            merchant_serial_no=merchant_keys.serial_no,
        )
        client = make_wxpay(server, merchant_keys, receiver.url)
        receiver.wxpay = client
        no, rno = _no(), _no()
        _prepay(client, no, total=100)
        server.mark_paid(no, deliver=False)
        client.refund(out_refund_no=rno, amount={"refund": 100, "total": 100}, out_trade_no=no)

        note = receiver.next_accepted()

        assert note["event_type"] == "REFUND.SUCCESS"
        assert json.loads(client.query_refund(rno)[1])["status"] == "SUCCESS"
    finally:
        server.shutdown()


def test_transfer_bill_confirm_and_cancel(
    pay_server: wechatpay.WeChatPayServer, wxpay: WeChatPay, receiver: Receiver
) -> None:
    bill, bill2 = _no(), _no()
    report = [{"info_type": "岗位类型", "info_content": "站长"}]
    report += [{"info_type": "报酬说明", "info_content": "11月分成"}]

    code, text = wxpay.mch_transfer_bills(
        out_bill_no=bill,
        transfer_scene_id="1005",
        openid=OPENID,
        transfer_amount=12345,
        transfer_remark="站长分成",
        user_name="张三",  # RSA-OAEP encrypted with the fake's public key by the SDK
        transfer_scene_report_infos=report,
        notify_url=receiver.url,
    )
    created = json.loads(text)
    _, queried = wxpay.mch_transfer_bills_query(out_bill_no=bill)
    _, by_no = wxpay.mch_transfer_bills_query(transfer_bill_no=created["transfer_bill_no"])
    _control(pay_server, "transfer", {"out_bill_no": bill})
    note = receiver.next_accepted()
    _, final = wxpay.mch_transfer_bills_query(out_bill_no=bill)

    wxpay.mch_transfer_bills(
        out_bill_no=bill2,
        transfer_scene_id="1005",
        openid=OPENID,
        transfer_amount=20,
        transfer_remark="站长分成",
        transfer_scene_report_infos=report,
        notify_url=receiver.url,
    )
    code_c, cancelled = wxpay.mch_transfer_bills_cancel(out_bill_no=bill2)
    cancel_note = receiver.next_accepted()
    _, after_cancel = wxpay.mch_transfer_bills_query(out_bill_no=bill2)

    assert code == 200 and created["state"] == "WAIT_USER_CONFIRM" and created["package_info"]
    assert json.loads(queried)["state"] == "WAIT_USER_CONFIRM"
    assert json.loads(by_no)["out_bill_no"] == bill
    assert pay_server.transfers[(MCHID, bill)].user_name == "张三"
    assert note["event_type"] == "MCHTRANSFER.BILL.FINISHED"
    assert note["resource"]["state"] == "SUCCESS" and note["resource"]["out_bill_no"] == bill
    assert json.loads(final)["state"] == "SUCCESS"
    assert code_c == 200 and json.loads(cancelled)["state"] == "CANCELING"
    assert cancel_note["resource"]["state"] == "CANCELLED"
    assert json.loads(after_cancel)["state"] == "CANCELLED"


def test_transfer_requires_scene_report(wxpay: WeChatPay) -> None:
    code, text = wxpay.mch_transfer_bills(
        out_bill_no=_no(),
        transfer_scene_id="1005",
        openid=OPENID,
        transfer_amount=100,
        transfer_remark="x",
        transfer_scene_report_infos=[],
    )

    assert code == 400 and json.loads(text)["code"] == "PARAM_ERROR"


def test_forged_request_signature_is_rejected(
    pay_server: wechatpay.WeChatPayServer, merchant_keys: MerchantKeys, receiver: Receiver
) -> None:
    other_key = wechatpay.private_key_pem(wechatpay.generate_private_key())
    forger = make_wxpay(pay_server, merchant_keys, receiver.url, private_pem=other_key)

    code, text = forger.pay(
        description="x", out_trade_no=_no(), amount={"total": 1}, payer={"openid": OPENID}
    )

    assert code == 401 and json.loads(text)["code"] == "SIGN_ERROR"
    assert pay_server.orders == {}


def test_stale_timestamp_and_missing_auth_are_rejected(
    pay_server: wechatpay.WeChatPayServer, merchant_keys: MerchantKeys
) -> None:
    path = f"/v3/pay/transactions/out-trade-no/X123456?mchid={MCHID}"
    ts, nonce = str(int(time.time()) - 400), "N" * 32
    key = wechatpay.serialization.load_pem_private_key(
        merchant_keys.private_pem.encode(), password=None
    )
    sig = rsa_sign(key, f"GET\n{path}\n{ts}\n{nonce}\n\n")
    auth = (
        f'WECHATPAY2-SHA256-RSA2048 mchid="{MCHID}",nonce_str="{nonce}",signature="{sig}",'
        f'timestamp="{ts}",serial_no="{merchant_keys.serial_no}"'
    )

    stale = requests.get(pay_server.url + path, headers={"Authorization": auth}, timeout=5)
    missing = requests.get(pay_server.url + path, timeout=5)

    assert stale.status_code == 401 and stale.json()["code"] == "SIGN_ERROR"
    assert "5 分钟" in stale.json()["message"]
    assert missing.status_code == 401 and missing.json()["code"] == "SIGN_ERROR"
    assert stale.headers["Wechatpay-Serial"] == pay_server.public_key_id


def test_sdk_rejects_reply_signed_by_another_key(
    pay_server: wechatpay.WeChatPayServer, merchant_keys: MerchantKeys, receiver: Receiver
) -> None:
    wrong_public = wechatpay.public_key_pem(wechatpay.generate_private_key())
    client = make_wxpay(pay_server, merchant_keys, receiver.url, public_key=wrong_public)

    with pytest.raises(Exception, match="failed to verify the signature"):
        _prepay(client, _no())


def test_injected_bad_signature_is_caught_by_sdk(
    pay_server: wechatpay.WeChatPayServer, wxpay: WeChatPay
) -> None:
    pay_server.inject_failure(path="/v3/pay/transactions/out-trade-no/", mode="bad_signature")
    no = _no()
    _prepay(wxpay, no)

    with pytest.raises(Exception, match="failed to verify the signature"):
        wxpay.query(out_trade_no=no)
    assert wxpay.query(out_trade_no=no)[0] == 200


def test_system_error_after_processing_means_query_first(
    pay_server: wechatpay.WeChatPayServer, wxpay: WeChatPay
) -> None:
    no, rno = _no(), _no()
    _prepay(wxpay, no, total=300)
    pay_server.mark_paid(no, deliver=False)
    _control(
        pay_server,
        "failures",
        {"path": "/v3/refund/domestic/refunds", "method": "POST", "apply": True},
    )

    code, text = wxpay.refund(
        out_refund_no=rno, amount={"refund": 300, "total": 300}, out_trade_no=no
    )
    q_code, queried = wxpay.query_refund(rno)

    assert code == 500 and json.loads(text)["code"] == "SYSTEM_ERROR"
    assert q_code == 200 and json.loads(queried)["status"] == "PROCESSING"


def test_timeout_and_reset(
    pay_server: wechatpay.WeChatPayServer, merchant_keys: MerchantKeys, receiver: Receiver
) -> None:
    client = make_wxpay(pay_server, merchant_keys, receiver.url, timeout=(2, 0.5))
    no = _no()
    pay_server.inject_failure(
        path="/v3/pay/transactions/jsapi", mode="timeout", delay=3, apply=True
    )
    pay_server.inject_failure(path="/v3/pay/transactions/out-trade-no/", mode="reset")

    with pytest.raises(requests.exceptions.ReadTimeout):
        _prepay(client, no)
    with pytest.raises(requests.exceptions.ConnectionError):
        client.query(out_trade_no=no)
    code, text = client.query(out_trade_no=no)

    assert code == 200 and json.loads(text)["trade_state"] == "NOTPAY"  # it was created


@pytest.mark.parametrize("tamper", ["signature", "probe", "body", "apiv3_key"])
def test_tampered_notifications_fail_callback(
    pay_server: wechatpay.WeChatPayServer, wxpay: WeChatPay, receiver: Receiver, tamper: str
) -> None:
    no = _no()
    _prepay(wxpay, no)

    result = pay_server.mark_paid(no, tamper=tamper)

    assert result["notification"]["delivered"] is False
    assert result["notification"]["attempts"][0]["status"] == 401
    assert receiver.rejected.get(timeout=5)
    assert receiver.accepted.empty()


def test_duplicates_redelivery_and_pay_sign(
    pay_server: wechatpay.WeChatPayServer, wxpay: WeChatPay, receiver: Receiver
) -> None:
    no = _no()
    prepay_id = _prepay(wxpay, no)["prepay_id"]
    ts, nonce, package = str(int(time.time())), uuid.uuid4().hex, f"prepay_id={prepay_id}"
    params = {"appId": APPID, "timeStamp": ts, "nonceStr": nonce, "package": package}
    bad = _control(pay_server, "pay", {**params, "signType": "RSA", "pay_sign": "AAAA"})
    pay_sign = wxpay.sign([APPID, ts, nonce, package])

    paid = _control(
        pay_server, "pay", {**params, "signType": "RSA", "pay_sign": pay_sign, "duplicates": 1}
    )
    first, second = receiver.next_accepted(), receiver.next_accepted()
    nid = paid.json()["notification"]["id"]
    again = _control(pay_server, f"notifications/{nid}/redeliver", {})
    third = receiver.next_accepted()

    assert bad.status_code == 400 and bad.json()["code"] == "SIGN_ERROR"
    assert paid.status_code == 200
    assert first["id"] == second["id"] == third["id"] == nid
    assert len(again.json()["attempts"]) == 3


def test_notification_retry_after_failure(
    platform_key: wechatpay.PlatformKey, merchant_keys: MerchantKeys, receiver: Receiver
) -> None:
    server = wechatpay.start_in_thread(platform_key=platform_key, notify_retry_delays=(0.2, 0.2))
    try:
        server.register_merchant(
            MCHID,
            APPID,
            merchant_keys.apiv3_key,
            merchant_public_key=merchant_keys.public_pem,
            merchant_serial_no=merchant_keys.serial_no,
        )
        client = make_wxpay(server, merchant_keys, receiver.url)
        receiver.wxpay = client
        receiver.fail_next = 2
        no = _no()
        _prepay(client, no)

        result = server.mark_paid(no)
        got = receiver.next_accepted()
        attempts = server.notifications[result["notification"]["id"]].attempts
        deadline = time.time() + 5
        while len(attempts) < 3 and time.time() < deadline:  # recorded after our 204 is read
            time.sleep(0.02)

        assert result["notification"]["delivered"] is False
        assert [a["status"] for a in attempts] == [500, 500, 204]
        assert got["resource"]["out_trade_no"] == no
    finally:
        server.shutdown()


def test_stale_notification_timestamp(
    pay_server: wechatpay.WeChatPayServer, wxpay: WeChatPay, receiver: Receiver
) -> None:
    no = _no()
    _prepay(wxpay, no)

    result = pay_server.mark_paid(no, timestamp_offset=-600, deliver=False)

    headers = result["notification"]["headers"]
    assert int(headers["Wechatpay-Timestamp"]) < time.time() - 590
    # the SDK does not check freshness (the platform must); the signature itself is valid
    assert wxpay.callback(headers, result["notification"]["body"]) is not None


def test_register_merchant_via_http_and_bad_input(
    pay_server: wechatpay.WeChatPayServer, merchant_keys: MerchantKeys
) -> None:
    ok = _control(
        pay_server,
        "merchants",
        {
            "mchid": "1900000200",
            "appid": "wxsecond000000001",
            "apiv3_key": merchant_keys.apiv3_key,
            "merchant_public_key": merchant_keys.public_pem,
            "merchant_serial_no": merchant_keys.serial_no.lower(),
        },
    )
    bad = _control(pay_server, "merchants", {"mchid": "1900000201", "apiv3_key": "short"})
    listed = requests.get(f"{pay_server.url}/_fake/merchants", timeout=5).json()

    assert ok.status_code == 200
    assert ok.json()["public_key_id"] == pay_server.public_key_id
    assert ok.json()["merchant_serial_no"] == merchant_keys.serial_no
    assert bad.status_code == 400
    assert {m["mchid"] for m in listed["merchants"]} == {MCHID, "1900000200"}


def test_appid_must_belong_to_merchant(
    pay_server: wechatpay.WeChatPayServer, wxpay: WeChatPay
) -> None:
    code, text = wxpay.pay(
        description="x",
        out_trade_no=_no(),
        amount={"total": 1},
        payer={"openid": OPENID},
        appid="wxnotmine00000001",
    )

    assert code == 400 and json.loads(text)["code"] == "APPID_MCHID_NOT_MATCH"


def test_key_files_are_created_once(tmp_path: Path) -> None:
    first = wechatpay.load_or_create_platform_key(tmp_path)
    second = wechatpay.load_or_create_platform_key(tmp_path)
    merchant = wechatpay.load_or_create_demo_merchant(tmp_path, "1900000300", "wxdemo00000000001")
    again = wechatpay.load_or_create_demo_merchant(tmp_path, "1900000300", "wxdemo00000000001")

    assert first.public_key_id == second.public_key_id
    assert first.public_key_id.startswith("PUB_KEY_ID_")
    assert (tmp_path / "pub_key.pem").read_text() == first.public_key_pem
    assert (tmp_path / "pub_key_id.txt").read_text().strip() == first.public_key_id
    assert (tmp_path / "platform_private_key.pem").stat().st_mode & 0o077 == 0
    assert merchant == again
    assert len(merchant.apiv3_key.encode()) == 32
    assert (tmp_path / "merchants" / "1900000300" / "apiclient_key.pem").exists()
