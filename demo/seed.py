"""The demo operator that `make run` shows. Idempotent: run it as often as you like.

绿源充电（演示）: three stations at real addresses in Guangzhou (GCJ-02), a mix of AC 7 kW
and DC 120 kW piles, the Guangdong time-of-use tariff, a station owner, a demo member with
money in the wallet, and a WeChat Pay merchant wired to the local fake server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django_tenants.utils import tenant_context

from demo.interconnect import demo_partner_configure
from demo.invoicing import DEMO_FAPIAO_URL, demo_invoicing_configure
from demo.sms import demo_sms_configure
from tenants.models import MiniProgram, Operator
from tenants.selectors import operator_get_by_slug
from tenants.services import operator_create

DEMO_SLUG = "demo"
DEMO_NAME = "绿源充电（演示）"
DEMO_APPID = "wxdemo0000000001"
DEMO_APP_SECRET = "demo-app-secret"
DEMO_MCHID = "1900000001"
DEMO_ADMIN = ("demo-admin", "demo-admin-123")
DEMO_OWNER = ("zhanzhang", "owner-demo-123")
# The investor of the other stations (a second station owner, paid per kWh).
DEMO_INVESTOR = ("touzi", "owner-demo-123")
DEMO_COMMISSION_PERCENT = Decimal("5.00")  # the platform's commission on the demo operator
DEMO_MEMBER_NAME = "alice"  # the fake WeChat's login code demo-alice#… is this member
DEMO_MEMBER_GIFT = Decimal("50.00")
# Top-up offers (at least this much → this bonus); above the journeys' ¥100 top-ups.
DEMO_TOP_UP_OFFERS = [(Decimal("200.00"), Decimal("20.00")), (Decimal("500.00"), Decimal("60.00"))]
FAKE_PAY_KEY_DIR = Path(settings.BASE_DIR) / "var" / "fake_wechatpay"

# name, code, address, district, area code, lat, lng (GCJ-02), piles: (code, kind, kW, guns)
STATIONS = [
    (
        "天河体育中心充电站", "GZ-TH-001", "广州市天河区天河路299号天河体育中心东门停车场", "天河区",
        "440106", "23.137770", "113.325340",
        [("44010600000011", "dc", "120.0", 2), ("44010600000012", "ac", "7.0", 1),
         ("44010600000013", "ac", "7.0", 1)],
    ),
    (
        "珠江新城花城广场充电站", "GZ-TH-002", "广州市天河区珠江新城花城大道85号花城广场地下停车场", "天河区",
        "440106", "23.119400", "113.324700",
        [("44010600000021", "dc", "120.0", 2), ("44010600000022", "ac", "7.0", 1)],
    ),
    (
        "琶洲会展中心充电站", "GZ-HZ-001", "广州市海珠区阅江中路380号琶洲会展中心B区停车场", "海珠区",
        "440105", "23.100900", "113.366500",
        [("44010500000031", "dc", "120.0", 2), ("44010500000032", "dc", "120.0", 2),
         ("44010500000033", "ac", "7.0", 1),
         # Imported AC piles speaking OCPP 1.6J (ws://…/ocpp/{code}), next to the YKC ones.
         ("44010500000034", "ocpp-ac", "22.0", 1), ("44010500000035", "ocpp-ac", "22.0", 1)],
    ),
]


@dataclass
class DemoInfo:
    operator: Operator
    host: str
    created: bool
    pile_codes: list[str]


def demo_host() -> str:
    return f"{DEMO_SLUG}.{settings.TENANT_HOST_SUFFIX}"


def _operator() -> tuple[Operator, bool]:
    operator = operator_get_by_slug(DEMO_SLUG)
    if operator is not None:
        return operator, False
    operator = operator_create(
        slug=DEMO_SLUG,
        name=DEMO_NAME,
        domain=demo_host(),
        admin_username=DEMO_ADMIN[0],
        admin_password=DEMO_ADMIN[1],
        contact_name="演示联系人",
        contact_phone="020-00000000",
    ).operator
    return operator, True


def _merchant(operator: Operator, key_dir: Path, notify_base_url: str) -> MiniProgram:
    """The demo mini-program and a WeChat Pay merchant the fake server accepts: key files
    shared with `python -m fakes.wechatpay --key-dir var/fake_wechatpay --merchant …`."""
    from demo.wechatpay import configure_for_fake
    from fakes.wechatpay import load_or_create_demo_merchant, load_or_create_platform_key

    mini_program, _ = MiniProgram.objects.update_or_create(
        appid=DEMO_APPID,
        defaults={"operator": operator, "app_secret": DEMO_APP_SECRET, "name": DEMO_NAME},
    )
    load_or_create_platform_key(key_dir)
    load_or_create_demo_merchant(key_dir, DEMO_MCHID, DEMO_APPID)
    return configure_for_fake(
        mini_program, key_dir=str(key_dir), mchid=DEMO_MCHID, notify_base_url=notify_base_url
    )


DEMO_BRAND_COLOR = "#0E9F6E"
# The development third-party platform; the Procfile's fake WeChat serves the same one.
DEMO_COMPONENT = {
    "component_appid": "wxcomponentdemo1",
    "component_appsecret": "demo-component-secret",
    "token": "demo-msg-token",
    "encoding_aes_key": "ZXZwLWRlbW8tdGhpcmQtcGFydHktcGxhdGZvcm0tayE",
}


def _open_platform() -> None:
    """The development third-party platform (kept if the super admin configured one)."""
    from tenants.models import OpenPlatform

    if OpenPlatform.objects.exists():
        return
    base = f"http://localhost:{settings.SITE_PORT}"
    OpenPlatform.objects.create(
        **DEMO_COMPONENT, public_base_url=base, api_base_url=f"http://127.0.0.1:{settings.SITE_PORT}"
    )


def _logo_png(color: str, size: int = 192) -> bytes:
    """A square logo: a white lightning bolt on the brand colour."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 5, fill=color)
    bolt = [(0.58, 0.12), (0.26, 0.56), (0.47, 0.56), (0.40, 0.88), (0.74, 0.42), (0.53, 0.42)]
    draw.polygon([(x * size, y * size) for x, y in bolt], fill="white")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _branding(operator: Operator) -> None:
    """The demo's colour and logo in the drivers' app (kept if someone changed them)."""
    from django.core.files.base import ContentFile

    if operator.logo:
        return
    operator.brand_color = DEMO_BRAND_COLOR
    operator.logo.save(f"{DEMO_SLUG}.png", ContentFile(_logo_png(DEMO_BRAND_COLOR)), save=False)
    operator.save(update_fields=["brand_color", "logo"])


