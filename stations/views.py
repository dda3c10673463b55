"""Pages for people outside the admin: what a connector's QR code opens in a browser."""

import logging

from django.core.cache import cache
from django.shortcuts import render
from django.utils.translation import gettext as _

from accounts.wechat import WeChatError, url_link
from evplatform.admin_display import period_name
from tenants.models import MiniProgram

from . import selectors
from .models import Connector

log = logging.getLogger(__name__)

# The mini-program page a scan opens, with the connector's code (miniprogram/src/pages/connector).
CONNECTOR_PAGE = "pages/connector/connector"
LINK_DAYS = 30  # WeChat's longest URL Link life; a link is reused for LINK_KEEP_S of it
LINK_KEEP_S = 25 * 86400
LINK_RETRY_S = 300  # after WeChat refused or was unreachable


def open_link(mini_program: MiniProgram | None, code: str) -> str:
    """A URL Link that opens the connector's page in the operator's mini-program (from a
    browser, WeChat included), cached; "" when there is no mini-program or WeChat fails (the
    page then says to scan with WeChat)."""
    if mini_program is None:
        return ""
    key = f"qr:urllink:{mini_program.appid}:{code}"
    link = cache.get(key)
    if link is not None:
        return link
    try:
        link = url_link(mini_program, path=CONNECTOR_PAGE, query=f"code={code}", expire_days=LINK_DAYS)
    except WeChatError as exc:
        log.warning("no URL link for %s (%s): %s", code, mini_program.appid, exc)
        cache.set(key, "", LINK_RETRY_S)
        return ""
    cache.set(key, link, LINK_KEEP_S)
    return link


# A colour per state, so a driver sees at a glance whether the connector is usable.
STATUS_STYLE = {
    Connector.Status.IDLE: "free", Connector.Status.PLUGGED: "free",
    Connector.Status.CHARGING: "busy", Connector.Status.FINISHING: "busy",
    Connector.Status.RESERVED: "busy",
}


def qr_landing(request, code: str):
    """``/q/{code}`` on the operator's host (the QR labels' default link): the connector, its
    state and the price now, and how to start charging (the operator's mini-program)."""
    connector = selectors.connector_get_by_code(code)
    if connector is None:
        # The site's error page (a person scanned a label), not the API's JSON.
        return render(request, "error.html", {
            "status": 404, "code": "not_found", "title": _("Connector not found"),
            "detail": _("No connector with this code. Check the label, or ask the station."),
        }, status=404)
    station = connector.pile.station
    live = selectors.connectors_live([connector])[connector.pk]
    status = live.get("status")
    label = Connector.Status(status).label if status in Connector.Status.values else _("Unknown")
    periods = [
        {"start": p.get("start"), "end": p.get("end"), "period": period_name(p.get("period", "")),
         "electricity": p.get("electricity"), "service": p.get("service")}
        for p in (station.price_today or {}).get("periods", [])
    ]
    mini_program = MiniProgram.objects.filter(operator=request.tenant).first()
    return render(
        request,
        "stations/qr_landing.html",
        {
            "connector": connector,
            "station": station,
            "live": live,
            "status_label": label,
            "status_style": STATUS_STYLE.get(status, "off"),
            "periods": periods,
            "price_now": selectors.station_price_now(station),
            "operator": request.tenant,
            "appid": mini_program.appid if mini_program else "",
            "open_link": open_link(mini_program, connector.code),
        },
    )


def firmware_download(request, token: str):
    """``GET /firmware/{token}``: the firmware image for a pile to download (OCPP
    UpdateFirmware's location), as ``application/octet-stream``; no login (the 64-hex
    token is the secret). Unknown or malformed token → 404."""
    from django.http import FileResponse, Http404

    from .models import Firmware

    if len(token) != 64 or any(c not in "0123456789abcdef" for c in token):
        raise Http404
    firmware = Firmware.objects.filter(token=token).first()
    if firmware is None:
        raise Http404
    response = FileResponse(firmware.file.open("rb"), as_attachment=True,
                            filename=f"{firmware.name}-{firmware.version}.bin",
                            content_type="application/octet-stream")
    response["X-Checksum-SHA256"] = firmware.sha256
    return response
