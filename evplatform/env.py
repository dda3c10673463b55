"""Reading configuration from environment variables.

Every setting has a working local default except secrets in production mode
(``EVP_ENV=production``), where a missing secret stops start-up with a clear message.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

PRODUCTION = os.environ.get("EVP_ENV", "development") == "production"


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
