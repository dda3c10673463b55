"""Feedback and complaints: the driver submits through the driver API, staff reply in the
admin, the driver is notified (fake WeChat) and reads the reply; the reply is audited."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEntry, Member
from operations import feedback as service
from operations.models import Feedback, FeedbackSettings

HOST = {"HTTP_HOST": "tenant-a.testserver"}


@pytest.fixture
def staff(django_user_model, tenant):
    user = django_user_model.objects.create_superuser("kefu", password="x-pass-123")
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def _order(member, pile):
    from charging.models import ChargingOrder

    return ChargingOrder.objects.create(
        number="T202611300002", trade_no="5" * 32, member=member, station=pile.station, pile=pile,
        connector=pile.connectors.get(number=2), state="settled")


def test_a_complaint_answered_in_the_admin_reaches_the_driver(member_api, pile, staff, fake_wechat):
    FeedbackSettings.objects.create(reply_template_id="TPL-REPLY")
    order = _order(member_api.member, pile)
    r = member_api.post("/api/app/v1/feedback", {
        "category": "billing", "text": "这单多扣了 5 元", "order_id": order.pk,
        "photos": ["https://img.example.com/receipt.jpg"]}, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert (body["status"], body["order_number"], body["replies"]) == ("new", order.number, [])
    item = Feedback.objects.get(pk=body["id"])
    assert item.connector.number == 2  # from the order

    page = staff.get("/admin/operations/feedback/", **HOST).content.decode()
    assert "这单多扣了 5 元" in page and "新反馈" in page
    url = f"/admin/operations/feedback/{item.pk}/reply/"
    assert "这单多扣了 5 元" in staff.get(url, **HOST).content.decode()
    r = staff.post(url, {"text": "已核实，5 元已退回钱包"}, **HOST)
    assert r.status_code == 302
    reply = item.replies.get()
    item.refresh_from_db()
    assert (item.status, item.assigned_to) == ("replied", staff.user)

    # The worker's task: the driver hears of it once.
    assert service.feedback_reply_notify(reply_id=reply.pk) == "sent"
    assert service.feedback_reply_notify(reply_id=reply.pk) == "skipped"
    sent = [m for m in fake_wechat.messages("wxtenanta0000001") if m["template_id"] == "TPL-REPLY"]
    assert len(sent) == 1 and sent[0]["touser"] == member_api.member.openid
    assert sent[0]["data"]["thing2"]["value"] == "已核实，5 元已退回钱包"

    mine = member_api.get(f"/api/app/v1/feedback/{item.pk}").json()
    assert mine["status"] == "replied"
    assert [(x["text"], x["from_staff"]) for x in mine["replies"]] == [("已核实，5 元已退回钱包", True)]
    # The driver follows up; staff see it again as in progress.
    r = member_api.post(f"/api/app/v1/feedback/{item.pk}/replies", {"text": "收到，谢谢"}, format="json")
    assert r.status_code == 201 and r.json()["from_staff"] is False
    item.refresh_from_db()
    assert item.status == "in_progress"
    assert member_api.get("/api/app/v1/feedback").json()["count"] == 1

    entry = AuditEntry.objects.get(action="feedback.reply")
    assert (entry.actor_name, entry.target_type) == ("kefu", "operations.feedback")
    # Closed: no more replies either way.
    service.feedback_reply(feedback_id=item.pk, staff=staff.user, text="已处理完毕", close=True)
    r = member_api.post(f"/api/app/v1/feedback/{item.pk}/replies", {"text": "还有问题"}, format="json")
    assert (r.status_code, r.json()["code"]) == (409, "feedback_closed")


def test_another_members_order_and_feedback_are_not_found(member_api, pile, tenant):
    other = Member.objects.create(openid="openid-other")
    order = _order(other, pile)
    r = member_api.post("/api/app/v1/feedback", {"category": "service", "text": "x",
                                                 "order_id": order.pk}, format="json")
    assert (r.status_code, r.json()["code"]) == (404, "order_not_found")
    theirs = service.feedback_submit(member=other, category="other", text="别人的")
    assert member_api.get(f"/api/app/v1/feedback/{theirs.pk}").status_code == 404
    r = member_api.post(f"/api/app/v1/feedback/{theirs.pk}/replies", {"text": "x"}, format="json")
    assert (r.status_code, r.json()["code"]) == (404, "feedback_not_found")
    r = member_api.post("/api/app/v1/feedback", {"category": "nope", "text": ""}, format="json")
    assert r.status_code == 400 and set(r.json()["fields"]) == {"category", "text"}


def test_no_template_means_no_message(member_api, staff, tenant):
    item = service.feedback_submit(member=member_api.member, category="suggestion", text="多装几个桩")
    reply = service.feedback_reply(feedback_id=item.pk, staff=staff.user, text="好的")
    assert service.feedback_reply_notify(reply_id=reply.pk) == "no_template"
    with pytest.raises(service.FeedbackError):
        service.feedback_reply(feedback_id=item.pk, staff=staff.user, text="  ")


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_a_photo_is_uploaded_served_and_sent_with_feedback(member_api, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    r = member_api.post("/api/app/v1/feedback/photos",
                        {"file": SimpleUploadedFile("p.png", _png(), "image/png")}, format="multipart",
                        HTTP_HOST="api.example.com")
    assert r.status_code == 201, r.json()
    url = r.json()["url"]
    assert url.startswith("http://api.example.com/media/feedback/op_tenant_a/") and url.endswith(".png")
    # Served on any host (the admin's, the H5 app's), as the image it is.
    served = Client().get(url.replace("http://api.example.com", ""), HTTP_HOST="tenant-a.testserver")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert b"".join(served.streaming_content) == _png()
    r = member_api.post("/api/app/v1/feedback", {"category": "fault", "text": "枪头损坏",
                                                 "photos": [url]}, format="json")
    assert r.status_code == 201 and r.json()["photos"] == [url]


@pytest.mark.parametrize(("upload", "status", "code"), [
    (None, 400, "photo_missing"),
    (("x.png", b"not an image", "image/png"), 400, "photo_invalid"),
    (("x.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif"), 400, "photo_invalid"),
])
def test_a_photo_that_is_not_one_is_refused(member_api, settings, tmp_path, upload, status, code):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    data = {"file": SimpleUploadedFile(*upload)} if upload else {}
    r = member_api.post("/api/app/v1/feedback/photos", data, format="multipart")
    assert (r.status_code, r.json()["code"]) == (status, code)
    assert not list(tmp_path.rglob("*.*"))


def test_a_large_photo_is_refused(member_api, settings, tmp_path, monkeypatch):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from operations import feedback as feedback_module

    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setattr(feedback_module, "MAX_PHOTO_BYTES", 100)
    r = member_api.post("/api/app/v1/feedback/photos",
                        {"file": SimpleUploadedFile("p.png", _png() + b"\0" * 200, "image/png")},
                        format="multipart")
    assert (r.status_code, r.json()["code"]) == (413, "photo_too_large")


def test_photo_paths_outside_the_pattern_are_not_served(tenant):
    for path in ["/media/feedback/op_tenant_a/../../secret.png", "/media/feedback/op_tenant_a/x.png",
                 "/media/feedback/Bad/0123456789abcdef0123456789abcdef.png"]:
        assert Client().get(path, HTTP_HOST="tenant-a.testserver").status_code == 404
