"""The port's load-management and remote-control commands on OCPP 1.6J piles, through the
real gateway and a simulated charge point on real sockets: PowerLimit (kW or percent) →
SetChargingProfile (ChargePointMaxProfile on connector 0, in W or A as the pile allows),
PowerLimit off/on → ChangeAvailability, Reboot → Reset, TimeSync / PushTariff → unsupported."""

from __future__ import annotations

from decimal import Decimal

import pytest

from charging import bus, port
from protocols.ocpp import commands as c

from .conftest import SCHEMA
from .helpers import wait_for
from .test_ocpp_gateway import ocpp, sender, sims  # noqa: F401

D = Decimal


@pytest.fixture
def online(ocpp, make_pile, sims):  # noqa: F811
    def open_(connectors=2, **kwargs):
        code = make_pile(protocol="ocpp", connectors=connectors)
        pile = sims.pile(code, ocpp.url, connectors=connectors, power_kw=60, **kwargs)
        sims.online(pile)
        wait_for(lambda: bus._redis().get(bus.route_key(SCHEMA, code)))
        return code, pile
    return open_


def _run(sender, command):  # noqa: F811
    return sender(command).result(20)


def _profile(pile):
    return pile.profiles[-1]


def test_power_limit_sets_a_charge_point_max_profile_in_watts(online, sender, sims,  # noqa: F811
                                                             recorder):
    code, pile = online()
    # The cards' starts are accepted (two sessions, two trade numbers): the sessions last.
    trade_nos = iter(["1" * 32, "2" * 32])
    recorder.card_decision = lambda request: port.CardStartDecision(
        accepted=True, trade_no=next(trade_nos), card_no=request.card_no.rjust(16, "0")[:16],
        balance_yuan=D("88.00"))
    result = _run(sender, port.PowerLimit(code, D("33.3333"), D("60")))
    assert result.ok and result.detail["applied_kw"] == "33.333"
    assert result.detail["charging_rate_unit"] == "W"
    profile = _profile(pile)
    assert profile["charging_profile_purpose"] == "ChargePointMaxProfile"
    assert profile["charging_profile_kind"] == "Absolute"
    period = profile["charging_schedule"]["charging_schedule_period"]
    assert profile["charging_schedule"]["charging_rate_unit"] == "W"
    assert period == [{"start_period": 0, "limit": 33333}]
    assert pile.max_power_w == 33333
    # Two connectors charging share the capped output.
    sims.run(pile.begin, pile.connectors[1], "CARD0001")
    sims.run(pile.begin, pile.connectors[2], "CARD0002")
    sims.drained(pile)
    assert all(c.charging for c in pile.connectors.values())
    assert sims.run(pile.draw_w) == pytest.approx(33333)
    assert sims.run(pile.connector_power_w, pile.connectors[1]) == pytest.approx(16666.5)
    # A new cap replaces the old one (same profile id), here above the rating: rating rules.
    assert _run(sender, port.PowerLimit(code, D("80"), D("60"))).detail["applied_kw"] == "80.000"
    assert {p["charging_profile_id"] for p in pile.profiles} == {1}
    assert sims.run(pile.draw_w) == pytest.approx(60000)


def test_power_limit_in_amperes_when_the_pile_takes_only_current(online, sender):  # noqa: F811
    code, pile = online(rate_unit="Current")
    result = _run(sender, port.PowerLimit(code, D("20"), D("60")))
    # 20 kW / (3 × 230 V) = 28.98 A → 28 A per phase = 19.32 kW, never above the ask.
    assert result.ok and result.detail["charging_rate_unit"] == "A"
    assert result.detail["applied_kw"] == "19.320"
    schedule = _profile(pile)["charging_schedule"]
    assert schedule["charging_rate_unit"] == "A"
    assert schedule["charging_schedule_period"] == [
        {"start_period": 0, "limit": 28, "number_phases": 3}]
    assert pile.max_power_w == pytest.approx(19320)
    # Below the 6 A an EV can charge at: the protocol cannot honour it.
    low = _run(sender, port.PowerLimit(code, D("3"), D("60")))
    assert not low.ok and low.error == "invalid"
    assert pile.max_power_w == pytest.approx(19320)
    # The pile is reconfigured to take power: the next cap goes in W.
    assert _run(sender, c.OcppChangeConfiguration(
        code, "ChargingScheduleAllowedChargingRateUnit", "Current,Power")).ok
    watts = _run(sender, port.PowerLimit(code, D("20"), D("60")))
    assert watts.detail == {"applied_kw": "20.000", "charging_rate_unit": "W"}
    assert pile.max_power_w == 20000


