"""The demo operator's mini-program through the (fake) third-party platform, with `make run`
up: authorise it, upload the `mp-weixin` build as a code template, and - with ``--publish`` -
commit, submit for audit, wait for the fake's reviewers and release, printing each state.
Without ``--publish`` the super admin does the last steps in the admin's mini-program table."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from demo.seed import DEMO_APPID
from tenants import open_platform
from tenants.models import MiniProgram, OpenPlatform

MP_WEIXIN = Path(settings.BASE_DIR) / "miniprogram" / "dist" / "build" / "mp-weixin"


def _zip_size(folder: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
    return buffer.tell()


class Command(BaseCommand):
    help = "Authorise the demo mini-program, upload the mp-weixin build as a template (fake WeChat)."

    def add_arguments(self, parser):
        parser.add_argument("--code-version", dest="user_version", default=time.strftime("1.0.%Y%m%d%H%M"))
        parser.add_argument("--publish", action="store_true", help="commit, audit and release too")
        parser.add_argument("--timeout", type=float, default=60.0)

    def _wait(self, what: str, check, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.5)
        raise CommandError(f"timed out waiting for {what}")

    def handle(self, *args, **o):
        fake = httpx.Client(base_url=settings.WECHAT_API_BASE_URL.rstrip("/"), timeout=15)
        if not MP_WEIXIN.joinpath("app.json").is_file():
            raise CommandError("no mp-weixin build: run `make miniprogram` first")
        self._wait(
            "the fake WeChat's component_verify_ticket (is `make run` up?)",
            lambda: OpenPlatform.objects.exclude(verify_ticket="").exists(), o["timeout"],
        )
        self.stdout.write("component_verify_ticket: received and stored")

        mp = MiniProgram.objects.get(appid=DEMO_APPID)
        if mp.authorization != MiniProgram.Authorization.AUTHORIZED:
            platform = OpenPlatform.objects.get()
            redirect = platform.public_base_url.rstrip("/") + reverse(
                "component-authorized", urlconf="evplatform.urls_public"
            )
            link = open_platform.authorization_url(redirect_uri=redirect)
            self.stdout.write(f"authorisation link: {link}")
            pre_auth_code = parse_qs(urlsplit(link).query)["pre_auth_code"][0]
            # The operator's administrator scans and confirms (the fake plays WeChat).
            fake.post("/_fake/component/authorize", json={
                "pre_auth_code": pre_auth_code, "authorizer_appid": DEMO_APPID, "redirect_uri": redirect,
            }).raise_for_status()
            mp = self._wait(
                "the authorisation",
                lambda: MiniProgram.objects.filter(
                    appid=DEMO_APPID, authorization=MiniProgram.Authorization.AUTHORIZED
                ).first(),
                o["timeout"],
            )
        self.stdout.write(f"authorised: {mp.appid} ({mp.display_name})")

        size = _zip_size(MP_WEIXIN)
        draft = fake.post("/_fake/component/drafts", json={
            "user_version": o["user_version"], "user_desc": "司机端小程序", "size": size,
        }).json()
        template = open_platform.template_add_from_draft(draft_id=draft["draft_id"])
        self.stdout.write(f"code template #{template.template_id}: version {template.user_version} ({size} bytes zipped)")
        if not o["publish"]:
            self.stdout.write(
                f"next: http://localhost:{settings.SITE_PORT}/admin/tenants/miniprogram/ → select the "
                "mini-program → 'Commit the latest code template and submit for audit', then 'Release'"
            )
            return

        open_platform.code_commit(mini_program=mp, template=template)
        self.stdout.write(f"committed {template.user_version} with its ext.json")
        open_platform.code_submit_audit(mini_program=mp)
        self.stdout.write("submitted for audit: waiting for WeChat's reviewers (the fake)")
        mp = self._wait(
            "the audit result",
            lambda: MiniProgram.objects.filter(appid=DEMO_APPID).exclude(
                audit_status=MiniProgram.AuditStatus.AUDITING).first(),
            o["timeout"],
        )
        self.stdout.write(f"audit: {mp.get_audit_status_display()} {mp.audit_reason}")
        if mp.audit_status != MiniProgram.AuditStatus.APPROVED:
            raise CommandError("the version was not approved")
        open_platform.code_release(mini_program=mp)
        self.stdout.write(f"released: {mp.released_version}")
