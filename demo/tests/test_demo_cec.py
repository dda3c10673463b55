"""Must-show (#14): a partner-started charge on our simulated piles, the whole way on real
sockets. The fake CEC peer (``fakes.cec_peer``), as a customer-owning partner, calls the
platform's ASGI app (uvicorn) over HTTP with the set we issued to it (real AES and HMAC);
the order goes to a simulated YKC pile through the real YKC gateway (0x34 start, real-time
data, 0x36 stop, the 0x3B record) — and the same on an OCPP 1.6J pile; the Celery worker
(real broker) settles the order and pushes each notification to the peer (with the 小桔
field variant ``ServiceMoney``) and the settled order to a second peer acting as regulator;
the ledger holds the partner's receivable once."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import schema_context

from demo.interconnect import DEMO_CEC_OUR_ID, DEMO_CEC_PEER_ID, DEMO_CEC_SECRET
from evplatform.tests.helpers import free_port
from fakes.cec_peer import CecPeer
from protocols.cec.tests.conftest import Live, LiveCaller
from protocols.tests.helpers import committed, wait_for

pytestmark = pytest.mark.django_db  # reads only; the servers' threads see what `committed` wrote

YKC_PILE = "44010600000021"  # 珠江新城: DC 120 kW, two guns (60 kW each), YKC
OCPP_PILE = "44010500000035"  # 琶洲: AC 22 kW OCPP 1.6J
REGULATOR_ID = "MA1REGU01"
REGULATOR_SECRET = "RegulatorSecret1"
# 小桔 1.4.0 spells the service fields with "Service" and rejects the standard's "Sevice".
XIAOJU = {"SeviceMoney": "ServiceMoney", "TotalSeviceMoney": "TotalServiceMoney",
          "SevicePrice": "ServicePrice", "DetailSeviceMoney": "DetailServiceMoney"}
NOTIFICATIONS = ("notification_start_charge_result", "notification_equip_charge_status",
                 "notification_stop_charge_result", "notification_charge_order_info")


def _seq(n: int) -> str:
    return DEMO_CEC_PEER_ID + f"{timezone.now():%Y%m%d%H%M%S}{n:04d}"


@pytest.fixture(scope="module")
def peers(platform, django_db_blocker):
    """The demo partner pointed at a fresh fake peer (customer-owning, 小桔 field names,
    charge status every 2 s) and a second peer as regulator; both committed."""
    aggregator = CecPeer(("127.0.0.1", free_port()), operator_id=DEMO_CEC_PEER_ID,
                         our_id=DEMO_CEC_OUR_ID, secret=DEMO_CEC_SECRET).start_background()
    regulator = CecPeer(("127.0.0.1", free_port()), operator_id=REGULATOR_ID, our_id=DEMO_CEC_OUR_ID,
                        secret=REGULATOR_SECRET, prefix="/shevcs/v1/").start_background()
    schema = platform.operator.schema_name

    def configure():
        from protocols.cec.models import Partner

        with schema_context(schema):
            Partner.objects.filter(operator_id=DEMO_CEC_PEER_ID).update(
                base_url=aggregator.url, is_regulator=False, field_renames=XIAOJU,
                status_interval_s=2)
            s = REGULATOR_SECRET
            Partner.objects.create(
                name="监管平台 (fake)", operator_id=REGULATOR_ID, our_operator_id=DEMO_CEC_OUR_ID,
                in_operator_secret=s, in_data_secret=s, in_data_iv=s, in_sig_secret=s,
                out_operator_secret=s, out_data_secret=s, out_data_iv=s, out_sig_secret=s,
                base_url=regulator.url, path_prefix="/shevcs/v1/", is_customer_operator=False,
                is_regulator=True)

    with django_db_blocker.unblock():
        committed(configure)
    yield aggregator, regulator
    aggregator.shutdown()
    regulator.shutdown()


@pytest.fixture
def partner_call(platform, peers):
    aggregator, _regulator = peers
    from demo.seed import demo_host

    caller = LiveCaller(Live(platform.web, demo_host()), aggregator,
                        operator_id=DEMO_CEC_PEER_ID, secret=DEMO_CEC_SECRET)
    caller.login()
    return caller


def _in_schema(platform, fn):
    def run():
        with schema_context(platform.operator.schema_name):
            return fn()
    return committed(run)


def _order(platform, seq):
    from charging.models import ChargingOrder

    with schema_context(platform.operator.schema_name):
        return ChargingOrder.objects.select_related("pile").filter(partner_seq=seq).first()


def _charge_status_beat(platform) -> int:
    """What beat's ``cec-pushes-due`` does every 15 s: charge status at the partner's
    cadence and the pushes due."""
    from protocols.cec.tasks import pushes_due

    return _in_schema(platform, pushes_due)["charge_status"]


def _received(peer, seq):
    """The peer's messages about ``seq``, in arrival order: [(interface, data)]."""
    with peer.lock:
        return [(name, data) for name, data in peer.received if data.get("StartChargeSeq") == seq]


