"""The operators' mini-programs through the third-party platform, against the fake WeChat
(fakes/wechat_component.py: real AES and signatures): verify ticket, authorisation, token
refresh, template from a draft, commit with ext.json, audit, release, the super admin's
table and its bulk action; refused pushes change nothing."""

from __future__ import annotations

import base64
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from tenants import open_platform
from tenants.models import CodeTemplate, MiniProgram, OpenPlatform

COMPONENT_APPID = "wxcomponent00001"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters
APPID_A, APPID_B = "wxtenanta0000001", "wxtenantb0000001"


@pytest.fixture
def component(fake_wechat, operators, db):
    connection.set_schema_to_public()
    fake = httpx.Client(base_url=fake_wechat.url)
    fake.post("/_fake/component", json={
        "component_appid": COMPONENT_APPID, "secret": "component-secret", "token": "msg-token",
        "encoding_aes_key": AES_KEY,
        # Not http(s): the fake keeps each push for the test to deliver in-process.
        "callback_url": "/wechat/component/events",
        "events_url": "/wechat/component/$APPID$/events",
    }).raise_for_status()
    OpenPlatform.objects.all().delete()  # one platform (rolled back after the test)
    platform = OpenPlatform.objects.create(
        component_appid=COMPONENT_APPID, component_appsecret="component-secret",
        token="msg-token", encoding_aes_key=AES_KEY, public_base_url="https://platform.example.com",
        api_base_url="https://api.example.com",
    )
    fake.platform = platform
    yield fake
    fake.close()
    fake_wechat.component_state.__init__()  # a clean fake for the next test


def last_push(fake) -> dict:
    return fake.get("/_fake/component").json()["pushes"][-1]


def deliver(push: dict, *, tamper: bool = False):
    target = push["target"]
    if tamper:
        target = target.replace("msg_signature=", "msg_signature=0")
    return Client(HTTP_HOST="wechat-push.example").post(target, data=push["body"], content_type="text/xml")


def push_ticket(fake) -> str:
    ticket = fake.post("/_fake/component/ticket").json()["ticket"]
    assert deliver(last_push(fake)).content == b"success"
    return ticket


def authorise(fake, appid: str) -> MiniProgram:
    url = open_platform.authorization_url(redirect_uri="https://platform.example.com/wechat/component/authorized")
    query = parse_qs(urlsplit(url).query)
    assert query["component_appid"] == [COMPONENT_APPID]
    answer = fake.post("/_fake/component/authorize", json={
        "pre_auth_code": query["pre_auth_code"][0], "authorizer_appid": appid,
        "redirect_uri": query["redirect_uri"][0],
    }).json()
    assert deliver(last_push(fake)).content == b"success"  # the "authorized" push
    # ...and the administrator's browser lands on the redirect (the same code works again).
    landing = urlsplit(answer["redirect"])
    page = Client(HTTP_HOST="testserver").get(landing.path, dict(parse_qs(landing.query)))
    assert page.status_code == 200 and appid in page.content.decode()
    return MiniProgram.objects.get(appid=appid)


def new_template(fake, version="1.0.0") -> CodeTemplate:
    draft = fake.post("/_fake/component/drafts", json={"user_version": version, "user_desc": "首版"}).json()
    return open_platform.template_add_from_draft(draft_id=draft["draft_id"])


def test_verify_ticket_is_stored_and_a_forged_push_changes_nothing(component):
    ticket = push_ticket(component)
    platform = OpenPlatform.objects.get()
    assert platform.verify_ticket == ticket and platform.verify_ticket_at is not None
    # Stored encrypted, never in clear.
    with connection.cursor() as cursor:
        cursor.execute("SELECT verify_ticket FROM tenants_openplatform")
        assert ticket not in cursor.fetchone()[0]

    component.post("/_fake/component/ticket")
    refused = deliver(last_push(component), tamper=True)
    assert refused.status_code == 403
    assert OpenPlatform.objects.get().verify_ticket == ticket
    # A body encrypted with another key is refused too.
    body = last_push(component)["body"].replace("<Encrypt><![CDATA[", "<Encrypt><![CDATA[AAAA")
    assert deliver({**last_push(component), "body": body}).status_code == 403


