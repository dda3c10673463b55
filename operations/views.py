"""Pages outside the admin and the driver API."""

from __future__ import annotations

import mimetypes
import re

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.views.decorators.http import require_GET

from .feedback import PHOTO_NAME

_SCHEMA = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_NAME = re.compile(rf"^{PHOTO_NAME}$")


@require_GET
def feedback_photo_file(request, schema: str, name: str):
    """A feedback photo (``/media/feedback/<schema>/<name>``) as stored by
    ``feedback.feedback_photo_store``. The unguessable name is the capability, as on
    WeChat's own image CDN; served on any host so the mini-program, the H5 app and the
    admin all show it. 404 for anything else."""
    if not (_SCHEMA.match(schema) and _NAME.match(name)):
        raise Http404
    path = f"feedback/{schema}/{name}"
    if not default_storage.exists(path):
        raise Http404
    response = FileResponse(default_storage.open(path, "rb"),
                            content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")
    response["Cache-Control"] = "private, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    return response