def _pushes(platform):
    from protocols.cec.models import Push

    with schema_context(platform.operator.schema_name):
        return list(Push.objects.order_by("pk").values_list("key", "state", "sent_at", "done_at"))


def _money(value) -> Decimal:
    return Decimal(str(value))


def _check_money(data, *, total="TotalMoney", elec="ElecMoney", service="ServiceMoney"):
    """TotalMoney = ElecMoney + ServiceMoney, in the partner's spelling (never "Sevice")."""
    assert not any("Sevice" in key for key in json.dumps(data).split('"')[1::2]), data
    assert _money(data[total]) == _money(data[elec]) + _money(data[service]), data


def _check_details(info, order):
    """ChargeDetails: chronological stretches inside the session, each one tariff period,
    adding up to the order's energy and electricity/service money."""
    details = info["ChargeDetails"]
    assert info["SumPeriod"] == len(details) >= 1
    starts = [d["DetailStartTime"] for d in details]
    ends = [d["DetailEndTime"] for d in details]
    assert starts == sorted(starts) and all(s <= e for s, e in zip(starts, ends, strict=True))
    assert all(e <= s for e, s in zip(ends, starts[1:], strict=False))
    assert info["StartTime"] <= starts[0] and ends[-1] <= info["EndTime"]
    assert sum(_money(d["DetailElecMoney"]) for d in details) == order.electricity_amount
    assert sum(_money(d["DetailServiceMoney"]) for d in details) == order.service_amount
    assert abs(sum(_money(d["DetailPower"]) for d in details) - order.energy_kwh) <= Decimal("0.01") * len(details)


