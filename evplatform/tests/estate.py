"""A small operator estate for admin page tests (test client and browser): two stations on
the Guangdong time-of-use tariff, one owned by a station owner (站长), piles online with
connectors, a member with a funded wallet, a settled order with its bill, an open fault
and a few real YKC frames in the frame log. Built in the current tenant schema through the
services, as production data is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

OWNER = ("zhanzhang", "owner-pass-123")
ADMIN = ("yunying", "ops-pass-123")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass
class Estate:
    owned_station: object
    other_station: object
    owned_pile: object
    other_pile: object
    member: object
    order: object
    other_order: object
    owner: object
    admin: object


def _settled_order(member, connector, *, minutes: int, kwh: str, pile_amount: str):
    from django.utils import timezone

    from charging import port, services
    from charging.models import TransactionRecord

    order = services.order_start(member=member, connector=connector)
    now = timezone.now()
    services.record_store(port.TransactionRecord(
        pile_code=order.pile.code, connector_no=connector.number, trade_no=order.trade_no,
        started_at=now - timedelta(minutes=minutes), stopped_at=now,
        meter_start_kwh=Decimal("100"), meter_stop_kwh=Decimal("100") + Decimal(kwh),
        energy_kwh=Decimal(kwh), pile_amount_yuan=Decimal(pile_amount),
        stop_reason=port.StopReason.DRIVER, protocol_stop_code=0x40,
    ))
    return services.record_settle(record_id=TransactionRecord.objects.get(trade_no=order.trade_no).pk)


def _frames(pile_code: str) -> None:
    from django.utils import timezone

    from protocols.models import FrameLog
    from protocols.ykc import messages as m
    from protocols.ykc.enums import Carrier, NetworkType, PileType
    from protocols.ykc.frame import encode_frame

    now = timezone.now()
    login = m.Login(pile_code=pile_code, pile_type=PileType.DC, connector_count=2,
                    protocol_version=0x10, firmware_version="V1.2.3", network_type=NetworkType.SIM,
                    sim="89860000000000000000", carrier=Carrier.CHINA_MOBILE)
    rows = [
        (login, "in", now - timedelta(seconds=30)),
        (m.LoginReply(pile_code=pile_code, success=True), "out", now - timedelta(seconds=29)),
        (m.Heartbeat(pile_code=pile_code, connector_no=1, connector_fault=False), "in",
         now - timedelta(seconds=10)),
        (m.HeartbeatReply(pile_code=pile_code, connector_no=1), "out", now - timedelta(seconds=9)),
    ]
    FrameLog.objects.bulk_create([
        FrameLog(pile_code=pile_code, at=at, direction=direction, frame_type=msg.frame_type,
                 name=type(msg).__name__, hex=encode_frame(msg).hex().upper())
        for msg, direction, at in rows
    ])


def estate_build() -> Estate:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from accounts.models import Member
    from accounts.roles import OPERATOR_ADMIN, STATION_OWNER, role_group
    from demo.tariffs import tariff_create_guangdong_demo
    from settlement.services import wallet_top_up
    from stations.models import Connector, Fault, Pile, Station
    from stations.services import pile_create, station_save

    stations = []
    for n, (name, code, lat, lng) in enumerate([
        ("天河体育中心测试站", "T-TH-001", "23.137770", "113.325340"),
        ("琶洲会展测试站", "T-HZ-001", "23.100900", "113.366500"),
    ]):
        station = station_save(station=Station(
            name=name, code=code, address=f"广州市测试路{n + 1}号", province="广东省",
            city="广州市", district="天河区", area_code="440106", latitude=Decimal(lat),
            longitude=Decimal(lng), phone="020-12345678", facilities=["卫生间", "便利店"],
        ))
        pile = pile_create(
            station=station, code=f"4401060000{n + 1:02d}11", rated_power_kw=Decimal("120.0"),
            current_type=Pile.CurrentType.DC, connector_count=2, vendor="测试桩厂", model="DC120",
        )
        Pile.objects.filter(pk=pile.pk).update(online=True, last_seen_at=timezone.now())
        for gun in (1, 2):
            Connector.objects.create(
                pile=pile, number=gun, rated_power_kw=Decimal("60.0"),
                connector_type=Connector.Type.DC, rated_voltage_v=750, rated_current_a=250,
                qr_code=f"{pile.code}{gun:02d}", status=Connector.Status.PLUGGED,
            )
        stations.append((station, Pile.objects.get(pk=pile.pk)))
    tariff_create_guangdong_demo(stations=[s for s, _ in stations], effective_from=LONG_AGO)

    User = get_user_model()
    owner = User.objects.create_user(OWNER[0], password=OWNER[1], is_staff=True)
    owner.groups.add(role_group(STATION_OWNER))
    stations[0][0].owners.add(owner)
    admin = User.objects.create_user(ADMIN[0], password=ADMIN[1], is_staff=True)
    admin.groups.add(role_group(OPERATOR_ADMIN))

    member = Member.objects.create(openid="openid-estate", nickname="测试车主", phone="13800000000")
    wallet_top_up(member=member, amount=Decimal("200.00"), key="estate:top-up", memo="")
    order = _settled_order(member, stations[0][1].connectors.get(number=1), minutes=40,
                           kwh="25.5", pile_amount="30.60")
    other_order = _settled_order(member, stations[1][1].connectors.get(number=1), minutes=20,
                                 kwh="8.0", pile_amount="9.60")
    Fault.objects.create(pile=stations[0][1], source=Fault.Source.PILE, code="0x01",
                         description="急停按钮被按下", started_at=timezone.now())
    _frames(stations[0][1].code)
    _frames(stations[1][1].code)
    return Estate(
        owned_station=stations[0][0], other_station=stations[1][0],
        owned_pile=stations[0][1], other_pile=stations[1][1], member=member,
        order=order, other_order=other_order, owner=owner, admin=admin,
    )
