"""YKC V1.6 message types (reference §3): one frozen dataclass per frame code.

Every class has ``FRAME_TYPE`` (the frame-type byte), ``decode_body(body) -> message`` and
``encode_body() -> bytes``; :data:`MESSAGE_TYPES` maps frame codes to classes. Field names
follow the trade terms (pile_code 桩编号, connector_no 枪号, trade_no 交易流水号…). Units:

* energy ``Decimal`` kWh (0.0001 kWh on the wire in 0x13/0x3B, 0.1 kWh in 0x17/0x19),
* money ``Decimal`` yuan — amounts 4 decimals, rates/unit prices 5, account balances 2,
* voltage/current ``Decimal`` V/A (0.1 steps; BMS currents include the −400 A offset),
* temperatures ``int`` °C (−50 offset already removed), SOC ``int`` % unless noted,
* times aware ``datetime`` in Asia/Shanghai (``None`` when the pile sent seven zero bytes),
* BCD numbers as digit strings, physical card numbers as 16 upper-case hex characters.

Decoding raises :class:`~protocols.ykc.errors.BadLength` when a body does not fit the layout
and :class:`~protocols.ykc.errors.BadField` for impossible values; encoding raises
:class:`~protocols.ykc.errors.EncodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from . import fields as f
from .billing import BILLING_MODEL, BillingModel
from .enums import (
    BalanceUpdateResult,
    BmsChargeMode,
    Carrier,
    ConnectorHomed,
    ConnectorStatus,
    GroundLockAction,
    GroundLockAlarm,
    GroundLockState,
    HardwareFault,
    NetworkType,
    ParallelRole,
    PileType,
    RebootWhen,
    RemoteStartFailure,
    RemoteStopFailure,
    StartAuthFailure,
    StartMode,
    StopReason,
    TariffPeriod,
    TradeType,
    UpdatePileModel,
    UpdateStatus,
)
from .errors import BadField, BadLength, EncodeError

__all__ = [
    "BalanceUpdate",
    "BalanceUpdateReply",
    "BillingModelReply",
    "BillingModelRequest",
    "BillingModelVerify",
    "BillingModelVerifyReply",
    "BmsAbort",
    "BmsDemandOutput",
    "BmsInfo",
    "CardClear",
    "CardClearReply",
    "CardClearResult",
    "CardQuery",
    "CardQueryReply",
    "CardQueryResult",
    "CardSync",
    "CardSyncReply",
    "ChargerAbort",
    "ChargingEnd",
    "ChargingHandshake",
    "EncryptedMessage",
    "ErrorReport",
    "GroundLockCommand",
    "GroundLockReply",
    "GroundLockStatus",
    "Heartbeat",
    "HeartbeatReply",
    "Login",
    "LoginReply",
    "MESSAGE_TYPES",
    "Message",
    "OfflineCard",
    "ParallelRemoteStart",
    "ParallelRemoteStartReply",
    "ParallelStartAuthReply",
    "ParallelStartRequest",
    "ParameterConfig",
    "PeriodUsage",
    "PileStartRequest",
    "REPLY_TYPES",
    "ReadRealtimeData",
    "RealtimeData",
    "Reboot",
    "RebootReply",
    "RemoteStart",
    "RemoteStartReply",
    "RemoteStop",
    "RemoteStopReply",
    "RemoteUpdate",
    "SetBillingModel",
    "SetBillingModelReply",
    "StartAuthReply",
    "TimeSync",
    "TimeSyncReply",
    "TransactionRecord",
    "TransactionRecordAck",
    "UnknownMessage",
    "UpdateReply",
    "WorkParams",
    "WorkParamsReply",
    "two_bit",
]

#: frame code → message class, filled by :func:`_message`.
MESSAGE_TYPES: dict[int, type[Message]] = {}

#: request frame code → the frame code that answers it (§3.1 "reply" column).
REPLY_TYPES: dict[int, int] = {
    0x01: 0x02, 0x03: 0x04, 0x05: 0x06, 0x09: 0x0A, 0x12: 0x13, 0x31: 0x32, 0x34: 0x33,
    0x36: 0x35, 0x3B: 0x40, 0x42: 0x41, 0x44: 0x43, 0x46: 0x45, 0x48: 0x47, 0x52: 0x51,
    0x56: 0x55, 0x58: 0x57, 0x62: 0x63, 0x92: 0x91, 0x94: 0x93, 0xA1: 0xA2, 0xA4: 0xA3,
}


class Message:
    """Base of all YKC messages. ``FRAME_TYPE`` is the frame-type byte; odd = pile→platform."""

    __slots__ = ()
    FRAME_TYPE: ClassVar[int]
    BODY_SIZE: ClassVar[int | None] = None
    _CODECS: ClassVar[tuple[f.Codec, ...]] = ()
    _PLAN: ClassVar[tuple[tuple[int, Any, int, str], ...]] = ()
    _NAMES: ClassVar[tuple[str, ...]] = ()
    _ENCODE_PLAN: ClassVar[tuple[tuple[f.Codec, tuple[str, ...]], ...]] = ()

    @property
    def frame_type(self) -> int:
        return self.FRAME_TYPE

    @property
    def upstream(self) -> bool:
        """True for pile→platform messages (odd codes)."""
        return bool(self.FRAME_TYPE & 1)

    @classmethod
    def decode_body(cls, body: bytes) -> Message:
        """Decode a message body (frame bytes 6 .. L+1). Raises BadLength / BadField."""
        return _decode_fixed(cls, body)

    def encode_body(self) -> bytes:
        """Encode the body. Raises :class:`EncodeError` for unencodable field values."""
        return _encode_fixed(self)


def _decode_fixed(cls: Any, body: bytes) -> Any:
    if len(body) != cls.BODY_SIZE:
        raise BadLength(
            f"0x{cls.FRAME_TYPE:02X} body is {len(body)} bytes, expected {cls.BODY_SIZE}",
            body, frame_type=cls.FRAME_TYPE)
    values: list[Any] = []
    append = values.append
    try:
        for offset, dec, arity, _name in cls._PLAN:
            if arity == 1:
                append(dec(body, offset))
            else:
                values.extend(dec(body, offset))
    except BadField as exc:
        raise BadField(f"0x{cls.FRAME_TYPE:02X} {_name}: {exc.reason}", exc.data, field=_name,
                       frame_type=cls.FRAME_TYPE) from None
    return cls(*values)


def _encode_fixed(message: Any) -> bytes:
    parts = []
    for codec, names in message._ENCODE_PLAN:
        if len(names) == 1:
            parts.append(codec.enc(names[0], getattr(message, names[0])))
        else:
            parts.append(codec.enc("+".join(names), tuple(getattr(message, n) for n in names)))
    return b"".join(parts)


def _message(frame_type: int, *codecs: f.Codec) -> Any:
    """Class decorator: make a frozen slotted dataclass, attach the wire layout, register it.

    ``codecs`` are in wire order and line up with the dataclass fields (a codec of arity 2
    takes two consecutive fields). Without codecs the class supplies its own decode/encode.
    """

    def wrap(cls: type) -> type:
        cls = dataclass(frozen=True, slots=True)(cls)
        cls.FRAME_TYPE = frame_type
        if codecs:
            names = [field.name for field in fields(cls)]
            if sum(c.arity for c in codecs) != len(names):
                raise TypeError(f"{cls.__name__}: layout does not match fields")
            plan, encode_plan, offset, index = [], [], 0, 0
            for codec in codecs:
                own = tuple(names[index:index + codec.arity])
                plan.append((offset, codec.dec, codec.arity, "+".join(own)))
                encode_plan.append((codec, own))
                offset += codec.size
                index += codec.arity
            cls._CODECS = codecs
            cls._PLAN = tuple(plan)
            cls._ENCODE_PLAN = tuple(encode_plan)
            cls._NAMES = tuple(names)
            cls.BODY_SIZE = offset
        if frame_type in MESSAGE_TYPES:
            raise TypeError(f"frame type 0x{frame_type:02X} registered twice")
        MESSAGE_TYPES[frame_type] = cls
        return cls

    return wrap


# ---------------------------------------------------------------- 0x01 … 0x0A login, heartbeat, tariff


@_message(0x01, f.PILE, f.enum(PileType), f.U8, f.U8, f.ascii_text(8), f.enum(NetworkType),
          f.bcd(10), f.enum(Carrier))
class Login(Message):
    """0x01 充电桩登录认证, pile→platform, body 30 bytes; answer with :class:`LoginReply`.

    ``protocol_version`` is the raw byte (version × 10): 0x0F = V1.5, 0x10 = V1.6 — both seen
    on V1.6 piles, any value decodes. ``sim`` is the 10-byte "BCD" ICCID as 20 hex digits
    (real piles put raw ICCID nibbles, A–F included). Unknown network/carrier codes stay ints.
    """

    pile_code: str
    pile_type: PileType | int
    connector_count: int
    protocol_version: int
    firmware_version: str
    network_type: NetworkType | int
    sim: str
    carrier: Carrier | int

    @property
    def protocol_version_text(self) -> str:
        """``"1.6"`` for 0x10, ``"1.5"`` for 0x0F."""
        return f"{self.protocol_version // 10}.{self.protocol_version % 10}"


@_message(0x02, f.PILE, f.inverted_boolean())
class LoginReply(Message):
    """0x02 登录认证应答, platform→pile, body 8 bytes. ``success`` ↔ wire 0x00 (fail 0x01)."""

    pile_code: str
    success: bool


@_message(0x03, f.PILE, f.GUN, f.BOOL)
class Heartbeat(Message):
    """0x03 充电桩心跳包, pile→platform every 10 s per connector, body 9 bytes.

    ``connector_fault``: 枪状态 0x00 normal → False, 0x01 fault → True.
    """

    pile_code: str
    connector_no: int
    connector_fault: bool


@_message(0x04, f.PILE, f.GUN, f.U8)
class HeartbeatReply(Message):
    """0x04 心跳包应答, platform→pile, body 9 bytes; ``ack`` is always 0."""

    pile_code: str
    connector_no: int
    ack: int = 0


@_message(0x05, f.PILE, f.MODEL_NO)
class BillingModelVerify(Message):
    """0x05 计费模型验证请求, pile→platform, body 9 bytes. ``billing_model_no`` is the
    4-digit BCD model number the pile holds (``"0000"`` on first connection)."""

    pile_code: str
    billing_model_no: str


@_message(0x06, f.PILE, f.MODEL_NO, f.BOOL)
class BillingModelVerifyReply(Message):
    """0x06 计费模型验证请求应答, platform→pile, body 10 bytes.

    ``model_differs``: 0x00 same → False; 0x01 differs → True (pile then sends 0x09).
    """

    pile_code: str
    billing_model_no: str
    model_differs: bool


@_message(0x09, f.PILE)
class BillingModelRequest(Message):
    """0x09 充电桩计费模型请求, pile→platform, body 7 bytes; answer with 0x0A."""

    pile_code: str


@_message(0x0A, f.PILE, BILLING_MODEL)
class BillingModelReply(Message):
    """0x0A 计费模型请求应答, platform→pile, body 90 bytes: pile code + :class:`BillingModel`
    (rates yuan/kWh 5 decimals, loss ratio, 48 half-hour slots)."""

    pile_code: str
    billing_model: BillingModel


# ---------------------------------------------------------------- 0x12 … 0x25 monitoring and BMS


@_message(0x12, f.PILE, f.GUN)
class ReadRealtimeData(Message):
    """0x12 读取实时监测数据, platform→pile, body 8 bytes; pile answers with 0x13."""

    pile_code: str
    connector_no: int


@_message(0x13, f.TRADE, f.PILE, f.GUN, f.enum(ConnectorStatus), f.enum(ConnectorHomed), f.BOOL,
          f.VOLT, f.AMP, f.TEMP, f.hex_bytes(8), f.U8, f.TEMP, f.U16, f.U16, f.KWH4, f.KWH4,
          f.YUAN4, f.flag_bits(HardwareFault, 2))
class RealtimeData(Message):
    """0x13 上传实时监测数据, pile→platform, body 60 bytes (every 15 s charging, 5 min idle).

    output_voltage V (0.1 V, bytes 27–28), output_current A (0.1 A, no offset, 29–30),
    cable_temperature/battery_max_temperature °C, cable_code 16 hex chars, soc %,
    charged_minutes/remaining_minutes min, energy/energy_with_loss kWh 4 decimals (46–49,
    50–53), amount yuan 4 decimals (54–57), hardware_faults :class:`HardwareFault` bits.
    ``trade_no`` is all zeros when not charging.
    """

    trade_no: str
    pile_code: str
    connector_no: int
    status: ConnectorStatus | int
    homed: ConnectorHomed | int
    plugged: bool
    output_voltage: Decimal
    output_current: Decimal
    cable_temperature: int
    cable_code: str
    soc: int
    battery_max_temperature: int
    charged_minutes: int
    remaining_minutes: int
    energy: Decimal
    energy_with_loss: Decimal
    amount: Decimal
    hardware_faults: HardwareFault


@_message(0x15, f.TRADE, f.PILE, f.GUN, f.hex_bytes(3), f.U8, f.scaled(2, 1), f.VOLT,
          f.ascii_text(4), f.U32, f.offset_int(1, 1985), f.U8, f.U8, f.uint(3), f.BOOL, f.U8,
          f.ascii_text(17), f.hex_bytes(8))
class ChargingHandshake(Message):
    """0x15 充电握手 (GB/T 27930 BRM), pile→platform, body 73 bytes.

    bms_protocol_version 3 raw bytes as hex; battery_type code (01 lead-acid … 03 LFP … 06 NCM,
    FF other); rated_capacity Ah (0.1); rated_voltage V (0.1); manufacture_year is the real
    year (wire + 1985); battery_owned: 产权标识 1 owned / 0 leased; vin in normal order;
    bms_software_version 8 raw bytes as hex.
    """

    trade_no: str
    pile_code: str
    connector_no: int
    bms_protocol_version: str
    battery_type: int
    rated_capacity: Decimal
    rated_voltage: Decimal
    battery_manufacturer: str
    battery_pack_serial: int
    manufacture_year: int
    manufacture_month: int
    manufacture_day: int
    charge_count: int
    battery_owned: bool
    reserved: int
    vin: str
    bms_software_version: str


@_message(0x17, f.TRADE, f.PILE, f.GUN, f.CELL_VOLT, f.AMP_BMS, f.scaled(2, 1), f.VOLT, f.TEMP,
          f.scaled(2, 1), f.VOLT, f.VOLT, f.VOLT, f.AMP_BMS, f.AMP_BMS)
class ParameterConfig(Message):
    """0x17 参数配置 (BCP/CML), pile→platform, body 45 bytes.

    Cell voltage V (0.01), currents A (0.1, −400 A offset), nominal_energy kWh (0.1),
    voltages V (0.1), max_temperature °C, soc % with one decimal (0.1 %).
    """

    trade_no: str
    pile_code: str
    connector_no: int
    max_cell_voltage: Decimal
    max_charge_current: Decimal
    nominal_energy: Decimal
    max_total_voltage: Decimal
    max_temperature: int
    soc: Decimal
    battery_voltage: Decimal
    charger_max_voltage: Decimal
    charger_min_voltage: Decimal
    charger_max_current: Decimal
    charger_min_current: Decimal


@_message(0x19, f.TRADE, f.PILE, f.GUN, f.U8, f.CELL_VOLT, f.CELL_VOLT, f.TEMP, f.TEMP, f.U16,
          f.scaled(2, 1), f.U32)
class ChargingEnd(Message):
    """0x19 充电结束 (BSD/CSD), pile→platform, body 39 bytes.

    final_soc %, cell voltages V (0.01), temperatures °C, charged_minutes min,
    energy kWh with 1 decimal (0.1 kWh), charger_no 电桩充电机编号.
    """

    trade_no: str
    pile_code: str
    connector_no: int
    final_soc: int
    min_cell_voltage: Decimal
    max_cell_voltage: Decimal
    min_temperature: int
    max_temperature: int
    charged_minutes: int
    energy: Decimal
    charger_no: int


def two_bit(value: int, index: int) -> int:
    """The ``index``-th 2-bit group of a GB/T 27930 bit field (bits 2i, 2i+1; §3.3):
    0 normal, 1 set (timeout/reached/fault), 2 untrusted, 3 unused."""
    return (value >> (2 * index)) & 0b11


@_message(0x1B, f.TRADE, f.PILE, f.GUN, f.U32, f.U32)
class ErrorReport(Message):
    """0x1B 错误报文 (BEM/CEM), pile→platform, body 32 bytes.

    ``bem_bits``/``cem_bits`` are body bytes 24–27 / 28–31 read as uint32 LE, so body byte 24
    is bits 0–7. Use :func:`two_bit` (e.g. ``two_bit(cem_bits, 0)`` = BRM timeout) per §3.3.
    """

    trade_no: str
    pile_code: str
    connector_no: int
    bem_bits: int
    cem_bits: int


@_message(0x1D, f.TRADE, f.PILE, f.GUN, f.U8, f.U16, f.U8)
class BmsAbort(Message):
    """0x1D 充电阶段BMS中止 (BST), pile→platform, body 28 bytes.

    reason_bits (byte 24), fault_bits (bytes 25–26, uint16 LE), error_bits (byte 27): 2-bit
    groups per §3.3, read them with :func:`two_bit`.
    """

    trade_no: str
    pile_code: str
    connector_no: int
    reason_bits: int
    fault_bits: int
    error_bits: int


@_message(0x21, f.TRADE, f.PILE, f.GUN, f.U8, f.U16, f.U8)
class ChargerAbort(Message):
    """0x21 充电阶段充电机中止 (CST), pile→platform, body 28 bytes; fields as :class:`BmsAbort`."""

    trade_no: str
    pile_code: str
    connector_no: int
    reason_bits: int
    fault_bits: int
    error_bits: int


@_message(0x23, f.TRADE, f.PILE, f.GUN, f.VOLT, f.AMP_BMS, f.enum(BmsChargeMode), f.VOLT,
          f.AMP_BMS, f.cell_voltage_and_group(), f.U8, f.U16, f.VOLT, f.AMP_BMS, f.U16)
class BmsDemandOutput(Message):
    """0x23 充电过程BMS需求与充电机输出 (BCL/BCS/CCS), pile→platform, body 44 bytes.

    Voltages V (0.1), currents A (0.1, −400 A offset), max_cell_voltage V (0.01, 12 bits) with
    max_cell_group (4 bits), soc %, remaining_minutes / charged_minutes min.
    """

    trade_no: str
    pile_code: str
    connector_no: int
    demand_voltage: Decimal
    demand_current: Decimal
    charge_mode: BmsChargeMode | int
    measured_voltage: Decimal
    measured_current: Decimal
    max_cell_voltage: Decimal
    max_cell_group: int
    soc: int
    remaining_minutes: int
    charger_voltage: Decimal
    charger_current: Decimal
    charged_minutes: int


@_message(0x25, f.TRADE, f.PILE, f.GUN, f.offset_int(1, 1), f.TEMP, f.offset_int(1, 1), f.TEMP,
          f.offset_int(1, 1), f.U16)
class BmsInfo(Message):
    """0x25 充电过程BMS信息 (BSM), pile→platform, body 31 bytes (packed layout).

    Cell/probe numbers are 1-based (wire + 1), temperatures °C. ``status_bits`` (uint16 LE):
    2-bit groups cell voltage, SOC, over-current, over-temperature, insulation, connector,
    charging permitted — see the properties.
    """

    trade_no: str
    pile_code: str
    connector_no: int
    max_cell_voltage_no: int
    max_temperature: int
    max_temperature_probe_no: int
    min_temperature: int
    min_temperature_probe_no: int
    status_bits: int

    @property
    def cell_voltage_state(self) -> int:
        """0 ok, 1 high, 2 low."""
        return two_bit(self.status_bits, 0)

    @property
    def soc_state(self) -> int:
        """0 ok, 1 high, 2 low."""
        return two_bit(self.status_bits, 1)

    @property
    def over_current(self) -> int:
        return two_bit(self.status_bits, 2)

    @property
    def over_temperature(self) -> int:
        return two_bit(self.status_bits, 3)

    @property
    def insulation(self) -> int:
        return two_bit(self.status_bits, 4)

    @property
    def connector_state(self) -> int:
        return two_bit(self.status_bits, 5)

    @property
    def charging_permitted(self) -> bool:
        """b12-13: 00 forbidden, 01 allowed."""
        return two_bit(self.status_bits, 6) == 1


# ---------------------------------------------------------------- 0x31 … 0x36 start / stop


def _vin_from_wire(body: bytes, offset: int) -> str:
    # 0x31/0xA1: with start mode VIN the 17 ASCII bytes arrive reversed (§2, VIN row).
    return body[offset:offset + 17][::-1].rstrip(b"\x00").decode("latin-1")


_VIN_AT = 34


@_message(0x31, f.PILE, f.GUN, f.enum(StartMode), f.BOOL, f.CARD, f.raw(16), f.ascii_text(17))
class PileStartRequest(Message):
    """0x31 充电桩主动申请启动充电 (card / VIN), pile→platform, body 51 bytes; answer 0x32.

    physical_card_no: 账号或物理卡号, 8 raw bytes as 16 hex chars; password_md5: 16 raw bytes;
    vin: in normal reading order — the wire carries it reversed when ``start_mode`` is VIN,
    this class undoes/redoes that.
    """

    pile_code: str
    connector_no: int
    start_mode: StartMode | int
    needs_password: bool
    physical_card_no: str
    password_md5: bytes
    vin: str

    @classmethod
    def decode_body(cls, body: bytes) -> Message:
        message = _decode_fixed(cls, body)
        if message.start_mode == StartMode.VIN:
            object.__setattr__(message, "vin", _vin_from_wire(body, _VIN_AT))
        return message

    def encode_body(self) -> bytes:
        data = _encode_fixed(self)
        if self.start_mode == StartMode.VIN:
            data = data[:_VIN_AT] + data[_VIN_AT:_VIN_AT + 17][::-1] + data[_VIN_AT + 17:]
        return data


@_message(0x32, f.TRADE, f.PILE, f.GUN, f.LOGICAL_CARD, f.BALANCE, f.BOOL, f.enum(StartAuthFailure))
class StartAuthReply(Message):
    """0x32 运营平台确认启动充电, platform→pile, body 38 bytes.

    balance yuan (0.01, bytes 32–35); authorized 鉴权成功标志 (0x01 success);
    failure_reason :class:`StartAuthFailure`. ``trade_no`` is the session's 交易流水号.
    """

    trade_no: str
    pile_code: str
    connector_no: int
    logical_card_no: str
    balance: Decimal
    authorized: bool
    failure_reason: StartAuthFailure | int


@_message(0x33, f.TRADE, f.PILE, f.GUN, f.BOOL, f.enum(RemoteStartFailure))
class RemoteStartReply(Message):
    """0x33 远程启动充电命令回复, pile→platform, body 26 bytes.

    started: 启动结果 0x01 success; failure_reason :class:`RemoteStartFailure`.
    """

    trade_no: str
    pile_code: str
    connector_no: int
    started: bool
    failure_reason: RemoteStartFailure | int


@_message(0x34, f.TRADE, f.PILE, f.GUN, f.LOGICAL_CARD, f.CARD, f.BALANCE)
class RemoteStart(Message):
    """0x34 运营平台远程控制启机, platform→pile, body 44 bytes; pile answers 0x33.

    logical_card_no 16 BCD digits, physical_card_no 16 hex chars, balance yuan (0.01).
    """

    trade_no: str
    pile_code: str
    connector_no: int
    logical_card_no: str
    physical_card_no: str
    balance: Decimal


@_message(0x35, f.PILE, f.GUN, f.BOOL, f.enum(RemoteStopFailure))
class RemoteStopReply(Message):
    """0x35 远程停机命令回复, pile→platform, body 10 bytes. stopped: 0x01 success."""

    pile_code: str
    connector_no: int
    stopped: bool
    failure_reason: RemoteStopFailure | int


@_message(0x36, f.PILE, f.GUN)
class RemoteStop(Message):
    """0x36 运营平台远程停机, platform→pile, body 8 bytes; pile answers 0x35."""

    pile_code: str
    connector_no: int


# ---------------------------------------------------------------- 0x3B / 0x40 transaction record


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    """One 尖峰平谷 group of a 0x3B record (16 bytes).

    unit_price yuan/kWh, 5 decimals (electricity + service); energy and energy_with_loss kWh,
    4 decimals; amount yuan, 4 decimals.
    """

    unit_price: Decimal
    energy: Decimal
    energy_with_loss: Decimal
    amount: Decimal


_RECORD_HEAD = 38
_RECORD_TAIL = 56
_PERIOD_SIZE = 16


@_message(0x3B)
class TransactionRecord(Message):
    """0x3B 交易记录, pile→platform, body 158 bytes (length 0xA2); answer 0x40 always.

    Body offsets for the standard 158-byte record (later fields move by 16 per extra group):

    * trade_no 0–15, pile_code 16–22, connector_no 23, start_time 24–30, end_time 31–37;
    * ``periods``: :class:`PeriodUsage` groups sharp, peak, flat, valley at 38, 54, 70, 86
      (unit_price yuan/kWh 5 decimals, energy / energy_with_loss kWh 4 decimals, amount yuan
      4 decimals); a record of length 0xB2 (body 174) carries a fifth group, ``periods[4]``;
    * meter_start 102–106 / meter_end 107–111 kWh 4 decimals (40-bit readings);
      total_energy 112–115, total_energy_with_loss 116–119 kWh 4 decimals;
      total_amount 120–123 yuan 4 decimals (消费金额, energy + service);
    * vin 124–140 (normal order), trade_type 141 (交易标识), trade_time 142–148,
      stop_reason 149 (§4.5), physical_card_no 150–157 (hex).

    Deduplicate on ``trade_no``: piles resend until acknowledged.
    """

    trade_no: str
    pile_code: str
    connector_no: int
    start_time: datetime | None
    end_time: datetime | None
    periods: tuple[PeriodUsage, ...]
    meter_start: Decimal
    meter_end: Decimal
    total_energy: Decimal
    total_energy_with_loss: Decimal
    total_amount: Decimal
    vin: str
    trade_type: TradeType | int
    trade_time: datetime | None
    stop_reason: StopReason | int
    physical_card_no: str

    BODY_SIZE: ClassVar[int | None] = 158

    @property
    def sharp(self) -> PeriodUsage:
        return self.periods[TariffPeriod.SHARP]

    @property
    def peak(self) -> PeriodUsage:
        return self.periods[TariffPeriod.PEAK]

    @property
    def flat(self) -> PeriodUsage:
        return self.periods[TariffPeriod.FLAT]

    @property
    def valley(self) -> PeriodUsage:
        return self.periods[TariffPeriod.VALLEY]

    @classmethod
    def decode_body(cls, body: bytes) -> Message:
        extra = len(body) - _RECORD_HEAD - _RECORD_TAIL - 4 * _PERIOD_SIZE
        if extra < 0 or extra % _PERIOD_SIZE:
            raise BadLength(f"0x3B body is {len(body)} bytes, expected 158 (+16 per extra "
                            "price group)", body, frame_type=0x3B)
        groups = 4 + extra // _PERIOD_SIZE
        rate, kwh, yuan = f.RATE.dec, f.KWH4.dec, f.YUAN4.dec
        periods = tuple(
            PeriodUsage(rate(body, off), kwh(body, off + 4), kwh(body, off + 8),
                        yuan(body, off + 12))
            for off in range(_RECORD_HEAD, _RECORD_HEAD + groups * _PERIOD_SIZE, _PERIOD_SIZE)
        )
        t = _RECORD_HEAD + groups * _PERIOD_SIZE
        field = "start_time"
        try:
            start_time = f.decode_cp56(body, 24)
            field = "end_time"
            end_time = f.decode_cp56(body, 31)
            field = "trade_time"
            trade_time = f.decode_cp56(body, t + 40)
        except BadField as exc:
            raise BadField(f"0x3B {field}: {exc.reason}", exc.data, field=field,
                           frame_type=0x3B) from None
        return cls(
            f.TRADE.dec(body, 0), f.PILE.dec(body, 16), f.GUN.dec(body, 23), start_time,
            end_time, periods, f.KWH5.dec(body, t), f.KWH5.dec(body, t + 5),
            kwh(body, t + 10), kwh(body, t + 14), yuan(body, t + 18),
            f.ascii_text(17).dec(body, t + 22), _TRADE_TYPE.dec(body, t + 39), trade_time,
            _STOP_REASON.dec(body, t + 47), f.CARD.dec(body, t + 48),
        )

    def encode_body(self) -> bytes:
        if not isinstance(self.periods, tuple | list) or len(self.periods) < 4:
            raise EncodeError("periods", self.periods, "expected at least 4 PeriodUsage groups")
        if len(self.periods) > 9:
            raise EncodeError("periods", self.periods, "too many groups for one frame")
        parts = [
            f.TRADE.enc("trade_no", self.trade_no), f.PILE.enc("pile_code", self.pile_code),
            f.GUN.enc("connector_no", self.connector_no),
            f.TIME.enc("start_time", self.start_time), f.TIME.enc("end_time", self.end_time),
        ]
        for index, group in enumerate(self.periods):
            if not isinstance(group, PeriodUsage):
                raise EncodeError(f"periods[{index}]", group, "expected a PeriodUsage")
            parts += [
                f.RATE.enc(f"periods[{index}].unit_price", group.unit_price),
                f.KWH4.enc(f"periods[{index}].energy", group.energy),
                f.KWH4.enc(f"periods[{index}].energy_with_loss", group.energy_with_loss),
                f.YUAN4.enc(f"periods[{index}].amount", group.amount),
            ]
        parts += [
            f.KWH5.enc("meter_start", self.meter_start), f.KWH5.enc("meter_end", self.meter_end),
            f.KWH4.enc("total_energy", self.total_energy),
            f.KWH4.enc("total_energy_with_loss", self.total_energy_with_loss),
            f.YUAN4.enc("total_amount", self.total_amount),
            f.ascii_text(17).enc("vin", self.vin), _TRADE_TYPE.enc("trade_type", self.trade_type),
            f.TIME.enc("trade_time", self.trade_time),
            _STOP_REASON.enc("stop_reason", self.stop_reason),
            f.CARD.enc("physical_card_no", self.physical_card_no),
        ]
        return b"".join(parts)


_TRADE_TYPE = f.enum(TradeType)
_STOP_REASON = f.enum(StopReason)


@_message(0x40, f.TRADE, f.inverted_boolean())
class TransactionRecordAck(Message):
    """0x40 交易记录确认, platform→pile, body 17 bytes. ``accepted`` ↔ wire 0x00; False sends
    0x01 "illegal bill". Acknowledges receipt only, not settlement."""

    trade_no: str
    accepted: bool


# ---------------------------------------------------------------- 0x41 … 0x48 balance and offline cards


@_message(0x41, f.PILE, f.CARD, f.enum(BalanceUpdateResult))
class BalanceUpdateReply(Message):
    """0x41 余额更新应答, pile→platform, body 16 bytes; result :class:`BalanceUpdateResult`."""

    pile_code: str
    physical_card_no: str
    result: BalanceUpdateResult | int


@_message(0x42, f.PILE, f.GUN, f.CARD, f.BALANCE)
class BalanceUpdate(Message):
    """0x42 远程账户余额更新, platform→pile, body 20 bytes. balance yuan (0.01);
    physical_card_no ``"0000000000000000"`` = don't check the card."""

    pile_code: str
    connector_no: int
    physical_card_no: str
    balance: Decimal


