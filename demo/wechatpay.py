"""Development and demo wiring for WeChat Pay: give a mini-program merchant credentials the
local fake WeChat Pay server (``fakes.wechatpay``) accepts. Never part of production."""

from __future__ import annotations

import secrets
from pathlib import Path

import requests
from django.conf import settings

from tenants.models import MiniProgram, Operator, ServiceProvider

__all__ = ["configure_for_fake", "configure_service_provider_for_fake"]


def configure_for_fake(
    mini_program: MiniProgram,
    *,
    fake_url: str | None = None,
    key_dir: str | None = None,
    mchid: str = "1900000001",
    notify_base_url: str | None = None,
) -> MiniProgram:
    """Development/demo only: give ``mini_program`` merchant credentials that the local
    fake WeChat Pay server (``fakes.wechatpay``) accepts, and register them with it.

    ``fake_url`` (e.g. ``http://127.0.0.1:8802``, default WECHATPAY_API_BASE_URL): a running
    fake; a fresh merchant key is made, registered by ``POST /_fake/merchants`` and the
    fake's public key (``GET /_fake/platform-key``) stored. ``key_dir`` (e.g.
    ``var/fake_wechatpay``) instead: reuse the files the fake made with
    ``--key-dir DIR --merchant MCHID:APPID`` (no network; raises FileNotFoundError when
    they are missing).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if key_dir is not None:
        # Files written by `python -m fakes.wechatpay --key-dir DIR --merchant MCHID:APPID`
        # (layout in fakes/README.md).
        root = Path(key_dir)
        merchant_dir = root / "merchants" / mchid
        private_pem = (merchant_dir / "apiclient_key.pem").read_text()
        serial = (merchant_dir / "serial_no.txt").read_text().strip()
        apiv3 = (merchant_dir / "apiv3_key.txt").read_text().strip()
        public_pem = (root / "pub_key.pem").read_text()
        public_id = (root / "pub_key_id.txt").read_text().strip()
    else:
        url = (fake_url or settings.WECHATPAY_API_BASE_URL).rstrip("/")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        merchant_public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        serial, apiv3 = secrets.token_hex(20).upper(), secrets.token_hex(16)
        reply = requests.post(
            f"{url}/_fake/merchants",
            json={
                "mchid": mchid, "appid": mini_program.appid, "apiv3_key": apiv3,
                "merchant_public_key": merchant_public, "merchant_serial_no": serial,
            },
            timeout=10,
        )
        reply.raise_for_status()
        platform_key = requests.get(f"{url}/_fake/platform-key", timeout=10).json()
        public_pem, public_id = platform_key["public_key"], platform_key["public_key_id"]
    mini_program.mchid = mchid
    mini_program.merchant_private_key = private_pem
    mini_program.merchant_cert_serial = serial
    mini_program.apiv3_key = apiv3
    mini_program.wechatpay_public_key = public_pem
    mini_program.wechatpay_public_key_id = public_id
    if notify_base_url is not None:
        mini_program.notify_base_url = notify_base_url
    mini_program.save()
    return mini_program


def configure_service_provider_for_fake(
    *,
    fake_url: str | None = None,
    sp_mchid: str = "1900009001",
    sp_appid: str = "wxsp000000000001",
    operator: Operator | None = None,
    sub_mchid: str = "1900009101",
) -> ServiceProvider:
    """Development/demo only: the platform's service-provider account with a fresh key
    registered at the running fake WeChat Pay server; with ``operator``, that operator
    switched to service-provider mode as sub-merchant ``sub_mchid`` of it (registered at the
    fake with the operator's mini-program appids)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    url = (fake_url or settings.WECHATPAY_API_BASE_URL).rstrip("/")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    serial, apiv3 = secrets.token_hex(20).upper(), secrets.token_hex(16)
    requests.post(f"{url}/_fake/merchants", json={
        "mchid": sp_mchid, "appid": sp_appid, "apiv3_key": apiv3,
        "merchant_public_key": public_pem, "merchant_serial_no": serial,
    }, timeout=10).raise_for_status()
    platform_key = requests.get(f"{url}/_fake/platform-key", timeout=10).json()
    sp = ServiceProvider.current() or ServiceProvider()
    sp.sp_mchid, sp.sp_appid, sp.merchant_name = sp_mchid, sp_appid, "演示充电平台服务商有限公司"
    sp.merchant_private_key, sp.merchant_cert_serial, sp.apiv3_key = private_pem, serial, apiv3
    sp.wechatpay_public_key = platform_key["public_key"]
    sp.wechatpay_public_key_id = platform_key["public_key_id"]
    sp.save()
    if operator is not None:
        appids = list(MiniProgram.objects.filter(operator=operator).values_list("appid", flat=True))
        requests.post(f"{url}/_fake/sub-merchants", json={
            "sp_mchid": sp_mchid, "sub_mchid": sub_mchid, "appids": appids,
        }, timeout=10).raise_for_status()
        operator.wechatpay_partner_mode, operator.wechatpay_sub_mchid = True, sub_mchid
        operator.save(update_fields=["wechatpay_partner_mode", "wechatpay_sub_mchid"])
    return sp
