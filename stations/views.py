"""Pages for people outside the admin: what a connector's QR code opens in a browser."""

from django.shortcuts import render
from django.utils.translation import gettext as _

from evplatform.admin_display import period_name
from tenants.models import MiniProgram

from . import selectors
from .models import Connector

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
        },
    )