@_message(0x43, f.PILE, f.BOOL, f.U8)
class CardSyncReply(Message):
    """0x43 离线卡数据同步应答, pile→platform, body 9 bytes. saved: 0x01 ok; failure_reason
    0x01 bad card format, 0x02 storage full."""

    pile_code: str
    saved: bool
    failure_reason: int


@dataclass(frozen=True, slots=True)
class OfflineCard:
    """One 0x44 entry: logical card (16 BCD digits), physical card (16 hex chars)."""

    logical_card_no: str
    physical_card_no: str


@dataclass(frozen=True, slots=True)
class CardClearResult:
    """One 0x45 entry: physical card, cleared (清除标记 1 ok), failure_reason (0x01 format)."""

    physical_card_no: str
    cleared: bool
    failure_reason: int


@dataclass(frozen=True, slots=True)
class CardQueryResult:
    """One 0x47 entry: physical card, present (查询结果 1 present)."""

    physical_card_no: str
    present: bool


def _records(frame_type: int, body: bytes, start: int, size: int, count: int | None) -> range:
    """Offsets of ``size``-byte records from ``start``; checks the body length."""
    available = len(body) - start
    if available < 0 or available % size or (count is not None and available != count * size):
        expect = f"{start} + {size}×{count}" if count is not None else f"{start} + {size}×N"
        raise BadLength(f"0x{frame_type:02X} body is {len(body)} bytes, expected {expect}",
                        body, frame_type=frame_type)
    return range(start, len(body), size)