def test_a_partner_charge_on_a_simulated_ykc_pile(platform, peers, partner_call, capsys):
    aggregator, regulator = peers
    cid = f"{YKC_PILE}01"
    pile = platform.simulator.piles[YKC_PILE]
    seq = _seq(1)

    ret, _msg, policy = partner_call.call("query_equip_business_policy",
                                          {"EquipBizSeq": _seq(99), "ConnectorID": cid})
    assert ret == 0 and policy["SuccStat"] == 0 and policy["SumPeriod"] >= 3  # time of use
    assert "ServicePrice" in policy["PolicyInfos"][0]

    # The partner's start, sent three times (a retry and two at once): one order, one 0x34.
    ret, _msg, started = partner_call.call("query_start_charge", {"StartChargeSeq": seq, "ConnectorID": cid})
    assert ret == 0 and (started["SuccStat"], started["FailReason"], started["StartChargeSeqStat"]) == (0, 0, 1)
    with ThreadPoolExecutor(2) as pool:
        again = list(pool.map(lambda _: partner_call.call(
            "query_start_charge", {"StartChargeSeq": seq, "ConnectorID": cid}), range(2)))
    assert [(r, d["SuccStat"]) for r, _m, d in again] == [(0, 0), (0, 0)]
    order = _order(platform, seq)
    assert order.mode == "partner" and order.partner == DEMO_CEC_PEER_ID and order.member_id is None
    with schema_context(platform.operator.schema_name):
        from charging.models import ChargingOrder

        assert ChargingOrder.objects.filter(partner=DEMO_CEC_PEER_ID).count() == 1
    # The same StartChargeSeq on the other gun is refused (FailReason 9), nothing starts there.
    _ret, _msg, refused = partner_call.call("query_start_charge",
                                            {"StartChargeSeq": seq, "ConnectorID": f"{YKC_PILE}02"})
    assert (refused["SuccStat"], refused["FailReason"]) == (1, 9)

    # The pile got the remote start (0x34) with the order's trade number and charges.
    wait_for(lambda: ("started", order.trade_no) in pile.events, timeout=60)
    assert [e for e in pile.events if e[0] == "started"] == [("started", order.trade_no)]

    def charging_with(kwh):
        _r, _m, status = partner_call.call("query_equip_charge_status", {"StartChargeSeq": seq})
        return status if status["StartChargeSeqStat"] == 2 and _money(status["TotalPower"]) >= kwh else None

    status = wait_for(lambda: charging_with(Decimal("2")), timeout=90, interval=0.5)
    assert status["ConnectorID"] == cid and status["ConnectorStatus"] == 3
    assert _money(status["VoltageA"]) > 0 and _money(status["CurrentA"]) > 0
    _check_money(status)
    assert _money(status["TotalMoney"]) > 0 and _money(status["ElecMoney"]) > 0
    wait_for(lambda: aggregator.messages("notification_start_charge_result"), timeout=60)

    # Beat's charge-status push at the partner's cadence (2 s): at least one arrives.
    wait_for(lambda: _charge_status_beat(platform) and aggregator.messages("notification_equip_charge_status"),
             timeout=60, interval=1)
    pushed = aggregator.messages("notification_equip_charge_status")[-1]
    assert pushed["StartChargeSeq"] == seq and pushed["StartChargeSeqStat"] == 2
    _check_money(pushed)

    # The partner stops it: the pile gets 0x36, answers, and sends its record (0x3B).
    ret, _msg, stopped = partner_call.call("query_stop_charge", {"StartChargeSeq": seq, "ConnectorID": cid})
    assert ret == 0 and (stopped["SuccStat"], stopped["StartChargeSeqStat"]) == (0, 3)
    wait_for(lambda: ("finished", order.trade_no) in pile.events, timeout=60)
    wait_for(lambda: ("record_acked", order.trade_no) in pile.events, timeout=60)
    wait_for(lambda: _order(platform, seq).state == "settled", timeout=90, interval=0.5)
    order = _order(platform, seq)
    assert not order.abnormal and not order.amount_mismatch and order.total_amount > 0
    with schema_context(platform.operator.schema_name):
        from protocols.models import FrameLog

        frames = FrameLog.objects.filter(pile_code=YKC_PILE)
        wait_for(lambda: {0x34, 0x33, 0x13, 0x36, 0x35, 0x3B, 0x40}
                 <= set(frames.values_list("frame_type", flat=True)), timeout=30)

    # The partner heard of every step, once each, in order.
    wait_for(lambda: {"notification_stop_charge_result", "notification_charge_order_info"}
             <= {name for name, _data in _received(aggregator, seq)}, timeout=60)
    kinds = [name for name, _data in _received(aggregator, seq)]
    order_of = [kinds.index(n) for n in NOTIFICATIONS]
    assert order_of == sorted(order_of), (kinds, _pushes(platform))
    last_status = max(i for i, k in enumerate(kinds) if k == "notification_equip_charge_status")
    assert last_status < kinds.index("notification_stop_charge_result"), kinds
    for once in ("notification_start_charge_result", "notification_stop_charge_result",
                 "notification_charge_order_info"):
        assert kinds.count(once) == 1, kinds
    [result] = aggregator.messages("notification_start_charge_result")
    assert (result["StartChargeSeqStat"], result["ConnectorID"]) == (2, cid)
    [stop] = aggregator.messages("notification_stop_charge_result")
    assert (stop["SuccStat"], stop["StartChargeSeqStat"]) == (0, 4)
    [info] = aggregator.messages("notification_charge_order_info")
    _check_money(info, total="TotalMoney", elec="TotalElecMoney", service="TotalServiceMoney")
    assert _money(info["TotalMoney"]) == order.total_amount
    assert _money(info["TotalPower"]) == order.energy_kwh.quantize(Decimal("0.01"))
    assert info["StopReason"] == 1  # 客户归属地运营商平台停止充电
    _check_details(info, order)

    # The regulator got the settled order once (keyed by our order, not the partner's).
    wait_for(lambda: regulator.messages("notification_charge_order_info"), timeout=60)
    [reported] = regulator.messages("notification_charge_order_info")
    assert reported["StartChargeSeq"] == seq and _money(reported["TotalMoney"]) == order.total_amount
    assert "TotalSeviceMoney" in reported  # the regulator takes the standard's spelling

    # The ledger: the partner owes the order's total, posted once; the books balance.
    with schema_context(platform.operator.schema_name):
        from settlement import selectors as ledger
        from settlement.models import Posting

        assert ledger.partner_receivable(DEMO_CEC_PEER_ID) == order.total_amount
        assert Posting.objects.filter(key=f"order:{order.number}:charge").count() == 1
    capsys.readouterr()
    call_command("ledger_verify", tenant="demo")
    assert capsys.readouterr().out.strip().endswith("postings: ok")

    # A late retry of the start changes nothing: the same (finished) order, no new 0x34.
    _ret, _msg, late = partner_call.call("query_start_charge", {"StartChargeSeq": seq, "ConnectorID": cid})
    assert (late["SuccStat"], late["StartChargeSeqStat"]) == (0, 4)
    assert [e for e in pile.events if e[0] == "started"] == [("started", order.trade_no)]

    # The day's reconciliation (check_charge_orders) carries the order to the partner.
    from protocols.cec import pushes

    today = timezone.localtime(timezone.now(), pushes.convert.CHINA).date()
    _in_schema(platform, lambda: pushes.check_orders(day=today + timedelta(days=0)))
    wait_for(lambda: aggregator.messages("check_charge_orders"), timeout=60)
    [check] = aggregator.messages("check_charge_orders")
    assert [o["StartChargeSeq"] for o in check["ChargeOrders"]] == [seq]
    assert _money(check["TotalOrderMoney"]) == order.total_amount and check["OrderCount"] == 1
    with schema_context(platform.operator.schema_name):
        from protocols.cec.models import Push

        # Every message was confirmed (the last ones may still be on their way).
        wait_for(lambda: not Push.objects.exclude(state="done").exists(), timeout=60)


