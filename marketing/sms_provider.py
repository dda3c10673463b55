"""The SMS provider interface and its one real client: Tencent Cloud SMS (API 2021-01-11)
through its official SDK (``tencentcloud-sdk-python-sms``). The local fake
(``fakes.sms``) speaks the same API; an ``endpoint`` of host:port is called over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .models import SmsSettings


@dataclass(frozen=True)
class SendResult:
    phone: str  # as given (11 digits)
    ok: bool
    serial_no: str
    fee: int  # billed messages (a long text counts several)
    error: str


@dataclass(frozen=True)
class Receipt:
    serial_no: str
    phone: str
    delivered: bool
    description: str


class SmsProviderError(Exception):
    """The provider refused a whole request or could not be reached."""


class SmsProvider(Protocol):
    max_batch: int

    def send(self, *, phones: list[str], template_id: str, params: list[str], sign_name: str) -> list[SendResult]: ...

    def receipts(self, *, limit: int = 100) -> list[Receipt]: ...


class TencentSms:
    """Tencent Cloud SMS: ``SendSms`` (up to 200 numbers a call), ``PullSmsSendStatus``."""

    max_batch = 200

    def __init__(self, settings: SmsSettings) -> None:
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        http = HttpProfile(endpoint=settings.endpoint or "sms.tencentcloudapi.com",
                           protocol="http" if settings.endpoint and ":" in settings.endpoint else "https",
                           reqTimeout=20)
        self.app_id = settings.sdk_app_id
        self.client = sms_client.SmsClient(
            credential.Credential(settings.secret_id, settings.secret_key), settings.region,
            ClientProfile(httpProfile=http),
        )

    def _call(self, action: str, body: dict):
        import json

        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )
        from tencentcloud.sms.v20210111 import models

        request = getattr(models, f"{action}Request")()
        request.from_json_string(json.dumps(body))
        try:
            return getattr(self.client, action)(request)
        except TencentCloudSDKException as exc:
            raise SmsProviderError(f"{exc.get_code()}: {exc.get_message()}") from exc

    def send(self, *, phones, template_id, params, sign_name):
        response = self._call("SendSms", {
            "PhoneNumberSet": [f"+86{p}" for p in phones], "SmsSdkAppId": self.app_id, "SignName": sign_name,
            "TemplateId": template_id, "TemplateParamSet": [str(p) for p in params],
        })
        out = []
        for status in response.SendStatusSet or []:
            phone = status.PhoneNumber.removeprefix("+86")
            ok = status.Code == "Ok"
            out.append(SendResult(phone, ok, status.SerialNo or "", int(status.Fee or 0),
                                  "" if ok else f"{status.Code}: {status.Message}"))
        return out

    def receipts(self, *, limit=100):
        response = self._call("PullSmsSendStatus", {"Limit": limit, "SmsSdkAppId": self.app_id})
        return [
            Receipt(s.SerialNo, s.PhoneNumber.removeprefix("+86"), s.ReportStatus == "SUCCESS", s.Description or "")
            for s in response.PullSmsSendStatusSet or []
        ]


def sms_provider(settings: SmsSettings) -> SmsProvider:
    return TencentSms(settings)
