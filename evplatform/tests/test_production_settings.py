"""Production settings (``EVP_ENV=production``): development values are refused at start-up,
and ``manage.py check --deploy`` is clean (issue 21, item 7).

Each case starts a fresh interpreter, since settings are read once per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789"
DEV_FIELD_KEY = "ZGV2LW9ubHktZmllbGQta2V5LWRvLW5vdC11c2UtISE="


def _production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WECHAT", "EVP_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="evplatform.settings",
        EVP_ENV="production",
        DJANGO_SECRET_KEY="k9$Qz!" + Fernet.generate_key().decode() + "x7#Lm2",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DB_PASSWORD="not-used-by-check",
        DJANGO_ALLOWED_HOSTS=".charging.example.com",
    )
    env.update(overrides)
    return env


def _run(*args: str, **overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=_production_env(**overrides),
        capture_output=True, text=True, timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _run("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_security_settings():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_PROXY_SSL_HEADER, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)"
    )
    result = _run("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False", "True", "True", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')", "True", "True"
    ]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"DJANGO_SECRET_KEY": DEV_SECRET_KEY}, "DJANGO_SECRET_KEY"),
        ({"FIELD_ENCRYPTION_KEY": DEV_FIELD_KEY}, "FIELD_ENCRYPTION_KEY"),
        ({"DJANGO_DEBUG": "1"}, "DJANGO_DEBUG"),
        ({"WECHAT_API_BASE_URL": "http://127.0.0.1:8801/"}, "WECHAT_API_BASE_URL"),
        ({"WECHATPAY_API_BASE_URL": "http://localhost:8802"}, "WECHATPAY_API_BASE_URL"),
        ({"WECHATPAY_API_BASE_URL": "http://api.mch.weixin.qq.com"}, "WECHATPAY_API_BASE_URL"),
    ],
)
def test_development_values_are_refused_in_production(overrides, named):
    result = _run("-c", "import django; django.setup()", **overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr, result.stderr


def test_development_defaults_still_work_outside_production():
    env = {"EVP_ENV": "development", "DJANGO_SECRET_KEY": "", "FIELD_ENCRYPTION_KEY": "",
           "DJANGO_DEBUG": ""}
    result = _run("-c", "import django; django.setup(); print('ok')", **env)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_gateway_metrics_listen_on_loopback_by_default():
    from protocols.management.commands.ykc_gateway import Command

    options = Command().create_parser("manage.py", "ykc_gateway").parse_args([])
    assert options.metrics_host == "127.0.0.1"
