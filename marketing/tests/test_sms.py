"""Bulk SMS against the fake Tencent Cloud SMS over real HTTP, through the official SDK:
a segment send in chunks with progress, receipts, cost; consent and opt-out; a wrong key."""

from decimal import Decimal

import pytest

from accounts.models import Member
from fakes.sms import start_in_thread
from marketing import sms
from marketing.common import MarketingError
from marketing.models import SmsCampaign, SmsMessage, SmsSettings, SmsTemplate, SvipPlan
from marketing.svip import svip_buy

pytestmark = pytest.mark.django_db
APP, SID, SKEY = "1400000001", "AKIDtest", "secret-key-test"



@pytest.fixture(autouse=True)
def _one_settings_row(tenant):
    """The operator's settings are one row: start each test without one left committed by
    another test (the Procfile jobs' test, browser tests), as the tests create their own."""
    SmsSettings.objects.all().delete()  # rolled back with the test


@pytest.fixture(scope="module")
def fake_sms():
    server = start_in_thread()
    server.register(sdk_app_id=APP, secret_id=SID, secret_key=SKEY, sign="绿源充电",
                    templates={"100": "您有{1}优惠券待领取，回TD退订"})
    yield server
    server.shutdown()


@pytest.fixture
def account(tenant, fake_sms):
    return SmsSettings.objects.create(sdk_app_id=APP, secret_id=SID, secret_key=SKEY, sign_name="绿源充电",
                                      endpoint=fake_sms.url.removeprefix("http://"), price_per_message=Decimal("0.045"))


def _members(n, *, prefix="1380000", consent=True):
    made = []
    for i in range(n):
        m = Member.objects.create(openid=f"sms-{prefix}-{i}", phone=f"{prefix}{i:04d}")
        if consent:
            sms.sms_consent_set(member=m, consented=True)
        made.append(m)
    return made


def test_a_segment_send_reaches_the_fake_with_progress_receipts_and_cost(
    account, fake_sms, django_capture_on_commit_callbacks, monkeypatch
):
    from charging.tests.money import wallet_credit

    monkeypatch.setattr("marketing.sms_provider.TencentSms.max_batch", 2)  # several chunks
    svip_members = _members(3, prefix="1390000")
    svip_members[2].phone = "13900004444"  # the fake fails delivery to …4444
    svip_members[2].save()
    _members(2, prefix="1370000")  # not SVIP
    out = _members(1, prefix="1360000")[0]
    plan = SvipPlan.objects.create(name="月卡", months=1, price=Decimal("10"))
    for m in [*svip_members, out]:
        wallet_credit(m, Decimal("10"))
        svip_buy(member=m, plan_id=plan.pk)
    sms.sms_consent_set(member=out, consented=False)  # opted out
    template = SmsTemplate.objects.create(name="领券提醒", template_id="100", content="您有{1}优惠券待领取，回TD退订",
                                          params=["5元"])
    campaign = SmsCampaign.objects.create(name="SVIP 提醒", template=template, segment="svip")
    queued = []
    monkeypatch.setattr("marketing.sms.task_queue_on_commit", lambda name, *args, **kw: queued.append((name, args)))
    sms.sms_campaign_start(campaign_id=campaign.pk)
    assert [name for name, _ in queued] == ["marketing.sms_send_chunk"] * 2  # 3 numbers, 2 a chunk
    campaign.refresh_from_db()
    assert (campaign.status, campaign.total, sms.sms_progress(campaign)["percent"]) == ("sending", 3, 0)
    _name, (cid, first_ids) = queued[0]
    sms.sms_send_chunk(campaign_id=cid, message_ids=first_ids)
    campaign.refresh_from_db()
    assert sms.sms_progress(campaign)["percent"] == 67 and campaign.status == "sending"
    sms.sms_send_chunk(campaign_id=cid, message_ids=first_ids)  # a retried chunk sends nothing twice
    sms.sms_send_chunk(campaign_id=cid, message_ids=queued[1][1][1])
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent, campaign.failed) == ("done", 3, 0)
    sent = fake_sms.sent
    assert sorted(s["phone"] for s in sent) == sorted(f"+86{m.phone}" for m in svip_members)
    assert sent[0]["text"] == "【绿源充电】您有5元优惠券待领取，回TD退订"
    assert campaign.billed == 3 and campaign.cost == Decimal("0.135")
    assert sms.sms_pull_receipts() == 3
    campaign.refresh_from_db()
    assert campaign.delivered == 2
    assert SmsMessage.objects.get(phone="13900004444").status == "undelivered"
    with pytest.raises(MarketingError) as err:
        sms.sms_campaign_start(campaign_id=campaign.pk)
    assert err.value.code == "sms_already_sent"


def test_a_wrong_secret_is_refused_by_the_fake_and_recorded(account, fake_sms):
    account.secret_key = "wrong"
    account.save()
    _members(1, prefix="1350000")
    template = SmsTemplate.objects.create(name="t", template_id="100", content="x")
    campaign = SmsCampaign.objects.create(name="c", template=template, segment="phones", phones="13500000000\n")
    sms.sms_campaign_start(campaign_id=campaign.pk)
    sms.sms_send_chunk(campaign_id=campaign.pk, message_ids=list(campaign.messages.values_list("pk", flat=True)))
    message = campaign.messages.get()
    assert message.status == "failed" and "SignatureFailure" in message.error


def test_nobody_without_consent_and_the_consent_api(member_api, account):
    member = member_api.member
    member.phone = "13300000000"
    member.save()
    template = SmsTemplate.objects.create(name="t", template_id="100", content="x")
    campaign = SmsCampaign.objects.create(name="c", template=template)
    with pytest.raises(MarketingError) as err:
        sms.sms_campaign_start(campaign_id=campaign.pk)
    assert err.value.code == "sms_no_audience"
    assert member_api.get("/api/app/v1/sms-consent").json() == {"consented": False}
    assert member_api.put("/api/app/v1/sms-consent", {"consented": True}, format="json").json() == {"consented": True}
    assert list(sms.audience(campaign)) == [member]
    member_api.put("/api/app/v1/sms-consent", {"consented": False}, format="json")
    assert list(sms.audience(campaign)) == []