def _check_count(name: str, items: Any, limit: int) -> None:
    if not isinstance(items, tuple | list):
        raise EncodeError(name, items, "expected a tuple")
    if len(items) > limit:
        raise EncodeError(name, items, f"at most {limit} entries per frame")


def _header(frame_type: int, body: bytes) -> None:
    # 0x44/0x46/0x48 carry a count byte after the pile code, 0x45/0x47 do not.
    minimum = 7 if frame_type in (0x45, 0x47) else 8
    if len(body) < minimum:
        raise BadLength(f"0x{frame_type:02X} body too short ({len(body)} bytes)", body,
                        frame_type=frame_type)


@_message(0x44)
class CardSync(Message):
    """0x44 离线卡数据同步, platform→pile, variable body 8 + 16×N (N ≤ 15): whitelist of
    :class:`OfflineCard` (logical BCD 8 + physical BIN 8)."""

    pile_code: str
    cards: tuple[OfflineCard, ...]

    @classmethod
    def decode_body(cls, body: bytes) -> Message:
        _header(0x44, body)
        return cls(f.PILE.dec(body, 0), tuple(
            OfflineCard(f.LOGICAL_CARD.dec(body, off), f.CARD.dec(body, off + 8))
            for off in _records(0x44, body, 8, 16, body[7])))

    def encode_body(self) -> bytes:
        _check_count("cards", self.cards, 15)
        parts = [f.PILE.enc("pile_code", self.pile_code), bytes((len(self.cards),))]
        for card in self.cards:
            if not isinstance(card, OfflineCard):
                raise EncodeError("cards", card, "expected an OfflineCard")
            parts.append(f.LOGICAL_CARD.enc("logical_card_no", card.logical_card_no))
            parts.append(f.CARD.enc("physical_card_no", card.physical_card_no))
        return b"".join(parts)


