"""The drivers' H5 app at ``/m/`` on each operator's host, branded per operator.

``make miniprogram`` builds the uni-app H5 bundle into ``MINIPROGRAM_H5_DIR`` (one build for
every operator); this view serves its ``index.html`` with the operator's configuration
injected as ``window.__EVP__`` (the same keys a mini-program gets from its ``ext.json``):
``{tenant, name, logo, themeColor, apiBase, center: {lat, lng}, devLogin, fakePayUrl}``.
The hashed assets under ``/m/assets/`` are served from the same directory.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

from django.conf import settings
from django.db.models import Avg
from django.http import Http404, HttpResponse
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from tenants.selectors import operator_app_branding

CONFIG_MARK = "<!--evp-config-->"
DEFAULT_CENTRE = {"lat": 23.1291, "lng": 113.2644}  # Guangzhou (GCJ-02)


def operator_app_config(operator, *, mini_program=None) -> dict:
    """The branding keys (``tenants.selectors.operator_app_branding``, as in ext.json) and,
    for the map before the phone says where it is, the centre of the operator's stations
    (run in the operator's schema)."""
    from stations.models import Station

    centre = Station.objects.aggregate(lat=Avg("latitude"), lng=Avg("longitude"))
    return operator_app_branding(operator, mini_program=mini_program) | {
        "center": (
            {"lat": float(centre["lat"]), "lng": float(centre["lng"])}
            if centre["lat"] is not None
            else DEFAULT_CENTRE
        ),
    }


def _script(config: dict) -> str:
    # JSON inside <script>: no "</script>" or "<!--" can escape it.
    text = json.dumps(config, ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"<script>window.__EVP__ = {text};</script>"


@require_GET
def h5_index(request):
    index = Path(settings.MINIPROGRAM_H5_DIR) / "index.html"
    if not index.is_file():
        return HttpResponse(
            _("The drivers' app has not been built: run `make miniprogram`."),
            status=503, content_type="text/plain; charset=utf-8",
        )
    operator = request.tenant
    config = operator_app_config(operator, mini_program=operator.mini_programs.first())
    config.pop("appid", None)  # the H5 app is not a mini-program
    config |= {
        "apiBase": "",  # same origin
        "devLogin": settings.MINIPROGRAM_H5_DEV_TOOLS,
        "fakePayUrl": settings.WECHATPAY_API_BASE_URL if settings.MINIPROGRAM_H5_DEV_TOOLS else "",
    }
    html = index.read_text(encoding="utf-8")
    html = html.replace(CONFIG_MARK, _script(config), 1)
    html = html.replace("<title>充电</title>", f"<title>{escape(config['name'])}</title>", 1)
    icon = escape(config["logo"]) or "data:,"
    color = operator.brand_color  # validated #RRGGBB
    # The operator's colour from the first paint (uni-app's bars default to the build's).
    style = f"<style>.uni-page-head{{background-color:{color}!important}}</style>"
    html = html.replace(
        "<head>",
        f'<head>\n    <meta name="theme-color" content="{escape(operator.brand_color)}">'
        f'\n    <link rel="icon" href="{icon}">\n    {style}',
        1,
    )
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


def _file_response(data: bytes, name: str, cache_seconds: int) -> HttpResponse:
    # Whole small files (not streamed: ASGI would iterate a file synchronously).
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = f"public, max-age={cache_seconds}" + (
        ", immutable" if cache_seconds > 86400 else ""
    )
    return response


@require_GET
def h5_asset(request, path: str):
    """Hashed build files (``path`` is one file name: the URL pattern allows no slash),
    cached for a year: a new build has new names."""
    file = Path(settings.MINIPROGRAM_H5_DIR) / "assets" / path
    if not file.is_file():
        raise Http404(_("No such file."))
    return _file_response(file.read_bytes(), path, 365 * 86400)


@require_GET
def h5_logo(request):
    logo = request.tenant.logo
    if not logo:
        raise Http404(_("This operator has no logo."))
    try:
        with logo.open("rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise Http404(_("This operator has no logo.")) from None
    return _file_response(data, logo.name, 86400)
