"""fakes.wechat_api driven by the real wechatpy 1.8.18 client over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from fakes import wechat_api
from fakes.tests.conftest import APPID, SECRET


class BaseURLWeChatClient(WeChatClient):
    """How the platform should build its client: base URL + stable_token (wechatpy has none)."""

    def __init__(self, appid: str, secret: str, *, base_url: str, **kwargs: Any) -> None:
        super().__init__(appid, secret, **kwargs)
        self.base_url = base_url.rstrip("/")
        self.API_BASE_URL = f"{self.base_url}/cgi-bin/"
        self.wxa.API_BASE_URL = f"{self.base_url}/"

    def fetch_access_token(self, force_refresh: bool = False) -> dict[str, Any]:
        res = self._http.post(
            f"{self.base_url}/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
                "force_refresh": force_refresh,
            },
            timeout=self.timeout,
        )
        res.raise_for_status()
        result = res.json()
        if result.get("errcode"):
            raise WeChatClientException(result["errcode"], result["errmsg"], client=self)
        self.session.set(self.access_token_key, result["access_token"], result["expires_in"])
        self.expires_at = int(time.time()) + result["expires_in"]
        return result

    def get_phone_number(self, code: str) -> dict[str, Any]:
        # Missing from wechatpy 1.8.18; the endpoint lives under the root, not /cgi-bin/.
        return self.post(
            "wxa/business/getuserphonenumber",
            data={"code": code},
            api_base_url=f"{self.base_url}/",
        )


@pytest.fixture
def client(api_server: wechat_api.WeChatApiServer) -> BaseURLWeChatClient:
    return BaseURLWeChatClient(APPID, SECRET, base_url=api_server.url, timeout=5)


def test_code2session_gives_stable_openid_per_demo_user(client: BaseURLWeChatClient) -> None:
    first = client.wxa.code_to_session("demo-alice#1")
    second = client.wxa.code_to_session("demo-alice#2")
    bob = client.wxa.code_to_session("demo-bob")

    assert first["openid"] == second["openid"] == wechat_api.demo_openid(APPID, "alice")
    assert len(first["openid"]) == 28
    assert bob["openid"] != first["openid"]
    assert first["session_key"] != second["session_key"]
    assert "unionid" not in first


def test_code2session_code_is_single_use_and_invalid_codes_fail(
    client: BaseURLWeChatClient,
) -> None:
    client.wxa.code_to_session("demo-carol")
    with pytest.raises(WeChatClientException) as used:
        client.wxa.code_to_session("demo-carol")
    with pytest.raises(WeChatClientException) as invalid:
        client.wxa.code_to_session("invalid-code")

    assert used.value.errcode == 40163
    assert invalid.value.errcode == 40029


def test_openid_depends_on_appid(api_server: wechat_api.WeChatApiServer) -> None:
    api_server.register_app("wxother0000000001", "other", unionid=True)
    other = BaseURLWeChatClient("wxother0000000001", "other", base_url=api_server.url)

    result = other.wxa.code_to_session("demo-alice")

    assert result["openid"] == wechat_api.demo_openid("wxother0000000001", "alice")
    assert result["openid"] != wechat_api.demo_openid(APPID, "alice")
    assert result["unionid"] == wechat_api.demo_unionid("alice")


def test_unknown_appid_and_wrong_secret_are_rejected(
    api_server: wechat_api.WeChatApiServer,
) -> None:
    unknown = BaseURLWeChatClient("wxunknown00000000", SECRET, base_url=api_server.url)
    wrong = BaseURLWeChatClient(APPID, "not-the-secret", base_url=api_server.url)

    with pytest.raises(WeChatClientException) as e1:
        unknown.wxa.code_to_session("demo-alice")
    with pytest.raises(WeChatClientException) as e2:
        wrong.fetch_access_token()

    assert e1.value.errcode == 40013
    assert e2.value.errcode == 40125


def test_permissive_mode_registers_first_secret() -> None:
    server = wechat_api.start_in_thread(permissive=True)
    try:
        ok = BaseURLWeChatClient("wxnewapp000000001", "first", base_url=server.url)
        bad = BaseURLWeChatClient("wxnewapp000000001", "second", base_url=server.url)
        assert ok.wxa.code_to_session("demo-dan")["openid"]
        with pytest.raises(WeChatClientException) as exc:
            bad.fetch_access_token()
        assert exc.value.errcode == 40125
    finally:
        server.shutdown()


def test_stable_token_is_reused_until_force_refresh(client: BaseURLWeChatClient) -> None:
    a = client.fetch_access_token()
    b = client.fetch_access_token()
    c = client.fetch_access_token(force_refresh=True)

    assert a["access_token"] == b["access_token"] != c["access_token"]
    assert 7000 < b["expires_in"] <= 7200
    # the replaced token keeps working during the 5-minute grace period
    client.session.set(client.access_token_key, a["access_token"])
    assert client.wxa.send_subscribe_message("o-x", "tpl", {"thing1": {"value": "x"}})


def test_legacy_cgi_bin_token_replaces_previous(api_server: wechat_api.WeChatApiServer) -> None:
    client = BaseURLWeChatClient(APPID, SECRET, base_url=api_server.url)
    params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    one = client._fetch_access_token(f"{api_server.url}/cgi-bin/token", params)
    two = client._fetch_access_token(f"{api_server.url}/cgi-bin/token", params)

    assert one["access_token"] != two["access_token"]
    assert two["expires_in"] == 7200


def test_expired_token_gets_40001_and_wechatpy_refetches(
    api_server: wechat_api.WeChatApiServer, client: BaseURLWeChatClient
) -> None:
    client.wxa.send_subscribe_message("o-1", "tpl", {"thing1": {"value": "a"}})
    old = client.session.get(client.access_token_key)
    api_server.expire_tokens(APPID)
    raw = requests.post(
        f"{api_server.url}/cgi-bin/message/subscribe/send",
        params={"access_token": old},
        json={"touser": "o-1", "template_id": "tpl", "data": {}},
        timeout=5,
    ).json()

    client.expires_at = None  # looks valid locally, so the first call uses the dead token
    client.wxa.send_subscribe_message("o-1", "tpl", {"thing1": {"value": "b"}})

    assert raw["errcode"] == 40001
    assert client.session.get(client.access_token_key) != old
    assert [m["data"]["thing1"]["value"] for m in api_server.messages()] == ["a", "b"]


def test_missing_or_bogus_token(api_server: wechat_api.WeChatApiServer) -> None:
    url = f"{api_server.url}/wxa/business/getuserphonenumber"
    missing = requests.post(url, json={"code": "x"}, timeout=5).json()
    bogus = requests.post(url, params={"access_token": "nope"}, json={"code": "x"}, timeout=5)

    assert missing["errcode"] == 41001
    assert bogus.json()["errcode"] == 40001


def test_phone_number(client: BaseURLWeChatClient) -> None:
    explicit = client.get_phone_number("phone-13812345678#1")
    demo = client.get_phone_number("demo-alice")

    assert explicit["phone_info"]["purePhoneNumber"] == "13812345678"
    assert explicit["phone_info"]["countryCode"] == "86"
    assert explicit["phone_info"]["watermark"]["appid"] == APPID
    assert demo["phone_info"]["phoneNumber"] == wechat_api.demo_phone("alice")
    with pytest.raises(WeChatClientException) as exc:
        client.get_phone_number("phone-13812345678#1")
    assert exc.value.errcode == 40029


def test_subscribe_message_is_recorded_and_readable(
    api_server: wechat_api.WeChatApiServer, client: BaseURLWeChatClient
) -> None:
    openid = client.wxa.code_to_session("demo-erin")["openid"]
    data = {"thing1": {"value": "充电完成"}, "amount2": {"value": "53.63元"}}

    result = client.wxa.send_subscribe_message(openid, "TPL_CHARGE_DONE", data, page="pages/a")
    listed = requests.get(
        f"{api_server.url}/_fake/messages", params={"touser": openid}, timeout=5
    ).json()["messages"]

    assert result["errcode"] == 0 and result["msgid"]
    assert len(listed) == 1
    assert listed[0]["template_id"] == "TPL_CHARGE_DONE"
    assert listed[0]["data"] == data
    assert listed[0]["page"] == "pages/a"
    assert listed[0]["appid"] == APPID


def test_subscribe_message_validation(client: BaseURLWeChatClient) -> None:
    with pytest.raises(WeChatClientException) as no_template:
        client.wxa.send_subscribe_message("o-1", "", {"a": {"value": "x"}})
    with pytest.raises(WeChatClientException) as bad_data:
        client.wxa.send_subscribe_message("o-1", "tpl", {"a": "x"})

    assert no_template.value.errcode == 40037
    assert bad_data.value.errcode == 47003


def test_wxacode_unlimit_returns_png(client: BaseURLWeChatClient) -> None:
    res = client.wxa.get_wxa_code_unlimited("pile=P001&gun=1", page="pages/start/index")

    assert isinstance(res, requests.Response)
    assert res.headers["Content-Type"] == "image/png"
    assert res.content.startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(WeChatClientException) as exc:
        client.wxa.get_wxa_code_unlimited("x" * 33)
    assert exc.value.errcode == 40169


def test_injected_errcode_and_http_failures(
    api_server: wechat_api.WeChatApiServer, client: BaseURLWeChatClient
) -> None:
    client.fetch_access_token()
    requests.post(
        f"{api_server.url}/_fake/failures",
        json={
            "path": "/cgi-bin/message/subscribe/send",
            "status": 200,
            "body": {"errcode": 43101, "errmsg": "user refuse to accept the msg"},
        },
        timeout=5,
    ).raise_for_status()
    api_server.inject_failure(path="/cgi-bin/message/subscribe/send", status=502, body={})

    with pytest.raises(WeChatClientException) as refused:
        client.wxa.send_subscribe_message("o-1", "tpl", {"a": {"value": "x"}})
    with pytest.raises(WeChatClientException) as bad_gateway:
        client.wxa.send_subscribe_message("o-1", "tpl", {"a": {"value": "x"}})
    ok = client.wxa.send_subscribe_message("o-1", "tpl", {"a": {"value": "x"}})

    assert refused.value.errcode == 43101
    assert bad_gateway.value.response.status_code == 502
    assert ok["errcode"] == 0
    assert len(api_server.messages()) == 1


def test_openid_control_endpoint(api_server: wechat_api.WeChatApiServer) -> None:
    res = requests.get(
        f"{api_server.url}/_fake/openid", params={"appid": APPID, "name": "alice"}, timeout=5
    ).json()

    assert res["openid"] == wechat_api.demo_openid(APPID, "alice")
    assert res["phone"] == wechat_api.demo_phone("alice")


def test_url_link_opens_a_page_with_its_query(client):
    res = client.wxa._post("wxa/generate_urllink", data={"path": "pages/connector/connector",
                                                          "query": "code=abc", "expire_type": 1,
                                                          "expire_interval": 30},
                           api_base_url=f"{client.base_url}/")
    assert res["url_link"].startswith("https://wxaurl.cn/")
    with pytest.raises(WeChatClientException) as exc:
        client.wxa._post("wxa/generate_urllink", data={"path": "/pages/x"}, api_base_url=f"{client.base_url}/")
    assert exc.value.errcode == 40165