@_message(0x45)
class CardClearReply(Message):
    """0x45 离线卡数据清除应答, pile→platform, variable body 7 + 10×N of
    :class:`CardClearResult` (no count byte)."""

    pile_code: str
    results: tuple[CardClearResult, ...]

    @classmethod
    def decode_body(cls, body: bytes) -> Message:
        _header(0x45, body)
        return cls(f.PILE.dec(body, 0), tuple(
            CardClearResult(f.CARD.dec(body, off), body[off + 8] != 0, body[off + 9])
            for off in _records(0x45, body, 7, 10, None)))

    def encode_body(self) -> bytes:
        _check_count("results", self.results, 24)
        parts = [f.PILE.enc("pile_code", self.pile_code)]
        for item in self.results:
            if not isinstance(item, CardClearResult):
                raise EncodeError("results", item, "expected a CardClearResult")
            parts += [f.CARD.enc("physical_card_no", item.physical_card_no),
                      f.BOOL.enc("cleared", item.cleared),
                      f.U8.enc("failure_reason", item.failure_reason)]
        return b"".join(parts)


def _decode_card_list(cls: Any, body: bytes) -> Any:
    _header(cls.FRAME_TYPE, body)
    return cls(f.PILE.dec(body, 0), tuple(
        f.CARD.dec(body, off) for off in _records(cls.FRAME_TYPE, body, 8, 8, body[7])))


