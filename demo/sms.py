"""The demo operator's SMS: a Tencent Cloud SMS account on the fake server
(``python -m fakes.sms``, the Procfile's ``fake_sms``, started by ``make run``), its bulk-SMS
and alarm templates, and an on-duty contact who receives the alarms. Development wiring only;
the Procfile's ``fake_sms`` line registers the same app, keys, signature and templates."""

from __future__ import annotations

import os

DEMO_SMS_ENDPOINT = os.environ.get("FAKE_SMS_ENDPOINT", "127.0.0.1:8804")  # host:port: plain HTTP
DEMO_SMS_APP = ("1400000001", "AKIDdemosms0001", "demo-sms-secret-key")  # SdkAppId, SecretId, SecretKey
DEMO_SMS_SIGN = "绿源充电"
DEMO_SMS_MARKETING_TEMPLATE = ("100001", "您有{1}优惠券待领取，回TD退订")
DEMO_SMS_ALARM_TEMPLATE = ("100002", "{1}告警：{2}，电站{3}，时间{4}。{5}")
DEMO_DUTY_CONTACT = ("值班员（演示）", "13800138000")


def demo_sms_configure(*, endpoint: str = DEMO_SMS_ENDPOINT) -> None:
    """Point the current operator's SMS account at the fake and turn on alarm SMS to the
    demo's on-duty contact (inside its schema; idempotent)."""
    from marketing.models import SmsSettings, SmsTemplate
    from operations.models import AlarmSettings, DutyContact

    account = SmsSettings.objects.order_by("pk").first() or SmsSettings()
    account.sdk_app_id, account.secret_id, account.secret_key = DEMO_SMS_APP
    account.sign_name, account.endpoint = DEMO_SMS_SIGN, endpoint
    account.save()
    template_id, content = DEMO_SMS_MARKETING_TEMPLATE
    SmsTemplate.objects.update_or_create(template_id=template_id, defaults={
        "name": "优惠券提醒", "content": content, "params": ["5元"]})
    alarms = AlarmSettings.load()
    alarms.sms_template_id = DEMO_SMS_ALARM_TEMPLATE[0]
    alarms.save(update_fields=["sms_template_id"])
    name, phone = DEMO_DUTY_CONTACT
    DutyContact.objects.update_or_create(name=name, defaults={"phone": phone, "on_duty": True})


def fake_sms_args(*, host: str = "127.0.0.1", port: int = 8804) -> list[str]:
    """The fake's command line for the demo's account (the Procfile's ``fake_sms`` says the same)."""
    app = ":".join([*DEMO_SMS_APP, DEMO_SMS_SIGN])
    return ["--host", host, "--port", str(port),
            "--app", f"{app}:{DEMO_SMS_MARKETING_TEMPLATE[0]}={DEMO_SMS_MARKETING_TEMPLATE[1]}",
            "--app", f"{app}:{DEMO_SMS_ALARM_TEMPLATE[0]}={DEMO_SMS_ALARM_TEMPLATE[1]}"]
