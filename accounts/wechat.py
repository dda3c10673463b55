"""The operator's mini-program client (wechatpy), pointed at WECHAT_API_BASE_URL.

One client per operator per process; the access token is shared by all processes
through Django's cache (Redis), keyed by appid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from tenants.models import MiniProgram

logger = logging.getLogger(__name__)


class WeChatError(Exception):
    """WeChat refused or could not be reached; ``code`` is WeChat's errcode or None."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class CacheSessionStorage(SessionStorage):
    """wechatpy session storage on Django's cache (shared by every process)."""

    prefix = "wechatpy:"

    def get(self, key, default=None):
        return cache.get(self.prefix + key, default)

    def set(self, key, value, ttl=None):
        cache.set(self.prefix + key, value, timeout=ttl)

    def delete(self, key):
        cache.delete(self.prefix + key)


class MiniProgramClient(WeChatClient):
    """wechatpy's client with every endpoint under a configurable base URL."""

    def __init__(self, appid: str, secret: str, base_url: str):
        super().__init__(appid, secret, session=CacheSessionStorage(), timeout=settings.WECHAT_HTTP_TIMEOUT)
        self.base_url = base_url.rstrip("/") + "/"
        self.API_BASE_URL = self.base_url + "cgi-bin/"
        self.wxa.API_BASE_URL = self.base_url

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.base_url + "cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


_clients: dict[tuple[str, str, str], MiniProgramClient] = {}


def client_for(mini_program: MiniProgram) -> MiniProgramClient:
    key = (mini_program.appid, mini_program.app_secret, settings.WECHAT_API_BASE_URL)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = MiniProgramClient(
            mini_program.appid, mini_program.app_secret, settings.WECHAT_API_BASE_URL
        )
    return client


@dataclass(frozen=True)
class WxSession:
    openid: str
    unionid: str


def code_to_session(mini_program: MiniProgram, code: str) -> WxSession:
    """Exchange a ``wx.login`` code (jscode2session). Raises WeChatError."""
    try:
        data = client_for(mini_program).wxa.code_to_session(code)
    except WeChatClientException as exc:
        raise WeChatError(exc.errmsg or "WeChat login failed", exc.errcode) from exc
    except Exception as exc:  # network failures
        raise WeChatError(f"WeChat unreachable: {exc.__class__.__name__}") from exc
    if not data.get("openid"):
        raise WeChatError("WeChat returned no openid")
    return WxSession(openid=data["openid"], unionid=data.get("unionid", ""))


def phone_number(mini_program: MiniProgram, code: str) -> str:
    """The phone number behind a ``getPhoneNumber`` code (getuserphonenumber)."""
    client = client_for(mini_program)
    try:
        data = client.wxa._post(
            "wxa/business/getuserphonenumber",
            data={"code": code},
            api_base_url=client.base_url,
        )
    except WeChatClientException as exc:
        raise WeChatError(exc.errmsg or "WeChat phone lookup failed", exc.errcode) from exc
    except Exception as exc:
        raise WeChatError(f"WeChat unreachable: {exc.__class__.__name__}") from exc
    info = data.get("phone_info") or {}
    phone = info.get("purePhoneNumber") or info.get("phoneNumber")
    if not phone:
        raise WeChatError("WeChat returned no phone number")
    return phone


def url_link(mini_program: MiniProgram, *, path: str, query: str = "", expire_days: int = 30) -> str:
    """A URL Link (``https://wxaurl.cn/…``) that opens ``path?query`` of the mini-program from
    a browser or a scan outside WeChat (``wxa/generate_urllink``; the link expires after
    ``expire_days``, at most 30). Raises WeChatError."""
    client = client_for(mini_program)
    try:
        data = client.wxa._post(
            "wxa/generate_urllink",
            data={"path": path.lstrip("/"), "query": query, "expire_type": 1,
                  "expire_interval": min(max(expire_days, 1), 30)},
            api_base_url=client.base_url,
        )
    except WeChatClientException as exc:
        raise WeChatError(exc.errmsg or "WeChat URL link failed", exc.errcode) from exc
    except Exception as exc:
        raise WeChatError(f"WeChat unreachable: {exc.__class__.__name__}") from exc
    link = data.get("url_link") or ""
    if not link.startswith("https://"):
        raise WeChatError("WeChat returned no URL link")
    return link


def subscribe_message_send(
    mini_program: MiniProgram, *, openid: str, template_id: str, data: dict, page: str | None = None
) -> None:
    """Send a subscribe message (订阅消息). Raises WeChatError."""
    client = client_for(mini_program)
    try:
        client.wxa.send_subscribe_message(openid, template_id, data, page=page)
    except WeChatClientException as exc:
        raise WeChatError(exc.errmsg or "subscribe message failed", exc.errcode) from exc
    except Exception as exc:
        raise WeChatError(f"WeChat unreachable: {exc.__class__.__name__}") from exc