def _encode_card_list(message: Any, limit: int) -> bytes:
    cards = message.physical_card_nos
    _check_count("physical_card_nos", cards, limit)
    return b"".join([f.PILE.enc("pile_code", message.pile_code), bytes((len(cards),)),
                     *(f.CARD.enc("physical_card_nos", card) for card in cards)])


@_message(0x46)
class CardClear(Message):
    """0x46 离线卡数据清除, platform→pile, variable body 8 + 8×N (N ≤ 24): physical cards."""

    pile_code: str
    physical_card_nos: tuple[str, ...]

    @classmethod
    def decode_body(cls, body: bytes) -> Message:
        return _decode_card_list(cls, body)

    def encode_body(self) -> bytes:
        return _encode_card_list(self, 24)


@_message(0x47)
class CardQueryReply(Message):
    """0x47 离线卡数据查询应答, pile→platform, variable body 7 + 9×N of
    :class:`CardQueryResult` (no count byte)."""

    pile_code: str
    results: tuple[CardQueryResult, ...]

    @classmethod
    def decode_body(cls, body: bytes) -> Message:
        _header(0x47, body)
        return cls(f.PILE.dec(body, 0), tuple(
            CardQueryResult(f.CARD.dec(body, off), body[off + 8] != 0)
            for off in _records(0x47, body, 7, 9, None)))

    def encode_body(self) -> bytes:
        _check_count("results", self.results, 26)
        parts = [f.PILE.enc("pile_code", self.pile_code)]
        for item in self.results:
            if not isinstance(item, CardQueryResult):
                raise EncodeError("results", item, "expected a CardQueryResult")
            parts += [f.CARD.enc("physical_card_no", item.physical_card_no),
                      f.BOOL.enc("present", item.present)]
        return b"".join(parts)


