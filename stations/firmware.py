"""Firmware hosted by the platform and sent to piles (issue #18, remote control).

Staff upload an image (:func:`firmware_upload`); the platform serves it at
``/firmware/{token}`` on the operator's host (no login: the 64-hex token is the secret).
An update sent to a pile is a :class:`~stations.models.FirmwareUpdate` row, moved on by
what the pile reports (:func:`firmware_status_record`: OCPP FirmwareStatusNotification,
YKC 0x93 远程更新应答) until a final status.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.db import transaction

from .models import Firmware, FirmwareUpdate, Pile

Status = FirmwareUpdate.Status
FINAL = {Status.FAILED_TO_SEND, Status.DOWNLOAD_FAILED, Status.INSTALLED,
         Status.INSTALLATION_FAILED, Status.REFUSED}



def firmware_upload(*, name: str, version: str, protocol: str, uploaded) -> Firmware:
    """Store an uploaded image (a Django ``UploadedFile``); its size (bytes), SHA-256 and a
    random download token are recorded."""
    digest = hashlib.sha256()
    size = 0
    for chunk in uploaded.chunks():
        digest.update(chunk)
        size += len(chunk)
    uploaded.seek(0)
    firmware = Firmware(name=name, version=version, protocol=protocol,
                        file_name=str(getattr(uploaded, "name", ""))[:200], size_bytes=size,
                        sha256=digest.hexdigest(), token=secrets.token_hex(32))
    firmware.file.save("image.bin", uploaded, save=False)
    firmware.save()
    return firmware


def firmware_update_record(*, pile: Pile, firmware: Firmware, requested_by: str, sent: bool,
                           detail: str = "") -> FirmwareUpdate:
    """The update as sent (``sent``: the pile took the command) or not sent."""
    return FirmwareUpdate.objects.create(
        pile=pile, firmware=firmware, requested_by=requested_by[:150], detail=detail[:200],
        status=Status.SENT if sent else Status.FAILED_TO_SEND)


def firmware_status_record(*, pile_code: str, status: str, at: datetime,
                           detail: str = "") -> FirmwareUpdate | None:
    """The pile reports progress (``status``: a ``FirmwareUpdate.Status`` value) on its
    latest update still under way; None when it has none (reported anyway, ignored)."""
    with transaction.atomic():
        update = (FirmwareUpdate.objects.select_for_update()
                  .filter(pile__code=pile_code).exclude(status__in=FINAL)
                  .order_by("-created_at", "-pk").first())
        if update is None or status not in Status.values:
            return None
        update.status = status
        if detail:
            update.detail = detail[:200]
        update.save(update_fields=["status", "detail", "updated_at"])
        return update
