"""The fakes start as ``python -m ...`` with a banner saying they are stand-ins."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def _run(*args: str) -> Iterator[tuple[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", *args, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = []
        assert proc.stdout is not None
        for line in proc.stdout:
            banner.append(line)
            if line.startswith("====") and len(banner) > 1:
                break
        text = "".join(banner)
        url = re.search(r"listening on (http://\S+)", text)
        assert url, text
        yield url.group(1), text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_wechat_api_cli() -> None:
    with _run("fakes.wechat_api", "--strict", "--app", "wxcli0000000000001:sec") as (url, banner):
        health = requests.get(f"{url}/_fake/health", timeout=5).json()
        apps = requests.get(f"{url}/_fake/apps", timeout=5).json()

    assert "DEVELOPMENT STAND-IN" in banner
    assert health["permissive"] is False
    assert apps["apps"] == [{"appid": "wxcli0000000000001", "unionid": False}]


def test_wechatpay_cli_creates_keys_and_demo_merchant(tmp_path: Path) -> None:
    args = (
        "fakes.wechatpay",
        "--key-dir",
        str(tmp_path),
        "--merchant",
        "1900000999:wxcli01,wxcli02",
    )
    with _run(*args) as (url, banner):
        health = requests.get(f"{url}/_fake/health", timeout=5).json()
        merchants = requests.get(f"{url}/_fake/merchants", timeout=5).json()["merchants"]

    assert "DEVELOPMENT STAND-IN" in banner
    assert health["public_key_id"] == (tmp_path / "pub_key_id.txt").read_text().strip()
    assert health["public_key"] == (tmp_path / "pub_key.pem").read_text()
    assert merchants[0]["mchid"] == "1900000999"
    assert merchants[0]["appids"] == ["wxcli01", "wxcli02"]
    demo = tmp_path / "merchants" / "1900000999"
    assert merchants[0]["merchant_serial_no"] == (demo / "serial_no.txt").read_text().strip()
    assert (demo / "apiclient_key.pem").exists() and (demo / "apiv3_key.txt").exists()
