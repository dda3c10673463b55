"""The port's views (``charging.port``) as T/CEC 102 structures, and back. Pure functions.

Times are China time text (``yyyy-MM-dd HH:mm:ss``), money yuan 2 dp, energy kWh 2 dp
(``TotalPower``), prices yuan/kWh 4 dp, power kW 1 dp, coordinates 6 dp; Decimals are
written as JSON numbers with exactly those places (``codec.dumps``).
Source: ``shared/reference/cec-t102-2016.md`` §4–5.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from charging import port

CHINA = ZoneInfo("Asia/Shanghai")

# ConnectorStatusInfo.Status: 0 离网 1 空闲 2 占用(未充电) 3 占用(充电中) 4 预约锁定 255 故障
CONNECTOR_STATUS = {
    port.ConnectorStatus.OFFLINE: 0,
    port.ConnectorStatus.IDLE: 1,
    port.ConnectorStatus.PLUGGED: 2,
    port.ConnectorStatus.FINISHING: 2,
    port.ConnectorStatus.CHARGING: 3,
    port.ConnectorStatus.RESERVED: 4,
    port.ConnectorStatus.FAULT: 255,
}
# StartChargeSeqStat: 1 启动中 2 充电中 3 停止中 4 已结束 5 未知
SEQ_STAT = {
    "created": 1, "starting": 1, "charging": 2, "stopping": 3,
    "finished": 4, "settled": 4, "failed": 4, "abnormal": 4,
}
# StopReason: 0 用户手动 1 客户归属地运营商平台 2 BMS 3 设备故障 4 连接器断开 5~99 自定义
STOP_REASON = {
    port.StopReason.DRIVER: 1,
    port.StopReason.FULL: 2,
    port.StopReason.AT_PILE: 0,
    port.StopReason.BALANCE: 5,
    port.StopReason.UNPLUGGED: 4,
    port.StopReason.EMERGENCY: 3,
    port.StopReason.FAULT: 3,
    port.StopReason.PLATFORM: 6,
    port.StopReason.UNKNOWN: 99,
}


def q(value: Decimal | None, places: int) -> Decimal:
    return (value or Decimal(0)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def when(at: datetime | None) -> str:
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S") if at else ""


def parse_when(text: str) -> datetime:
    """``yyyy-MM-dd HH:mm:ss`` China time → aware datetime; ValueError if malformed."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)


def connector_id(operator_id: str, pile_code: str, connector_no: int) -> str:
    """Our ConnectorID: the pile code and the connector number (≤ 26 characters)."""
    return f"{pile_code}{connector_no:02d}"


def split_connector_id(value: str) -> tuple[str, int] | None:
    """(pile code, connector number) of one of our ConnectorIDs, else None."""
    if not isinstance(value, str) or len(value) < 3 or not value[-2:].isdigit():
        return None
    return value[:-2], int(value[-2:])


def station_info(operator_id: str, s: port.StationView, policy: str = "") -> dict[str, Any]:
    """StationInfo with EquipmentInfos and ConnectorInfos (§5.1–5.3)."""
    return {
        "StationID": str(s.id),
        "OperatorID": operator_id,
        "EquipmentOwnerID": operator_id,
        "StationName": s.name[:50],
        "CountryCode": "CN",
        "AreaCode": s.area_code,
        "Address": s.address[:50],
        "ServiceTel": s.phone,
        "StationType": s.station_type,
        "StationStatus": s.status,
        "ParkNums": 0,
        "StationLng": q(s.longitude, 6),
        "StationLat": q(s.latitude, 6),
        "Construction": 255,
        "BusineHours": s.opening_hours,
        "ElectricityFee": policy,
        "ParkFee": s.parking_fee_note[:100],
        "Payment": "线上",
        "SupportOrder": 0,
        "EquipmentInfos": [
            {
                "EquipmentID": p.code,
                "ManufacturerName": p.vendor[:30],
                "EquipmentModel": p.model[:20],
                "EquipmentType": p.current_type,
                "EquipmentName": (p.name or p.code)[:30],
                "Power": q(p.power_kw, 1),
                "ConnectorInfos": [
                    {
                        "ConnectorID": connector_id(operator_id, p.code, c.connector_no),
                        "ConnectorName": c.name[:30],
                        "ConnectorType": c.connector_type,
                        "VoltageUpperLimits": c.voltage_v,
                        "VoltageLowerLimits": 0 if p.current_type == 2 else 200,
                        "Current": c.current_a,
                        "Power": q(c.power_kw, 1),
                        "NationalStandard": 2,
                    }
                    for c in p.connectors
                ],
            }
            for p in s.piles
        ],
    }