@_message(0x48)
class CardQuery(Message):
    """0x48 离线卡数据查询, platform→pile, variable body 8 + 8×N (N ≤ 26): physical cards."""

    pile_code: str
    physical_card_nos: tuple[str, ...]

    @classmethod
    def decode_body(cls, body: bytes) -> Message:
        return _decode_card_list(cls, body)

    def encode_body(self) -> bytes:
        return _encode_card_list(self, 26)


# ---------------------------------------------------------------- 0x51 … 0x58 settings, time, tariff push


@_message(0x51, f.PILE, f.BOOL)
class WorkParamsReply(Message):
    """0x51 充电桩工作参数设置应答, pile→platform, body 8 bytes. success: 0x01 ok."""

    pile_code: str
    success: bool


@_message(0x52, f.PILE, f.inverted_boolean(), f.U8)
class WorkParams(Message):
    """0x52 充电桩工作参数设置, platform→pile, body 9 bytes.

    enabled ↔ 是否允许工作 0x00 allow (0x01 disable/lock); max_power_percent % (doc 30–100,
    not enforced — JCPP sends 0xF0).
    """

    pile_code: str
    enabled: bool
    max_power_percent: int


@_message(0x55, f.PILE, f.TIME)
class TimeSyncReply(Message):
    """0x55 对时设置应答, pile→platform, body 14 bytes; current_time is the pile's clock."""

    pile_code: str
    current_time: datetime | None


