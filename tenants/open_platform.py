"""The operators' mini-programs through the platform's WeChat Open Platform third-party
platform (第三方平台), with wechatpy's component client.

Lifecycle of one operator's mini-program (``MiniProgram``):

1. **Authorisation**: the super admin sends the operator the link of
   :func:`authorization_url`; the operator's administrator confirms in WeChat; WeChat
   pushes ``authorized`` to ``/wechat/component/events`` and redirects the browser to
   ``/wechat/component/authorized?auth_code=…``. Either one calls ``api_query_auth`` and
   stores the authorizer's tokens (:func:`authorization_complete`); ``unauthorized`` marks it
   revoked. The access token lasts two hours: :func:`authorizer_tokens_refresh` (Celery beat,
   every 10 minutes) refreshes those expiring within 30 minutes.
2. **Code**: the ``mp-weixin`` build is uploaded as a draft by WeChat's developer tools
   (locally: the fake's ``/_fake/component/drafts``) and added to the template library
   (:func:`template_add_from_draft`); :func:`code_commit` commits a template to a
   mini-program with its ``ext.json`` (:func:`ext_json_for`: appid, API base, operator slug,
   branding); :func:`code_submit_audit`; WeChat pushes ``weapp_audit_success`` /
   ``weapp_audit_fail`` to ``/wechat/component/<appid>/events``
   (:func:`event_receive`); :func:`code_release`. :func:`code_commit_and_submit` does the
   first two for many mini-programs at once (a new version for every operator).

Pushes from WeChat are encrypted and signed with the platform's token and EncodingAESKey;
one that fails the signature is refused (``InvalidSignature``) and changes nothing.
Errors from WeChat raise :class:`OpenPlatformError` (errcode and message) and are kept on
the mini-program (``last_error``) for the super admin's table.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

import xmltodict
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from wechatpy.client import WeChatComponentClient
from wechatpy.component import WeChatComponent
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException
from wechatpy.session import SessionStorage

from .models import CodeTemplate, MiniProgram, OpenPlatform
from .selectors import operator_app_branding

logger = logging.getLogger(__name__)

TOKEN_REFRESH_MARGIN = timedelta(minutes=30)


class OpenPlatformError(Exception):
    """WeChat refused or could not be reached; ``errcode`` as WeChat gave it (None: network)."""

    def __init__(self, message: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode


class NotConfigured(OpenPlatformError):
    """No third-party platform is set up (super admin → Third-party platform)."""


class InvalidSignature(OpenPlatformError):
    """A push whose signature or encryption does not match our token and key."""


# --------------------------------------------------------------------------- storage
class DatabaseSession(SessionStorage):
    """wechatpy's session storage on our rows: the verify ticket and component token on
    ``OpenPlatform``; each authorizer's tokens on its ``MiniProgram`` (encrypted at rest)."""

    def __init__(self, platform: OpenPlatform) -> None:
        self.platform = platform

    @staticmethod
    def _valid(value: str, expires_at) -> str | None:
        return value if value and expires_at and expires_at > timezone.now() else None

    def get(self, key, default=None):
        p = OpenPlatform.objects.get(pk=self.platform.pk)
        if key == "component_verify_ticket":
            return p.verify_ticket or default
        if key == "component_access_token":
            return self._valid(p.access_token, p.access_token_expires_at) or default
        for suffix in ("_access_token", "_refresh_token"):
            if key.endswith(suffix):
                mp = MiniProgram.objects.filter(appid=key.removesuffix(suffix)).first()
                if mp is None:
                    return default
                if suffix == "_access_token":
                    token = self._valid(mp.authorizer_access_token, mp.authorizer_token_expires_at)
                    return token or default
                return mp.authorizer_refresh_token or default
        return default

    def set(self, key, value, ttl=None):
        expires = timezone.now() + timedelta(seconds=ttl or 7200)
        if key == "component_verify_ticket":
            OpenPlatform.objects.filter(pk=self.platform.pk).update(
                verify_ticket=value, verify_ticket_at=timezone.now()
            )
        elif key == "component_access_token":
            _save(self.platform, access_token=value, access_token_expires_at=expires)
        elif key.endswith("_access_token"):
            mp = MiniProgram.objects.filter(appid=key.removesuffix("_access_token")).first()
            if mp is not None:
                _save(mp, authorizer_access_token=value, authorizer_token_expires_at=expires)
        elif key.endswith("_refresh_token"):
            mp = MiniProgram.objects.filter(appid=key.removesuffix("_refresh_token")).first()
            if mp is not None:
                _save(mp, authorizer_refresh_token=value)

    def delete(self, key):
        self.set(key, "", 1)


