"""Pages for people outside the admin: what a connector's QR code opens in a browser."""

from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _

from tenants.models import MiniProgram

from . import selectors


def qr_landing(request, code: str):
    """``/q/{code}`` on the operator's host (the QR labels' default link): the connector, its
    state and the price now, and how to start charging (the operator's mini-program)."""
    connector = selectors.connector_get_by_code(code)
    if connector is None:
        raise Http404(_("No connector with this code."))
    station = connector.pile.station
    live = selectors.connectors_live([connector])[connector.pk]
    mini_program = MiniProgram.objects.filter(operator=request.tenant).first()
    return render(
        request,
        "stations/qr_landing.html",
        {
            "connector": connector,
            "station": station,
            "live": live,
            "price_now": selectors.station_price_now(station),
            "operator": request.tenant,
            "appid": mini_program.appid if mini_program else "",
        },
    )
