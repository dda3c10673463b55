"""Code tables of YKC V1.6 (reference §4).

Decoders return a member of these enums when the wire value is known, and the plain ``int``
otherwise (vendors add codes; the reference asks to tolerate them). Every enum is an
``IntEnum``/``IntFlag``, so comparisons with ints work either way.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class PileType(IntEnum):
    """0x01 桩类型."""

    DC = 0x00
    AC = 0x01


class NetworkType(IntEnum):
    """0x01 网络链接类型 per the PDF (RT-Thread firmware shifts these by one)."""

    SIM = 0x00
    LAN = 0x01
    WAN = 0x02
    OTHER = 0x03


class Carrier(IntEnum):
    """0x01 运营商 (there is no 0x01)."""

    CHINA_MOBILE = 0x00
    CHINA_TELECOM = 0x02
    CHINA_UNICOM = 0x03
    OTHER = 0x04


class ConnectorStatus(IntEnum):
    """0x13 状态."""

    OFFLINE = 0x00
    FAULT = 0x01
    IDLE = 0x02
    CHARGING = 0x03


class ConnectorHomed(IntEnum):
    """0x13 枪是否归位."""

    NO = 0x00
    YES = 0x01
    UNKNOWN = 0x02


class HardwareFault(IntFlag):
    """0x13 硬件故障, uint16 LE; doc "Bit n" is ``1 << (n - 1)``."""

    EMERGENCY_STOP = 1 << 0
    NO_RECTIFIER_MODULE = 1 << 1
    AIR_OUTLET_OVER_TEMPERATURE = 1 << 2
    AC_SURGE_PROTECTOR = 1 << 3
    DC20_COMMS_LOST = 1 << 4
    FC08_COMMS_LOST = 1 << 5
    METER_COMMS_LOST = 1 << 6
    CARD_READER_COMMS_LOST = 1 << 7
    RC10_COMMS_LOST = 1 << 8
    FAN_BOARD = 1 << 9
    DC_FUSE = 1 << 10
    HV_CONTACTOR = 1 << 11
    DOOR_OPEN = 1 << 12


class StartMode(IntEnum):
    """0x31/0xA1 启动方式."""

    CARD = 0x01
    ACCOUNT = 0x02
    VIN = 0x03


class StartAuthFailure(IntEnum):
    """0x32/0xA2 失败原因 (§4.3)."""

    NONE = 0x00
    ACCOUNT_NOT_FOUND = 0x01
    ACCOUNT_FROZEN = 0x02
    INSUFFICIENT_BALANCE = 0x03
    CARD_UNSETTLED_BILL = 0x04
    PILE_DISABLED = 0x05
    ACCOUNT_NOT_ALLOWED_HERE = 0x06
    WRONG_PASSWORD = 0x07
    STATION_CAPACITY_INSUFFICIENT = 0x08
    VIN_UNKNOWN = 0x09
    PILE_UNSETTLED_BILL = 0x0A
    CARD_START_UNSUPPORTED = 0x0B


class RemoteStartFailure(IntEnum):
    """0x33/0xA3 失败原因 (§4.4)."""

    NONE = 0x00
    PILE_MISMATCH = 0x01
    CONNECTOR_ALREADY_CHARGING = 0x02
    DEVICE_FAULT = 0x03
    DEVICE_OFFLINE = 0x04
    NOT_PLUGGED = 0x05


class RemoteStopFailure(IntEnum):
    """0x35 失败原因 (§4.4)."""

    NONE = 0x00
    PILE_MISMATCH = 0x01
    NOT_CHARGING = 0x02
    OTHER = 0x03


class BalanceUpdateResult(IntEnum):
    """0x41 修改结果."""

    OK = 0x00
    PILE_MISMATCH = 0x01
    CARD_MISMATCH = 0x02


class TradeType(IntEnum):
    """0x3B 交易标识 (how the session was started)."""

    APP = 0x01
    CARD = 0x02
    OFFLINE_CARD = 0x04
    VIN = 0x05


class StopReason(IntEnum):
    """0x3B 停止原因 (§4.5); the named subset, other 0x40..0x90 values stay ints."""

    APP_STOP = 0x40
    SOC_FULL = 0x41
    ENERGY_TARGET_REACHED = 0x42
    AMOUNT_TARGET_REACHED = 0x43
    TIME_TARGET_REACHED = 0x44
    MANUAL_STOP = 0x45
    START_FAILED_CONTROL_SYSTEM_FAULT = 0x4A
    START_FAILED_PILOT_DISCONNECTED = 0x4B
    START_FAILED_BREAKER_TRIPPED = 0x4C
    START_FAILED_METER_COMMS_LOST = 0x4D
    START_FAILED_INSUFFICIENT_BALANCE = 0x4E
    START_FAILED_MODULE_FAULT = 0x4F
    START_FAILED_EMERGENCY_STOP = 0x50
    START_FAILED_BMS_NOT_READY = 0x52
    START_FAILED_INSULATION = 0x57
    ABNORMAL_PILOT_DISCONNECTED = 0x6B
    ABNORMAL_INSUFFICIENT_BALANCE = 0x6E
    ABNORMAL_EMERGENCY_STOP = 0x72
    ABNORMAL_OUTPUT = 0x75
    ABNORMAL_NO_CURRENT = 0x76
    ABNORMAL_ELECTRONIC_LOCK = 0x77
    ABNORMAL_PILE_POWER_LOST = 0x83
    UNKNOWN = 0x90

    @property
    def is_normal_completion(self) -> bool:
        """True for 0x40–0x49 (charging completed), per §4.5."""
        return 0x40 <= self <= 0x49


class TariffPeriod(IntEnum):
    """尖峰平谷 period ids used in 0x0A/0x58 slots and 0x3B groups (§3.4)."""

    SHARP = 0x00
    PEAK = 0x01
    FLAT = 0x02
    VALLEY = 0x03


class RebootWhen(IntEnum):
    """0x92/0x94 执行控制."""

    NOW = 0x01
    WHEN_IDLE = 0x02


class UpdateStatus(IntEnum):
    """0x93 升级状态."""

    OK = 0x00
    PILE_MISMATCH = 0x01
    MODEL_MISMATCH = 0x02
    DOWNLOAD_TIMEOUT = 0x03


class UpdatePileModel(IntEnum):
    """0x94 桩型号 (differs from login's 桩类型)."""

    DC = 0x01
    AC = 0x02


class ParallelRole(IntEnum):
    """0xA1/0xA3 主辅枪标记."""

    MAIN = 0x00
    AUX = 0x01


class GroundLockState(IntEnum):
    """0x61 车位锁状态."""

    MOVING = 0x00
    RAISED = 0x55
    LOWERED = 0xFF


class GroundLockAction(IntEnum):
    """0x62 升/降地锁."""

    RAISE = 0x55
    LOWER = 0xFF


class GroundLockAlarm(IntEnum):
    """0x61 报警状态."""

    NONE = 0x00
    LIFT_FAULT = 0x55
    ARM_DAMAGED = 0xFF


class BmsChargeMode(IntEnum):
    """0x23 BMS充电模式."""

    CONSTANT_VOLTAGE = 0x01
    CONSTANT_CURRENT = 0x02