def _save(obj, **fields) -> None:
    """Set encrypted fields through the model (``update()`` would skip the encryption)."""
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.save(update_fields=[*fields, "updated_at"])


# --------------------------------------------------------------------------- clients
def platform_get() -> OpenPlatform:
    platform = OpenPlatform.objects.first()
    if platform is None:
        raise NotConfigured("the third-party platform is not configured")
    return platform


def _base() -> str:
    return settings.WECHAT_API_BASE_URL.rstrip("/")


def component_client(platform: OpenPlatform | None = None) -> WeChatComponent:
    platform = platform or platform_get()
    component = WeChatComponent(
        platform.component_appid, platform.component_appsecret, platform.token,
        platform.encoding_aes_key, session=DatabaseSession(platform),
    )
    component.API_BASE_URL = _base() + "/cgi-bin"
    component._http.request = _with_timeout(component._http.request)
    return component


def _with_timeout(request):
    def call(*args, **kwargs):
        kwargs.setdefault("timeout", settings.WECHAT_HTTP_TIMEOUT)
        return request(*args, **kwargs)

    return call


def authorizer_client(mini_program: MiniProgram) -> WeChatComponentClient:
    """wechatpy's client acting for an authorised mini-program (tokens refreshed by wechatpy
    through :class:`DatabaseSession` when expired)."""
    if mini_program.authorization != MiniProgram.Authorization.AUTHORIZED:
        raise OpenPlatformError(f"{mini_program.appid} has not authorised the platform")
    component = component_client()
    client = WeChatComponentClient(mini_program.appid, component, session=component.session)
    client.API_BASE_URL = _base() + "/cgi-bin/"
    client.wxa.API_BASE_URL = _base() + "/"
    return client


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except WeChatClientException as exc:
        raise OpenPlatformError(f"WeChat {exc.errcode}: {exc.errmsg}", exc.errcode) from exc
    except OpenPlatformError:
        raise
    except Exception as exc:  # network
        raise OpenPlatformError(f"WeChat unreachable: {exc.__class__.__name__}") from exc


def _component_api(method: str, path: str, **data) -> dict:
    """A component-level call outside wechatpy's helpers (template library)."""
    component = component_client()
    url = f"{_base()}{path}"
    if method == "GET":
        return _call(component.get, url, params={}, data=None)  # wechatpy adds the token
    return _call(component.post, url, data=data)


# --------------------------------------------------------------------------- authorisation
def authorization_url(*, redirect_uri: str) -> str:
    """The link an operator's administrator opens to authorise the platform (valid 30 min)."""
    return _call(component_client().get_pre_auth_url, redirect_uri)


def _authorizer_for(appid: str) -> MiniProgram:
    mp = MiniProgram.objects.filter(appid=appid).first()
    if mp is None:
        raise OpenPlatformError(
            f"{appid} is not a mini-program of any operator: add it under Mini-programs first"
        )
    return mp


def authorization_complete(*, auth_code: str) -> MiniProgram:
    """Exchange an authorisation code (redirect or ``authorized`` push) for the authorizer's
    tokens; the mini-program must already be registered under its operator."""
    component = component_client()
    result = _call(component._query_auth, auth_code)
    info = result["authorization_info"]
    with transaction.atomic():
        mp = _authorizer_for(info["authorizer_appid"])
        _save(
            mp,
            authorization=MiniProgram.Authorization.AUTHORIZED,
            authorized_at=timezone.now(),
            authorizer_access_token=info["authorizer_access_token"],
            authorizer_refresh_token=info["authorizer_refresh_token"],
            authorizer_token_expires_at=timezone.now() + timedelta(seconds=int(info.get("expires_in", 7200))),
            last_error="",
        )
    logger.info("mini-program %s authorised the platform", mp.appid)
    return mp


def authorizer_tokens_refresh(*, margin: timedelta = TOKEN_REFRESH_MARGIN) -> dict[str, str]:
    """Refresh every authorised mini-program's token that expires within ``margin``;
    returns {appid: "ok" | error}. One failure does not stop the others."""
    due = MiniProgram.objects.filter(
        authorization=MiniProgram.Authorization.AUTHORIZED,
        authorizer_token_expires_at__lt=timezone.now() + margin,
    ) | MiniProgram.objects.filter(
        authorization=MiniProgram.Authorization.AUTHORIZED, authorizer_token_expires_at=None
    )
    outcome = {}
    if not due.exists():
        return outcome
    component = component_client()
    for mp in due.order_by("pk"):
        try:
            result = _call(component.refresh_authorizer_token, mp.appid, mp.authorizer_refresh_token)
        except OpenPlatformError as exc:
            _save(mp, last_error=str(exc)[:300])
            outcome[mp.appid] = str(exc)
            logger.warning("authorizer token of %s not refreshed: %s", mp.appid, exc)
            continue
        _save(
            mp,
            authorizer_access_token=result["authorizer_access_token"],
            authorizer_refresh_token=result.get("authorizer_refresh_token") or mp.authorizer_refresh_token,
            authorizer_token_expires_at=timezone.now() + timedelta(seconds=int(result.get("expires_in", 7200))),
        )
        outcome[mp.appid] = "ok"
    return outcome


