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


def test_status_in_chinese_with_its_colour_and_prices_per_period(tenant):
    station = Station.objects.create(
        name="体育中心站", code="QR02", address="广州市天河区", area_code="440106",
        latitude=Decimal("23.1"), longitude=Decimal("113.3"),
        price_today={"date": "2026-11-30", "slots": [], "periods": [
            {"start": "00:00", "end": "08:00", "period": "valley", "electricity": "0.22800",
             "service": "0.40000"},
            {"start": "08:00", "end": "24:00", "period": "peak", "electricity": "1.02000",
             "service": "0.40000"}]},
    )
    pile = Pile.objects.create(station=station, code="44010699990002", rated_power_kw=Decimal("120"),
                               online=True)
    Connector.objects.create(pile=pile, number=1, rated_power_kw=Decimal("60"), qr_code="label-78",
                             status=Connector.Status.CHARGING)
    body = Client().get("/q/label-78", **HOST).content.decode()
    assert '<span class="state busy">充电中</span>' in body
    assert "00:00–08:00" in body and "谷" in body and "1.02000" in body and "峰" in body
    pile.online = False
    pile.save(update_fields=["online"])
    body = Client().get("/q/label-78", **HOST).content.decode()
    assert '<span class="state off">离线</span>' in body


def test_unknown_code_is_a_chinese_404_page(tenant):
    r = Client().get("/q/nope", **HOST)
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")
    assert "未找到充电枪" in r.text and "请核对标签" in r.text


def test_a_button_opens_the_mini_program_at_the_connector(tenant, fake_wechat, settings):
    from django.core.cache import cache

    station = Station.objects.create(
        name="体育中心站", code="QR09", address="广州市天河区", area_code="440106",
        latitude=Decimal("23.1"), longitude=Decimal("113.3"),
    )
    pile = Pile.objects.create(station=station, code="44010699990009", rated_power_kw=Decimal("120"))
    connector = Connector.objects.create(pile=pile, number=1, rated_power_kw=Decimal("60"), qr_code="label-90")
    cache.delete_many([f"qr:urllink:wxtenanta0000001:{connector.code}"])
    body = Client().get("/q/label-90", **HOST).content.decode()
    assert "打开小程序充电" in body and 'href="https://wxaurl.cn/' in body
    link = body.split('href="https://wxaurl.cn/')[1].split('"')[0]
    settings.WECHAT_API_BASE_URL = "http://127.0.0.1:9/"  # WeChat away: the cached link stays
    assert f"https://wxaurl.cn/{link}" in Client().get("/q/label-90", **HOST).content.decode()


def test_without_wechat_the_page_still_says_how_to_charge(tenant, settings):
    from django.core.cache import cache

    settings.WECHAT_API_BASE_URL = "http://127.0.0.1:9/"  # nothing listens there
    station = Station.objects.create(
        name="体育中心站", code="QR10", address="广州市天河区", area_code="440106",
        latitude=Decimal("23.1"), longitude=Decimal("113.3"),
    )
    pile = Pile.objects.create(station=station, code="44010699990010", rated_power_kw=Decimal("120"))
    connector = Connector.objects.create(pile=pile, number=1, rated_power_kw=Decimal("60"), qr_code="label-91")
    cache.delete_many([f"qr:urllink:wxtenanta0000001:{connector.code}"])
    r = Client().get("/q/label-91", **HOST)
    body = r.content.decode()
    assert r.status_code == 200 and "打开小程序充电" not in body and "微信" in body