def test_a_partner_charge_on_a_simulated_ocpp_pile(platform, peers, partner_call):
    """The same partner order on an OCPP pile: nothing in interconnection knows the
    pile's protocol."""
    aggregator, regulator = peers
    cid = f"{OCPP_PILE}01"
    seq = _seq(2)
    ret, _msg, started = partner_call.call("query_start_charge", {"StartChargeSeq": seq, "ConnectorID": cid})
    assert ret == 0 and started["SuccStat"] == 0

    def charging():
        _r, _m, status = partner_call.call("query_equip_charge_status", {"StartChargeSeq": seq})
        return status if status["StartChargeSeqStat"] == 2 and _money(status["TotalPower"]) > 0 else None

    status = wait_for(charging, timeout=120, interval=1)
    _check_money(status)
    ret, _msg, stopped = partner_call.call("query_stop_charge", {"StartChargeSeq": seq, "ConnectorID": cid})
    assert ret == 0 and stopped["SuccStat"] == 0
    wait_for(lambda: _order(platform, seq).state == "settled", timeout=120, interval=0.5)
    order = _order(platform, seq)
    with schema_context(platform.operator.schema_name):
        from protocols.models import FrameLog

        names = FrameLog.objects.filter(pile_code=OCPP_PILE)
        wait_for(lambda: {"RemoteStartTransaction", "StartTransaction", "MeterValues",
                          "RemoteStopTransaction", "StopTransaction"}
                 <= set(names.values_list("name", flat=True)), timeout=30)

    def heard():
        kinds = [name for name, _data in _received(aggregator, seq)]
        return kinds if "notification_charge_order_info" in kinds else None

    kinds = wait_for(heard, timeout=60)
    assert kinds[0] == "notification_start_charge_result" and kinds[-1] == "notification_charge_order_info"
    assert kinds.index("notification_stop_charge_result") < kinds.index("notification_charge_order_info")
    info = next(d for n, d in _received(aggregator, seq) if n == "notification_charge_order_info")
    _check_money(info, total="TotalMoney", elec="TotalElecMoney", service="TotalServiceMoney")
    assert _money(info["TotalMoney"]) == order.total_amount
    wait_for(lambda: any(m["StartChargeSeq"] == seq for m in regulator.messages("notification_charge_order_info")),
             timeout=60)