# --------------------------------------------------------------------------- pushes
@dataclass
class Push:
    info_type: str  # component_verify_ticket, authorized, updateauthorized, unauthorized, or an event
    appid: str  # the authorizer's appid where there is one
    data: dict


def _decrypt(platform: OpenPlatform, body: bytes, *, msg_signature: str, timestamp: str, nonce: str) -> dict:
    component = component_client(platform)
    try:
        plain = component.crypto.decrypt_message(body.decode("utf-8"), msg_signature, timestamp, nonce)
    except (InvalidSignatureException, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise InvalidSignature("push refused: bad signature or encryption") from exc
    return xmltodict.parse(plain)["xml"]


def event_receive(
    *, body: bytes, msg_signature: str, timestamp: str, nonce: str, appid: str = ""
) -> Push:
    """A push from WeChat to ``/wechat/component/events`` (authorisation events, ``appid``
    empty) or ``/wechat/component/<appid>/events`` (a mini-program's events): verified,
    decrypted and applied once. Raises InvalidSignature (nothing changed)."""
    platform = platform_get()
    data = _decrypt(platform, body, msg_signature=msg_signature, timestamp=timestamp, nonce=nonce)
    info_type = data.get("InfoType") or data.get("Event") or ""
    if info_type == "component_verify_ticket":
        platform.verify_ticket = data["ComponentVerifyTicket"]
        platform.verify_ticket_at = timezone.now()
        platform.save(update_fields=["verify_ticket", "verify_ticket_at", "updated_at"])
    elif info_type in ("authorized", "updateauthorized"):
        appid = data.get("AuthorizerAppid", "")
        authorization_complete(auth_code=data["AuthorizationCode"])
    elif info_type == "unauthorized":
        appid = data.get("AuthorizerAppid", "")
        mp = MiniProgram.objects.filter(appid=appid).first()
        if mp is not None:
            _save(mp, authorization=MiniProgram.Authorization.REVOKED,
                  authorizer_access_token="", authorizer_refresh_token="")
    elif info_type in ("weapp_audit_success", "weapp_audit_fail", "weapp_audit_delay"):
        _audit_result(appid, info_type, data)
    else:
        logger.info("push %s for %s ignored", info_type, appid or "-")
    return Push(info_type=info_type, appid=appid, data=data)


def _audit_result(appid: str, event: str, data: dict) -> None:
    with transaction.atomic():
        mp = MiniProgram.objects.select_for_update().filter(appid=appid).first()
        if mp is None or mp.audit_status != MiniProgram.AuditStatus.AUDITING:
            logger.info("audit result %s for %s with nothing under audit: ignored", event, appid)
            return
        if event == "weapp_audit_delay":
            _save(mp, audit_reason=data.get("Reason", ""))
            return
        passed = event == "weapp_audit_success"
        _save(
            mp,
            audit_status=MiniProgram.AuditStatus.APPROVED if passed else MiniProgram.AuditStatus.REJECTED,
            audit_reason="" if passed else data.get("Reason", ""),
            audit_finished_at=timezone.now(),
        )


# --------------------------------------------------------------------------- code
def template_add_from_draft(*, draft_id: int) -> CodeTemplate:
    """Add an uploaded draft to the template library; returns the new template."""
    drafts = _component_api("GET", "/wxa/gettemplatedraftlist").get("draft_list", [])
    draft = next((d for d in drafts if int(d["draft_id"]) == int(draft_id)), None)
    if draft is None:
        raise OpenPlatformError(f"no draft {draft_id} in the platform's drafts")
    _component_api("POST", "/wxa/addtotemplate", draft_id=int(draft_id), template_type=0)
    templates = _component_api("GET", "/wxa/gettemplatelist").get("template_list", [])
    known = set(CodeTemplate.objects.values_list("template_id", flat=True))
    new = [t for t in templates if int(t["template_id"]) not in known
           and t.get("user_version") == draft["user_version"]]
    if not new:
        raise OpenPlatformError("WeChat listed no new template for the draft")
    t = max(new, key=lambda t: int(t["template_id"]))
    return CodeTemplate.objects.create(
        template_id=int(t["template_id"]), user_version=t.get("user_version", ""),
        user_desc=t.get("user_desc", "")[:200], draft_id=int(draft_id),
    )


def ext_json_for(mini_program: MiniProgram) -> dict:
    """The per-operator ``ext.json`` a committed template runs with: WeChat hands ``ext``
    to the app (``uni.getExtConfigSync()``, see miniprogram/src/common/config.js)."""
    platform = platform_get()
    operator = mini_program.operator
    config = operator_app_branding(operator, mini_program=mini_program)
    host = operator.domains.order_by("-is_primary", "pk").values_list("domain", flat=True).first()
    if config["logo"] and host:  # served on the operator's own host
        config["logo"] = f"https://{host}{config['logo']}"
    api = (platform.api_base_url or "").rstrip("/")
    config |= {"apiBase": api, "wsBase": api.replace("http", "ws", 1), "devLogin": False}
    return {
        "extEnable": True,
        "extAppid": mini_program.appid,
        "directCommit": False,
        "ext": config,
        "window": {"navigationBarBackgroundColor": operator.brand_color, "navigationBarTitleText": config["name"]},
        "tabBar": {"selectedColor": operator.brand_color},
    }


def _failed(mp: MiniProgram, exc: OpenPlatformError) -> None:
    _save(mp, last_error=str(exc)[:300])


def code_commit(*, mini_program: MiniProgram, template: CodeTemplate) -> MiniProgram:
    """Commit ``template`` to the mini-program with its ext.json."""
    client = authorizer_client(mini_program)
    ext = json.dumps(ext_json_for(mini_program), ensure_ascii=False)
    try:
        _call(client.wxa.commit, template.template_id, ext, template.user_version, template.user_desc)
    except OpenPlatformError as exc:
        _failed(mini_program, exc)
        raise
    _save(
        mini_program, committed_template=template, committed_version=template.user_version,
        committed_at=timezone.now(), last_error="",
    )
    return mini_program


def code_submit_audit(*, mini_program: MiniProgram) -> MiniProgram:
    """Submit the committed code for WeChat's review."""
    if not mini_program.committed_version:
        raise OpenPlatformError("commit a version before submitting it for audit")
    client = authorizer_client(mini_program)
    item = {"address": "pages/index/index", "tag": "充电 新能源", "title": "找桩充电",
            "first_class": "汽车服务", "second_class": "充电桩"}
    try:
        result = _call(client.wxa.submit_audit, {"item_list": [item]})
    except OpenPlatformError as exc:
        _failed(mini_program, exc)
        raise
    _save(
        mini_program, audit_id=result.get("auditid"), audit_status=MiniProgram.AuditStatus.AUDITING,
        audit_version=mini_program.committed_version, audit_reason="",
        audit_submitted_at=timezone.now(), audit_finished_at=None, last_error="",
    )
    return mini_program


def code_audit_refresh(*, mini_program: MiniProgram) -> MiniProgram:
    """Ask WeChat for the latest audit state (when a push was missed)."""
    result = _call(authorizer_client(mini_program).wxa.get_latest_audit_status)
    status = {0: MiniProgram.AuditStatus.APPROVED, 1: MiniProgram.AuditStatus.REJECTED,
              2: MiniProgram.AuditStatus.AUDITING}.get(int(result.get("status", -1)))
    if status and mini_program.audit_status in (MiniProgram.AuditStatus.AUDITING, status):
        _save(mini_program, audit_status=status, audit_reason=result.get("reason", "") or "",
              audit_finished_at=None if status == MiniProgram.AuditStatus.AUDITING else timezone.now())
    return mini_program


def code_release(*, mini_program: MiniProgram) -> MiniProgram:
    """Publish the approved version."""
    if mini_program.audit_status != MiniProgram.AuditStatus.APPROVED:
        raise OpenPlatformError("only an approved version can be released")
    try:
        _call(authorizer_client(mini_program).wxa.release)
    except OpenPlatformError as exc:
        _failed(mini_program, exc)
        raise
    _save(
        mini_program, released_version=mini_program.audit_version, released_at=timezone.now(),
        audit_status=MiniProgram.AuditStatus.RELEASED, last_error="",
    )
    return mini_program


def code_commit_and_submit(*, template: CodeTemplate, mini_programs) -> dict[str, str]:
    """A new version for many operators: commit and submit each; {appid: "ok" | error}."""
    outcome = {}
    for mp in mini_programs:
        try:
            code_commit(mini_program=mp, template=template)
            code_submit_audit(mini_program=mp)
            outcome[mp.appid] = "ok"
        except OpenPlatformError as exc:
            outcome[mp.appid] = str(exc)
    return outcome