def test_a_pile_refusing_the_profile_fails_the_limit(online, sender, sims):  # noqa: F811
    code, pile = online(connectors=1)
    sims.run(setattr, pile, "accept_charging_profile", False)
    result = _run(sender, port.PowerLimit(code, D("30"), D("60")))
    assert not result.ok and result.error == "refused"
    assert result.detail == {"status": "Rejected"} and pile.max_power_w is None
    zero = _run(sender, port.PowerLimit(code, D("0"), D("60")))
    assert not zero.ok and zero.error == "invalid"


def test_power_cap_forbids_allows_and_caps_at_a_percent_of_the_rating(online, sender):  # noqa: F811
    code, pile = online()
    off = _run(sender, port.PowerLimit.percent_of_rating(code, 100, enabled=False))
    assert off.ok
    wait_for(lambda: {c.status for c in pile.connectors.values()} == {"Unavailable"})
    assert pile.max_power_w is None  # no cap sent with "off"
    on = _run(sender, port.PowerLimit.percent_of_rating(code, 50, enabled=True))
    assert on.ok and on.detail["applied_kw"] == "30.000"  # 50 % of the pile's 60 kW
    wait_for(lambda: {c.status for c in pile.connectors.values()} == {"Available"})
    assert pile.max_power_w == 30000
    bad = _run(sender, port.PowerLimit.percent_of_rating(code, 20))
    assert not bad.ok and bad.error == "invalid"


def test_reboot_resets_soft_or_hard_and_the_rest_is_unsupported(online, sender, sims):  # noqa: F811
    code, pile = online(connectors=1)
    assert _run(sender, port.TimeSync(code)) == port.CommandResult(ok=False, error="unsupported")
    assert _run(sender, port.PushTariff(code)) == port.CommandResult(ok=False,
                                                                      error="unsupported")
    sims.run(pile.begin, pile.connectors[1], "CARD0001")
    sims.drained(pile)
    assert _run(sender, port.Reboot(code, when_idle=True)).ok
    wait_for(lambda: pile.stats.boots >= 2, timeout=30)
    sims.drained(pile)
    wait_for(lambda: bus._redis().get(bus.route_key(SCHEMA, code)))
    assert _run(sender, port.Reboot(code, when_idle=False)).ok
    wait_for(lambda: pile.stats.boots >= 3, timeout=30)
    assert pile.resets == ["Soft", "Hard"]


def test_the_admins_remote_control_of_an_ocpp_pile_reads_in_chinese(
        tenant, online, django_user_model):
    from django.test import Client

    from accounts.models import AuditEntry
    from stations.models import Pile

    code, pile = online()
    user = django_user_model.objects.create_superuser("ops-ocpp", password="x-pass-123")
    client = Client()
    client.force_login(user)
    url = f"/admin/operations/pilecontrol/{Pile.objects.get(code=code).pk}/send/"
    host = {"HTTP_HOST": "tenant-a.testserver"}

    def send(data):
        response = client.post(url, data, **host)
        assert response.status_code == 200
        html = response.content.decode()
        return html[html.index('id="command-reply"'):html.index('id="command-history"')]

    for name in ("time_sync", "push_tariff"):
        reply = send({"command": name})
        assert "✘ 该桩不支持此指令" in reply and "<table>" not in reply
    reply = send({"command": "power_cap", "percent": "50"})
    assert "✔" in reply and "生效功率上限（kW）" in reply and "30.000" in reply
    assert pile.max_power_w == 30000
    reply = send({"command": "reboot", "when_idle": "on"})
    assert "✔" in reply
    wait_for(lambda: pile.resets == ["Soft"])
    details = list(AuditEntry.objects.filter(action="pile.command").order_by("pk")
                   .values_list("detail", flat=True))
    assert details[0] == f"对时设置 {code} → 该桩不支持此指令"
    assert "→ 成功（生效功率上限（kW）：30.000" in details[2]
    assert details[3] == f"重启 {code} → 成功"