@_message(0x56, f.PILE, f.TIME)
class TimeSync(Message):
    """0x56 对时设置, platform→pile, body 14 bytes; current_time (Beijing time, CP56Time2a)."""

    pile_code: str
    current_time: datetime | None


@_message(0x57, f.PILE, f.BOOL)
class SetBillingModelReply(Message):
    """0x57 计费模型应答, pile→platform, body 8 bytes. success: 0x01 ok."""

    pile_code: str
    success: bool


@_message(0x58, f.PILE, BILLING_MODEL)
class SetBillingModel(Message):
    """0x58 计费模型设置, platform→pile, body 90 bytes: pile code + :class:`BillingModel`."""

    pile_code: str
    billing_model: BillingModel


# ---------------------------------------------------------------- 0x61 … 0x63 ground lock


@_message(0x61, f.PILE, f.U8, f.enum(GroundLockState), f.flag_byte(0xFF), f.U8,
          f.enum(GroundLockAlarm), f.U32)
class GroundLockStatus(Message):
    """0x61 地锁数据上送, pile→platform, body 16 bytes. connector_no is BIN here;
    bay_occupied (0xFF occupied); lock_battery_percent %; reserved uint32 (0)."""

    pile_code: str
    connector_no: int
    lock_state: GroundLockState | int
    bay_occupied: bool
    lock_battery_percent: int
    alarm: GroundLockAlarm | int
    reserved: int = 0


@_message(0x62, f.PILE, f.U8, f.enum(GroundLockAction), f.U32)
class GroundLockCommand(Message):
    """0x62 遥控地锁升锁与降锁, platform→pile, body 13 bytes; action 0x55 raise / 0xFF lower."""

    pile_code: str
    connector_no: int
    action: GroundLockAction | int
    reserved: int = 0