def _estate() -> list[str]:
    """Stations, piles, connectors, the Guangdong tariff and a station owner."""
    from accounts.roles import STATION_OWNER, role_group
    from demo.tariffs import tariff_create_guangdong_demo
    from stations.models import Connector, Pile, Station
    from stations.services import pile_create, station_save

    codes, stations = [], []
    for name, code, address, district, area, lat, lng, piles in STATIONS:
        station = Station.objects.filter(code=code).first() or station_save(
            station=Station(
                name=name, code=code, address=address, province="广东省", city="广州市",
                district=district, area_code=area, latitude=Decimal(lat), longitude=Decimal(lng),
                phone="020-12345678", parking_fee_note="充电期间免费停车2小时",
                facilities=["卫生间", "便利店", "休息室"],
            )
        )
        stations.append(station)
        for pile_code, kind, kw, guns in piles:
            codes.append(pile_code)
            if Pile.objects.filter(code=pile_code).exists():
                continue
            dc = kind == "dc"
            ocpp = kind.startswith("ocpp")
            pile = pile_create(
                station=station, code=pile_code, rated_power_kw=Decimal(kw),
                current_type=Pile.CurrentType.DC if dc else Pile.CurrentType.AC,
                connector_count=guns, vendor="演示桩厂", network="4G",
                model="AC22-OCPP" if ocpp else "DC120" if dc else "AC7",
                protocol=Pile.Protocol.OCPP if ocpp else Pile.Protocol.YKC,
                heartbeat_interval_s=60 if ocpp else 10,
            )
            for n in range(1, guns + 1):
                Connector.objects.create(
                    pile=pile, number=n, rated_power_kw=Decimal(kw) / guns,
                    connector_type=Connector.Type.DC if dc else Connector.Type.AC_PLUG,
                    rated_voltage_v=750 if dc else 220, rated_current_a=250 if dc else 32,
                    qr_code=f"{pile_code}{n:02d}",
                )
    # Load management: 琶洲's grid connection takes 200 kW for its four 60 kW DC guns (two
    # 120 kW piles) and an AC pile — four DC sessions get 50 kW each, a fifth car queues.
    Station.objects.filter(code="GZ-HZ-001", max_power_kw__isnull=True).update(
        max_power_kw=Decimal("200"))
    tariff_create_guangdong_demo(stations=stations)
    User = get_user_model()
    owner = User.objects.filter(username=DEMO_OWNER[0]).first()
    if owner is None:
        owner = User.objects.create_user(DEMO_OWNER[0], password=DEMO_OWNER[1], is_staff=True)
        owner.groups.add(role_group(STATION_OWNER))
    for station in stations[:2]:
        station.owners.add(owner)
    investor = User.objects.filter(username=DEMO_INVESTOR[0]).first()
    if investor is None:
        investor = User.objects.create_user(DEMO_INVESTOR[0], password=DEMO_INVESTOR[1], is_staff=True)
        investor.groups.add(role_group(STATION_OWNER))
    for station in stations[2:]:
        station.owners.add(investor)
    _split_rules(stations, owner, investor)
    return codes