def connector_status_info(operator_id: str, pile_code: str, c: port.ConnectorView) -> dict:
    return {
        "ConnectorID": connector_id(operator_id, pile_code, c.connector_no),
        "Status": CONNECTOR_STATUS.get(c.status, 0),
    }


def station_status_info(operator_id: str, s: port.StationView) -> dict[str, Any]:
    return {
        "StationID": str(s.id),
        "ConnectorStatusInfos": [
            connector_status_info(operator_id, p.code, c) for p in s.piles for c in p.connectors
        ],
    }


def start_charge_seq(operator_id: str, o: port.OrderView) -> str:
    """The order's StartChargeSeq: the partner's own, else ours (OperatorID + 18 digits of
    the order number, 27 characters)."""
    if o.partner_seq:
        return o.partner_seq
    digits = "".join(ch for ch in o.number if ch.isdigit())
    return operator_id + digits[-18:].rjust(18, "0")


def charge_details(o: port.OrderView) -> list[dict[str, Any]]:
    return [
        {
            "DetailStartTime": when(d.start),
            "DetailEndTime": when(d.end),
            "ElecPrice": q(d.electricity_price, 4),
            "SevicePrice": q(d.service_price, 4),
            "DetailPower": q(d.energy_kwh, 2),
            "DetailElecMoney": q(d.electricity_yuan, 2),
            "DetailSeviceMoney": q(d.service_yuan, 2),
        }
        for d in o.details
    ]


def charge_status(operator_id: str, o: port.OrderView, now: datetime) -> dict[str, Any]:
    """ChargeStatus (§5.9): query_equip_charge_status's answer and the status push."""
    details = charge_details(o)
    return {
        "StartChargeSeq": start_charge_seq(operator_id, o),
        "StartChargeSeqStat": SEQ_STAT.get(o.state, 5),
        "ConnectorID": connector_id(operator_id, o.pile_code, o.connector_no),
        "ConnectorStatus": CONNECTOR_STATUS.get(o.connector_status, 0),
        "CurrentA": q(o.current_a, 1),
        "VoltageA": q(o.voltage_v, 1),
        "Soc": o.soc_percent or 0,
        "StartTime": when(o.started_at or o.created_at),
        "EndTime": when(now),
        "TotalPower": q(o.energy_kwh, 2),
        "ElecMoney": q(o.electricity_yuan, 2),
        "SeviceMoney": q(o.service_yuan, 2),
        "TotalMoney": q(o.total_yuan, 2),
        "SumPeriod": len(details),
        "ChargeDetails": details,
    }


def charge_order_info(operator_id: str, o: port.OrderView) -> dict[str, Any]:
    """ChargeOrderInfo (§4.15) of a settled order."""
    details = charge_details(o)
    return {
        "StartChargeSeq": start_charge_seq(operator_id, o),
        "ConnectorID": connector_id(operator_id, o.pile_code, o.connector_no),
        "StartTime": when(o.started_at or o.created_at),
        "EndTime": when(o.stopped_at or o.settled_at),
        "TotalPower": q(o.energy_kwh, 2),
        "TotalElecMoney": q(o.electricity_yuan, 2),
        "TotalSeviceMoney": q(o.service_yuan, 2),
        "TotalMoney": q(o.total_yuan, 2),
        "StopReason": STOP_REASON.get(o.stop_reason, 99) if o.stop_reason else 99,
        "SumPeriod": len(details),
        "ChargeDetails": details,
    }