@_message(0x63, f.PILE, f.U8, f.BOOL, f.U32)
class GroundLockReply(Message):
    """0x63 充电桩返回数据 (ground-lock result), pile→platform, body 13 bytes; success 1 ok."""

    pile_code: str
    connector_no: int
    success: bool
    reserved: int = 0


# ---------------------------------------------------------------- 0x91 … 0x94 reboot and update


@_message(0x91, f.PILE, f.BOOL)
class RebootReply(Message):
    """0x91 远程重启应答, pile→platform, body 8 bytes. success: 0x01 ok."""

    pile_code: str
    success: bool


@_message(0x92, f.PILE, f.enum(RebootWhen))
class Reboot(Message):
    """0x92 远程重启, platform→pile, body 8 bytes; when 0x01 now / 0x02 when idle."""

    pile_code: str
    when: RebootWhen | int


@_message(0x93, f.PILE, f.enum(UpdateStatus))
class UpdateReply(Message):
    """0x93 远程更新应答, pile→platform, body 8 bytes; status :class:`UpdateStatus`."""

    pile_code: str
    status: UpdateStatus | int


@_message(0x94, f.PILE, f.enum(UpdatePileModel), f.U16, f.ascii_text(16), f.U16,
          f.ascii_text(16), f.ascii_text(16), f.ascii_text(32), f.enum(RebootWhen), f.U8)
class RemoteUpdate(Message):
    """0x94 远程更新 (FTP), platform→pile, body 94 bytes.

    pile_model 0x01 DC / 0x02 AC, power_kw kW, server_address/username/password/file_path
    NUL-padded ASCII (16/16/16/32), server_port, when, download_timeout_minutes min.
    """

    pile_code: str
    pile_model: UpdatePileModel | int
    power_kw: int
    server_address: str
    server_port: int
    username: str
    password: str
    file_path: str
    when: RebootWhen | int
    download_timeout_minutes: int


# ---------------------------------------------------------------- 0xA1 … 0xA4 parallel (dual-gun) charging


@_message(0xA1, f.PILE, f.GUN, f.enum(StartMode), f.BOOL, f.CARD, f.raw(16), f.ascii_text(17),
          f.enum(ParallelRole), f.PARALLEL_NO)
class ParallelStartRequest(Message):
    """0xA1 充电桩主动申请并充充电, pile→platform, body 58 bytes; answer 0xA2.

    As :class:`PileStartRequest` (VIN reversed on the wire for VIN starts) plus role 主辅枪标记
    and parallel_no 并充序号 (12 BCD digits, YYMMDDhhmmss, same for all guns of the session).
    """

    pile_code: str
    connector_no: int
    start_mode: StartMode | int
    needs_password: bool
    physical_card_no: str
    password_md5: bytes
    vin: str
    role: ParallelRole | int
    parallel_no: str

    @classmethod
    def decode_body(cls, body: bytes) -> Message:
        message = _decode_fixed(cls, body)
        if message.start_mode == StartMode.VIN:
            object.__setattr__(message, "vin", _vin_from_wire(body, _VIN_AT))
        return message

    def encode_body(self) -> bytes:
        data = _encode_fixed(self)
        if self.start_mode == StartMode.VIN:
            data = data[:_VIN_AT] + data[_VIN_AT:_VIN_AT + 17][::-1] + data[_VIN_AT + 17:]
        return data


@_message(0xA2, f.TRADE, f.PILE, f.GUN, f.LOGICAL_CARD, f.BALANCE, f.BOOL,
          f.enum(StartAuthFailure), f.PARALLEL_NO)
class ParallelStartAuthReply(Message):
    """0xA2 运营平台确认并充启动充电, platform→pile, body 44 bytes: :class:`StartAuthReply`
    fields plus parallel_no (from 0xA1)."""

    trade_no: str
    pile_code: str
    connector_no: int
    logical_card_no: str
    balance: Decimal
    authorized: bool
    failure_reason: StartAuthFailure | int
    parallel_no: str


@_message(0xA3, f.TRADE, f.PILE, f.GUN, f.BOOL, f.enum(RemoteStartFailure),
          f.enum(ParallelRole), f.PARALLEL_NO)
class ParallelRemoteStartReply(Message):
    """0xA3 远程并充启机命令回复, pile→platform, body 33 bytes: :class:`RemoteStartReply`
    fields plus role and parallel_no (from 0xA4)."""

    trade_no: str
    pile_code: str
    connector_no: int
    started: bool
    failure_reason: RemoteStartFailure | int
    role: ParallelRole | int
    parallel_no: str


@_message(0xA4, f.TRADE, f.PILE, f.GUN, f.LOGICAL_CARD, f.CARD, f.BALANCE, f.PARALLEL_NO)
class ParallelRemoteStart(Message):
    """0xA4 运营平台远程控制并充启机, platform→pile, body 50 bytes: :class:`RemoteStart`
    fields plus parallel_no (platform generated, 12 BCD digits)."""

    trade_no: str
    pile_code: str
    connector_no: int
    logical_card_no: str
    physical_card_no: str
    balance: Decimal
    parallel_no: str


# ---------------------------------------------------------------- not decodable as a known type


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A frame whose type code this codec does not know (vendor extensions such as 0xF0
    QR-prefix push, 0x5A, 0x1F). ``body`` is the raw body; log and ignore, don't disconnect."""

    frame_type: int
    body: bytes

    upstream = property(lambda self: bool(self.frame_type & 1))

    def encode_body(self) -> bytes:
        return bytes(self.body)


@dataclass(frozen=True, slots=True)
class EncryptedMessage:
    """A frame with encryption flag 0x01 (3DES over the body, no key exchange in V1.6):
    ``body`` is the ciphertext, not decoded."""

    frame_type: int
    body: bytes

    upstream = property(lambda self: bool(self.frame_type & 1))

    def encode_body(self) -> bytes:
        return bytes(self.body)