def test_commit_audit_release_for_one_operator(component, operators):
    push_ticket(component)
    mp = authorise(component, APPID_A)
    assert mp.authorization == MiniProgram.Authorization.AUTHORIZED
    assert mp.authorizer_access_token and mp.authorizer_refresh_token
    assert mp.authorizer_token_expires_at > timezone.now() + timedelta(hours=1)

    # Tokens close to expiry are refreshed (the refresh token rotates).
    old_access, old_refresh = mp.authorizer_access_token, mp.authorizer_refresh_token
    MiniProgram.objects.filter(pk=mp.pk).update(authorizer_token_expires_at=timezone.now() + timedelta(minutes=5))
    from tenants.tasks import authorizer_tokens_refresh

    assert authorizer_tokens_refresh.apply().get() == {APPID_A: "ok"}
    mp.refresh_from_db()
    assert mp.authorizer_access_token != old_access and mp.authorizer_refresh_token != old_refresh
    assert open_platform.authorizer_tokens_refresh() == {}  # nothing due now

    template = new_template(component)
    assert template.user_version == "1.0.0"
    open_platform.code_commit(mini_program=mp, template=template)
    committed = component.get("/_fake/component/authorizers").json()[APPID_A]["committed"]
    ext = committed["ext"]
    assert ext["extAppid"] == APPID_A and ext["ext"]["tenant"] == "tenant-a"
    assert ext["ext"]["apiBase"] == "https://api.example.com" and ext["ext"]["themeColor"] == "#1AAD6B"
    assert ext["ext"]["name"] == "测试运营商 A" and ext["ext"]["devLogin"] is False
    assert committed["template_id"] == template.template_id

    open_platform.code_submit_audit(mini_program=mp)
    mp.refresh_from_db()
    assert mp.audit_status == MiniProgram.AuditStatus.AUDITING and mp.audit_version == "1.0.0"
    with pytest.raises(open_platform.OpenPlatformError):
        open_platform.code_release(mini_program=mp)  # not approved yet

    component.post("/_fake/component/audit", json={"appid": APPID_A, "pass": True}).raise_for_status()
    assert deliver(last_push(component)).content == b"success"
    mp.refresh_from_db()
    assert mp.audit_status == MiniProgram.AuditStatus.APPROVED and mp.audit_finished_at

    open_platform.code_release(mini_program=mp)
    mp.refresh_from_db()
    assert mp.released_version == "1.0.0" and mp.audit_status == MiniProgram.AuditStatus.RELEASED
    assert component.get("/_fake/component/authorizers").json()[APPID_A]["released"]["version"] == "1.0.0"


def test_rejected_audit_keeps_the_reason_and_cannot_be_released(component):
    push_ticket(component)
    mp = authorise(component, APPID_A)
    open_platform.code_commit(mini_program=mp, template=new_template(component))
    open_platform.code_submit_audit(mini_program=mp)
    component.post("/_fake/component/audit", json={"appid": APPID_A, "pass": False, "reason": "缺少隐私协议"})
    deliver(last_push(component))
    mp.refresh_from_db()
    assert mp.audit_status == MiniProgram.AuditStatus.REJECTED and mp.audit_reason == "缺少隐私协议"
    with pytest.raises(open_platform.OpenPlatformError):
        open_platform.code_release(mini_program=mp)
    # A second delivery of the same push changes nothing.
    deliver(last_push(component))
    mp.refresh_from_db()
    assert mp.audit_status == MiniProgram.AuditStatus.REJECTED


def test_revoked_authorisation_stops_commits(component):
    push_ticket(component)
    mp = authorise(component, APPID_A)
    component.post("/_fake/component/unauthorize", json={"authorizer_appid": APPID_A})
    deliver(last_push(component))
    mp.refresh_from_db()
    assert mp.authorization == MiniProgram.Authorization.REVOKED and not mp.authorizer_refresh_token
    with pytest.raises(open_platform.OpenPlatformError):
        open_platform.code_commit(mini_program=mp, template=new_template(component))


def test_unknown_mini_program_cannot_authorise(component):
    push_ticket(component)
    with pytest.raises(AssertionError):
        authorise(component, "wxnotregistered01")
    assert not MiniProgram.objects.filter(appid="wxnotregistered01").exists()


def test_super_admin_table_and_bulk_commit_and_submit(component, operators, django_user_model):
    push_ticket(component)
    authorise(component, APPID_A)
    # An operator with a second brand: both mini-programs in the table; one not authorised.
    second = MiniProgram.objects.create(operator=operators["tenant-a"], appid="wxtenanta0000002", name="A 的第二品牌")

    admin = django_user_model.objects.create_superuser("root-test", password="x-pass-123")
    client = Client(HTTP_HOST="testserver")
    client.force_login(admin)
    # The uploaded build (a draft) becomes a template from the admin; a wrong draft id is refused.
    draft = component.post("/_fake/component/drafts", json={"user_version": "2.0.0", "user_desc": "新版"}).json()
    assert client.post("/admin/tenants/codetemplate/add/", {"draft_id": draft["draft_id"] + 99}).status_code == 302
    assert not CodeTemplate.objects.exists()
    client.post("/admin/tenants/codetemplate/add/", {"draft_id": draft["draft_id"]})
    template = CodeTemplate.objects.get()
    assert (template.user_version, template.user_desc) == ("2.0.0", "新版")
    ids = [str(pk) for pk in MiniProgram.objects.filter(appid__in=[APPID_A, second.appid]).values_list("pk", flat=True)]
    response = client.post("/admin/tenants/miniprogram/", {
        "action": "commit_and_submit_latest", "_selected_action": ids,
    }, follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert "wxtenanta0000002" in page  # its failure is reported, not hidden
    a = MiniProgram.objects.get(appid=APPID_A)
    assert a.committed_template == template and a.audit_status == MiniProgram.AuditStatus.AUDITING
    assert MiniProgram.objects.get(appid=second.appid).audit_status == MiniProgram.AuditStatus.NONE

    component.post("/_fake/component/audit", json={"appid": APPID_A, "pass": True})
    deliver(last_push(component))
    client.post("/admin/tenants/miniprogram/", {"action": "release", "_selected_action": [str(a.pk)]})
    table = client.get("/admin/tenants/miniprogram/").content.decode()
    row = next(r for r in table.split("<tr") if APPID_A in r)
    assert "2.0.0" in row and "A 的第二品牌" in table
    assert MiniProgram.objects.get(appid=APPID_A).released_version == "2.0.0"
