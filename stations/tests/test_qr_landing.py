"""/q/{code} on the operator's host: what the QR labels' default link shows in a browser."""

from decimal import Decimal

from django.test import Client

from stations.models import Connector, Pile, Station

HOST = {"HTTP_HOST": "tenant-a.testserver"}


def test_landing_shows_the_connector_and_price(tenant):
    station = Station.objects.create(
        name="体育中心站", code="QR01", address="广州市天河区", area_code="440106",
        latitude=Decimal("23.1"), longitude=Decimal("113.3"),
    )
    pile = Pile.objects.create(station=station, code="44010699990001", rated_power_kw=Decimal("120"))
    Connector.objects.create(pile=pile, number=2, rated_power_kw=Decimal("60"), qr_code="label-77")
    for code in ("label-77", "4401069999000102"):
        r = Client().get(f"/q/{code}", **HOST)
        body = r.content.decode()
        assert r.status_code == 200 and "体育中心站" in body and "2 号枪" in body
        assert "wxtenanta0000001" in body  # the operator's mini-program
        # A label's own value says nothing of the pile's code (what a pile logs in with).
        assert "44010699990001" not in body


def test_unknown_code_is_404(tenant):
    assert Client().get("/q/nope", **HOST).status_code == 404
