"""Firmware update from the admin (issue #18): staff upload an image, the platform hosts
it, the pile's remote-control page sends it — OCPP UpdateFirmware with the download URL,
YKC 0x94 with the FTP server — the pile's answer and later progress (OCPP
FirmwareStatusNotification, YKC 0x93) are recorded on the update and shown, and the
command is audited.

The gateway's threads must see what the commands write, so staff, images and commands
are written on their own committed connections (``committed``) and removed afterwards."""

from __future__ import annotations

import itertools
import json
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import AuditEntry
from charging import handlers, port
from operations import control
from protocols.ykc import messages as m
from stations import firmware as firmware_service
from stations.models import Firmware, FirmwareUpdate, Pile

from .conftest import SCHEMA
from .helpers import committed, login, wait_for
from .ocpp_helpers import OcppGatewayThread, RawClient

HOST = {"HTTP_HOST": "tenant-a.testserver"}
IMAGE = b"\x7fFIRMWARE" + bytes(range(256)) * 4
_names = itertools.count(1)


@pytest.fixture
def ocpp(unblocked, make_pile):
    # After make_pile: the gateway stops (its offline marks written) before the piles go.
    gw = OcppGatewayThread()
    yield gw
    gw.stop()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def staff(unblocked, media, django_user_model):
    """A committed superuser (and, afterwards, every image, update and audit entry the
    test made removed)."""
    name = f"ops-fw-{next(_names)}"

    def make():
        with schema_context(SCHEMA):
            return django_user_model.objects.create_superuser(name, password="x-pass-123")

    user = committed(make)
    yield user

    def remove():
        with schema_context(SCHEMA):
            AuditEntry.objects.filter(actor_name=name).delete()
            FirmwareUpdate.objects.filter(requested_by=name).delete()
            Firmware.objects.filter(name__startswith="fw-test").delete()
            django_user_model.objects.filter(pk=user.pk).delete()

    committed(remove)


def _image(protocol: str) -> Firmware:
    def make():
        with schema_context(SCHEMA):
            return firmware_service.firmware_upload(
                name="fw-test 主控板", version="2.1.0", protocol=protocol,
                uploaded=SimpleUploadedFile("main-2.1.0.bin", IMAGE))
    return committed(make)


def _send(user, code: str, **kwargs) -> control.ControlOutcome:
    def send():
        with schema_context(SCHEMA):
            return control.command_send(user=user, pile=Pile.objects.get(code=code),
                                        name="firmware_update", **kwargs)
    return committed(send)


