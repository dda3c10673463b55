"""Reading configuration from environment variables.

Every setting has a working local default except secrets in production mode
(``EVP_ENV=production``), where a missing secret stops start-up with a clear message.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

PRODUCTION = os.environ.get("EVP_ENV", "development") == "production"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def production_refusals(values: dict[str, object], development_defaults: dict[str, str]) -> None:
    """In production, raise ImproperlyConfigured naming every development value still set:
    a development secret or encryption key, DEBUG, or a WeChat endpoint that is not an
    ``https://`` address of a real host (the local fakes listen on plain HTTP on loopback).
    """
    if not PRODUCTION:
        return
    problems = [
        f"{name} is the development default"
        for name, default in development_defaults.items()
        if values[name] == default
    ]
    if values["DEBUG"]:
        problems.append("DJANGO_DEBUG must be off")
    for name in ("WECHAT_API_BASE_URL", "WECHATPAY_API_BASE_URL"):
        url = urlsplit(str(values[name]))
        if url.scheme != "https" or (url.hostname or "") in LOOPBACK_HOSTS:
            problems.append(f"{name} must be an https:// address of WeChat, not {values[name]!r}")
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start with EVP_ENV=production: " + "; ".join(problems) + "."
        )


def env_secret(name: str, dev_default: str) -> str:
    """A secret: the environment's value, or ``dev_default`` outside production.

    Raises ImproperlyConfigured in production mode when the variable is unset.
    """
    value = os.environ.get(name)
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set when EVP_ENV=production")
    return dev_default
