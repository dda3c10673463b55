"""The SMS provider interface alarms are sent through.

``settings.SMS_PROVIDER`` names a class (dotted path) with ``send(phone, text)`` raising
:class:`SmsError` when the provider refuses; unset, no SMS is sent and each would-be
delivery is recorded as ``no_sms_provider``.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class SmsError(Exception):
    pass


class SmsProvider(Protocol):
    def send(self, phone: str, text: str) -> None: ...


def provider() -> SmsProvider | None:
    path = getattr(settings, "SMS_PROVIDER", "")
    return import_string(path)() if path else None