def _in_background(fn):
    """Run ``fn`` (the pile's side) in a thread while the command blocks."""
    done: dict = {}

    def run():
        try:
            done["value"] = fn()
        except Exception as exc:  # shown by the test's assertion
            done["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def _record(event: port.FirmwareStatus) -> None:
    def record():
        with schema_context(SCHEMA):
            handlers._firmware_status(event)
    committed(record)


def _update(code: str) -> FirmwareUpdate:
    return FirmwareUpdate.objects.get(pile__code=code)


def test_ocpp_update_firmware_is_sent_progress_recorded_shown_and_audited(
        ocpp, make_pile, recorder, staff, tenant, django_user_model):
    code = make_pile(protocol="ocpp")
    pile = RawClient(ocpp.url, code)
    assert pile.boot()[0] == 3
    firmware = _image("ocpp")

    def pile_side():
        call = pile.recv(timeout=20)
        pile.send(json.dumps([3, call[1], {}]))
        return call

    thread, done = _in_background(pile_side)
    outcome = _send(staff, code, firmware=firmware, base_url="https://tenant-a.example.com/")
    thread.join(20)
    assert outcome.result.ok, outcome.result
    call = done["value"]
    assert call[2] == "UpdateFirmware"
    assert call[3]["location"] == f"https://tenant-a.example.com/firmware/{firmware.token}"
    assert call[3]["retries"] == 1 and call[3]["retrieveDate"].endswith("Z")
    update = _update(code)
    assert (update.status, update.requested_by) == ("sent", staff.username)
    entry = AuditEntry.objects.get(actor_name=staff.username, action="pile.command")
    assert entry.changes["firmware"] == [None, "fw-test 主控板 2.1.0"]
    assert entry.detail == f"固件升级 {code} → 成功（状态：sent）"

    # Progress from the pile reaches the domain as the port's event ("Idle" is nothing)...
    for i, status in enumerate(("Downloading", "Idle", "Installed")):
        assert pile.call(f"fw-{i}", "FirmwareStatusNotification", {"status": status}) == \
            [3, f"fw-{i}", {}]
    events = wait_for(lambda: recorder.of(port.FirmwareStatus)
                      if len(recorder.of(port.FirmwareStatus)) == 2 else None)
    assert [(e.pile_code, e.status) for e in events] == [(code, "downloading"),
                                                         (code, "installed")]
    # ...which moves the update on, and the remote-control page shows it.
    _record(events[0])
    assert _update(code).status == "downloading"
    _record(events[1])
    assert _update(code).status == "installed"
    client = Client()  # another user: logging in writes the user row (staff's is committed)
    client.force_login(django_user_model.objects.create_superuser("ops-fw-view", password="x"))
    pk = Pile.objects.get(code=code).pk
    page = client.get(f"/admin/operations/pilecontrol/{pk}/send/", **HOST).content.decode()
    assert 'id="firmware-updates"' in page and "已安装" in page and "固件升级" in page
    pile.close()


def test_ykc_remote_update_0x94_carries_the_ftp_server_and_0x93_is_recorded(
        gateway, make_pile, pile_client, recorder, staff, settings, tenant):
    code = make_pile()
    pile = pile_client()
    login(pile, code)
    firmware = _image("ykc")

    with pytest.raises(control.ControlRefused) as refused:
        _send(staff, code, firmware=firmware)
    assert (refused.value.code, refused.value.status) == ("firmware_ftp_missing", 400)
    with pytest.raises(control.ControlRefused) as refused:
        _send(staff, code)
    assert refused.value.code == "firmware_required"
    assert not FirmwareUpdate.objects.filter(pile__code=code).exists()

    settings.FIRMWARE_FTP_URL = "ftp://fw:s3cret@10.0.0.5:2121/"

    def pile_side():
        frame = pile.recv(0x94, timeout=20)
        pile.send(m.UpdateReply(code, 0), frame.sequence)
        return frame.message

    thread, done = _in_background(pile_side)
    outcome = _send(staff, code, firmware=firmware, when_idle=True)
    thread.join(20)
    assert outcome.result.ok, outcome.result
    sent: m.RemoteUpdate = done["value"]
    assert (sent.server_address, sent.server_port, sent.username, sent.password) == \
        ("10.0.0.5", 2121, "fw", "s3cret")
    assert sent.file_path == firmware.file.name and len(sent.file_path) <= 32
    assert (int(sent.when), int(sent.pile_model), sent.power_kw) == (2, 1, 60)
    # The 0x93 that answered the 0x94 is recorded too ("accepted").
    first = wait_for(lambda: recorder.of(port.FirmwareStatus))
    assert [(e.pile_code, e.status) for e in first] == [(code, "accepted")]
    _record(first[0])
    assert _update(code).status == "accepted"

    # A later 0x93 (download timed out) is reported as the update's progress.
    pile.send(m.UpdateReply(code, 3))
    later = wait_for(lambda: [e for e in recorder.of(port.FirmwareStatus)
                              if e.status == "download_failed"])
    _record(later[0])
    assert (_update(code).status, _update(code).detail) == ("download_failed", "0x93 0x03")


def test_upload_hosting_other_protocol_and_owners_without_the_operators_leave(
        tenant, make_pile, media, django_user_model):
    from accounts.roles import STATION_OWNER, role_group
    from operations.models import ControlPolicy

    user = django_user_model.objects.create_superuser("ops-up", password="x-pass-123")
    client = Client()
    client.force_login(user)
    response = client.post("/admin/stations/firmware/add/", {
        "name": "主控板", "version": "3.0.0", "protocol": "ocpp",
        "file": SimpleUploadedFile("main-3.0.0.bin", IMAGE)}, **HOST)
    assert response.status_code == 302, response.content.decode()[:2000]
    firmware = Firmware.objects.get(version="3.0.0")
    assert (firmware.size_bytes, firmware.file_name) == (len(IMAGE), "main-3.0.0.bin")
    assert len(firmware.sha256) == 64 and len(firmware.token) == 64
    assert firmware.file.name == f"firmware/{firmware.token[:16]}.bin"

    # The platform hosts the image, byte for byte, without a login; guesses find nothing.
    download = Client().get(f"/firmware/{firmware.token}", **HOST)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == IMAGE
    assert download["X-Checksum-SHA256"] == firmware.sha256
    assert Client().get("/firmware/" + "0" * 64, **HOST).status_code == 404
    assert Client().get("/firmware/%00", **HOST).status_code in (400, 404)

    pile = Pile.objects.get(code=make_pile())  # a YKC pile: the OCPP image is refused
    with pytest.raises(control.ControlRefused) as refused:
        control.command_send(user=user, pile=pile, name="firmware_update", firmware=firmware)
    assert (refused.value.code, refused.value.status) == ("firmware_protocol", 400)

    owner = django_user_model.objects.create_user("owner-fw", password="x", is_staff=True)
    owner.groups.add(role_group(STATION_OWNER))
    pile.station.owners.add(owner)
    assert "firmware_update" not in control.commands_allowed(owner, pile)
    with pytest.raises(control.ControlRefused) as refused:
        control.command_send(user=owner, pile=pile, name="firmware_update", firmware=firmware)
    assert refused.value.code == "not_allowed"
    policy = ControlPolicy.load()
    policy.owner_commands = ["firmware_update"]
    policy.save()
    assert control.commands_allowed(owner, pile) == ["firmware_update"]
    assert not FirmwareUpdate.objects.exists()
    pile.station.owners.remove(owner)
