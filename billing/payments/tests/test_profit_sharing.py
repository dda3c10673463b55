"""分账 (profit sharing) through wechatpayv3 against the fake WeChat Pay server: signed
requests, the receiver's name RSA-encrypted with the platform key, the 30 % limit, receivers
added first, the asynchronous result queried, repeats idempotent."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.payments.services.common import _gateway
from billing.payments.wechatpay import PayError


def _paid(fake, gateway, no: str, fen: int, *, profit_sharing=True) -> str:
    gateway.jsapi_prepay(out_trade_no=no, description="充电订单", total_fen=fen, openid="o-driver",
                         expires_at=timezone.now() + timedelta(minutes=15), profit_sharing=profit_sharing)
    return fake.server.mark_paid(no, deliver=False)["order"]["transaction_id"]


def _refused(code, call, **kwargs):
    with pytest.raises(PayError) as exc:
        call(**kwargs)
    assert exc.value.code == code, exc.value


def test_split_an_order_to_an_owner(fake):
    gateway = _gateway()
    tid = _paid(fake, gateway, "PSPLIT000001", 10000)
    _refused("RECEIVER_INVALID", gateway.profit_sharing_order, transaction_id=tid, out_order_no="PS1",
             receivers=[("o-owner-li", 2000, "站长分成")])
    gateway.profit_sharing_receiver_add(openid="o-owner-li", name="李站长")
    stored = fake.server.ps_receivers[gateway.mchid][("PERSONAL_OPENID", "o-owner-li")]
    assert stored["name"] == "李站长"  # decrypted by the fake with the platform private key
    _refused("RULE_LIMIT", gateway.profit_sharing_order, transaction_id=tid, out_order_no="PS1",
             receivers=[("o-owner-li", 3001, "站长分成")])  # above 30 % of ¥100
    made = gateway.profit_sharing_order(transaction_id=tid, out_order_no="PS1",
                                        receivers=[("o-owner-li", 2000, "站长分成")])
    assert made["state"] == "PROCESSING" and made["receivers"][0]["result"] == "PENDING"
    again = gateway.profit_sharing_order(transaction_id=tid, out_order_no="PS1",
                                         receivers=[("o-owner-li", 2000, "站长分成")])
    assert again["order_id"] == made["order_id"]  # a repeat is the same split, never a second
    done = gateway.profit_sharing_query(transaction_id=tid, out_order_no="PS1")
    assert done["state"] == "FINISHED" and done["receivers"][0]["result"] == "SUCCESS"
    assert gateway.profit_sharing_unsplit(tid) == 0  # unfreeze_unsplit: the rest is released
    assert gateway.profit_sharing_query(transaction_id=tid, out_order_no="NOPE") is None


def test_an_order_not_made_for_sharing_is_refused(fake):
    gateway = _gateway()
    gateway.profit_sharing_receiver_add(openid="o-owner-li")
    tid = _paid(fake, gateway, "PSPLIT000002", 5000, profit_sharing=False)
    _refused("INVALID_REQUEST", gateway.profit_sharing_order, transaction_id=tid, out_order_no="PS2",
             receivers=[("o-owner-li", 100, "站长分成")])