def _split_rules(stations, owner, investor) -> None:
    """The owner takes 40 % of the service fee of the first two stations; the investor
    ¥0.10 per kWh at the others. Each is paid by WeChat transfer, weekly, T+3, and opens the
    owner center as the fake WeChat user of the same name."""
    from accounts.models import Member
    from fakes.wechat_api import demo_openid
    from settlement import splits
    from settlement.models import OwnerContract, SplitRule, SplitShare

    since = datetime(2024, 1, 1, tzinfo=UTC)
    for station in stations:
        if SplitRule.objects.filter(station=station).exists():
            continue
        mine = station in stations[:2]
        splits.split_rule_create(
            station_id=station.pk, effective_from=since, note="演示分成协议",
            shares=[splits.ShareInput(
                owner.pk if mine else investor.pk,
                SplitShare.Kind.PERCENT if mine else SplitShare.Kind.PER_KWH,
                Decimal("40") if mine else Decimal("0.10"),
            )],
        )
    for user in (owner, investor):
        openid = demo_openid(DEMO_APPID, user.username)
        member, _ = Member.objects.get_or_create(openid=openid, defaults={"nickname": user.username})
        OwnerContract.objects.get_or_create(owner=user, defaults={
            "member": member, "openid": openid, "method": OwnerContract.Method.WECHAT,
            "real_name": user.username,
        })


def _member() -> None:
    """The demo driver (fake WeChat user ``alice``) with a gift in the wallet."""
    from accounts.models import Member
    from charging.models import ChargingPolicy
    from fakes.wechat_api import demo_openid
    from settlement.services import wallet_top_up

    member, _ = Member.objects.get_or_create(
        openid=demo_openid(DEMO_APPID, DEMO_MEMBER_NAME), defaults={"nickname": "演示车主"}
    )
    wallet_top_up(member=member, amount=DEMO_MEMBER_GIFT, key="demo:seed:wallet", memo="demo seed")
    from billing.models import TopUpOffer

    for pay, bonus in DEMO_TOP_UP_OFFERS:  # shown in the app's wallet (充200送20 …)
        TopUpOffer.objects.get_or_create(pay_amount=pay, defaults={"bonus_amount": bonus})
    policy = ChargingPolicy.current()
    if not policy.notify_template_id:
        policy.notify_template_id = "demo-order-settled"
        policy.save(update_fields=["notify_template_id"])


def _marketing() -> None:
    """An SVIP plan and a coupon drivers can claim (``demo_session --marketing`` uses both)."""
    from marketing.models import CouponTemplate, SvipPlan

    CouponTemplate.objects.get_or_create(
        name="新人立减1元", defaults={"kind": "fixed", "amount": Decimal("1.00"), "claimable": True,
                                  "per_member_limit": 1, "valid_days": 30},
    )
    SvipPlan.objects.get_or_create(
        name="SVIP 月卡", defaults={"months": 1, "price": Decimal("15.00"), "service_discount_percent": Decimal("20"),
                                  "priority_reservation": True},
    )


def seed_demo_operator(
    *, key_dir: Path = FAKE_PAY_KEY_DIR, notify_base_url: str | None = None,
    fapiao_url: str | None = None,
) -> DemoInfo:
    """Create or refresh the demo operator. ``key_dir`` holds the fake WeChat Pay's key files
    (shared with ``python -m fakes.wechatpay --key-dir``); notifications go to
    ``notify_base_url`` (default: this machine's web port); invoices are issued by the fake
    诺诺 platform at ``fapiao_url`` (default ``demo.invoicing.DEMO_FAPIAO_URL``)."""
    operator, created = _operator()
    if not operator.commission_percent:
        operator.commission_percent = DEMO_COMMISSION_PERCENT
        operator.save(update_fields=["commission_percent"])
    _branding(operator)
    _open_platform()
    with transaction.atomic():
        _merchant(operator, key_dir, notify_base_url or f"http://127.0.0.1:{settings.SITE_PORT}")
    with tenant_context(operator), transaction.atomic():
        codes = _estate()
        _member()
        _marketing()
        demo_invoicing_configure(
            fapiao_url=fapiao_url or DEMO_FAPIAO_URL,
            callback_base_url=notify_base_url or f"http://127.0.0.1:{settings.SITE_PORT}",
        )
        demo_partner_configure()
        demo_sms_configure()
    return DemoInfo(operator=operator, host=demo_host(), created=created, pile_codes=codes)
