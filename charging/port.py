"""The protocol-neutral port between pile gateways (YKC, OCPP) and the domain.

Data only: gateways turn protocol messages into the *events* and *queries* below and hand
them to ``charging.handlers.dispatch`` (the domain's handlers, beside it); the domain sends
*commands* to piles through ``charging.bus`` (a Redis command bus that reaches whichever
gateway process holds the pile). Nothing here knows a protocol and nothing here imports
the project: each protocol maps its own codes to these enums at its edge. Units are real
units (kWh 4 dp, yuan 2 dp, V, A, kW, %, aware UTC datetimes), connectors are numbered
from 1, trade numbers are the pile's 32-digit transaction numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

# --- neutral vocabulary ----------------------------------------------------------------


class ConnectorStatus(StrEnum):
    """A connector's state as the platform shows it (``stations.Connector.Status``)."""

    OFFLINE = "offline"
    FAULT = "fault"
    IDLE = "idle"
    PLUGGED = "plugged"
    CHARGING = "charging"
    FINISHING = "finishing"
    RESERVED = "reserved"


class StopReason(StrEnum):
    """Why a session ended, in the platform's words (``charging.StopReason``)."""

    DRIVER = "driver"
    FULL = "full"
    AT_PILE = "at_pile"
    BALANCE = "balance"
    UNPLUGGED = "unplugged"
    EMERGENCY = "emergency"
    FAULT = "fault"
    PLATFORM = "platform"
    UNKNOWN = "unknown"


class StartRefusal(StrEnum):
    """Why the platform refuses a start (the API's error codes for the same rules)."""

    CREDENTIAL_UNKNOWN = "credential_unknown"  # no enabled card / VIN bound to a member
    MEMBER_DISABLED = "member_disabled"
    ORDER_IN_PROGRESS = "order_in_progress"
    STATION_CLOSED = "station_closed"
    PILE_DISABLED = "pile_disabled"
    PILE_OFFLINE = "pile_offline"
    CONNECTOR_UNKNOWN = "connector_unknown"
    CONNECTOR_FAULT = "connector_fault"
    CONNECTOR_NOT_PLUGGED = "connector_not_plugged"
    CONNECTOR_RESERVED = "connector_reserved"
    CONNECTOR_BUSY = "connector_busy"
    TARIFF_MISSING = "tariff_missing"
    INSUFFICIENT_BALANCE = "insufficient_balance"


class StopRefusal(StrEnum):
    """Why a pile refused a remote stop."""

    NOT_CHARGING = "not_charging"  # no session runs on the connector
    OTHER = "other"


class FaultSeverity(StrEnum):
    """How bad a pile's fault is: ``critical`` stops charging or is unsafe, ``major`` needs
    a technician, ``minor`` degrades the pile but it may still charge."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"


class FaultCode(StrEnum):
    """A pile's fault in the platform's words. YKC 0x13 硬件故障 bits and OCPP
    StatusNotification ``errorCode`` map to these at each protocol's edge (``OTHER`` for
    anything unlisted, the protocol's own code kept opaque beside it)."""

    EMERGENCY_STOP = "emergency_stop"
    POWER_MODULE = "power_module"
    OVER_TEMPERATURE = "over_temperature"
    SURGE_PROTECTOR = "surge_protector"
    INTERNAL_COMMS = "internal_comms"
    METER = "meter"
    CARD_READER = "card_reader"
    FAN = "fan"
    FUSE = "fuse"
    CONTACTOR = "contactor"
    DOOR_OPEN = "door_open"
    CONNECTOR_LOCK = "connector_lock"
    EV_COMMUNICATION = "ev_communication"
    GROUND = "ground"
    OVER_CURRENT = "over_current"
    OVER_VOLTAGE = "over_voltage"
    UNDER_VOLTAGE = "under_voltage"
    WEAK_SIGNAL = "weak_signal"
    CONNECTOR = "connector"  # the connector reports "fault" and names no cause
    OTHER = "other"


class LoginRefusal(StrEnum):
    """Why a pile may not log in (``tenants.RefusedPileLogin.Reason``)."""

    UNKNOWN = "unknown"
    NOT_IN_ESTATE = "not_in_estate"
    PILE_DISABLED = "pile_disabled"
    OPERATOR_SUSPENDED = "operator_suspended"
    WRONG_PROTOCOL = "wrong_protocol"  # the pile is registered for another protocol
    BAD_PASSWORD = "bad_password"  # OCPP security profile 1: missing or wrong password
    ICCID_MISMATCH = "iccid_mismatch"  # the SIM differs from the one the pile is bound to
    ADDRESS_NOT_ALLOWED = "address_refused"  # outside the station's source networks
    TAKEOVER = "takeover"  # another connection holds the pile (the gateway decides)


# --- pile presence: gateway → domain ----------------------------------------------------


@dataclass(frozen=True)
class PileLogin:
    """A pile logs in (YKC 0x01, OCPP WebSocket handshake and BootNotification). Dispatched
    without a schema: the public pile registry names the operator. ``protocol`` ("ykc",
    "ocpp"; empty: not checked) must be the pile's; ``password`` is what the pile presented
    (OCPP HTTP Basic; None: the protocol has none), checked against the pile's stored hash
    when it has one. ``iccid`` None: not reported at this step (the OCPP handshake; the
    BootNotification after it reports it), so not checked. Answered with
    :class:`LoginDecision`."""

    pile_code: str
    peer: str
    at: datetime
    firmware_version: str = ""
    iccid: str | None = ""
    protocol: str = ""
    password: str | None = None


@dataclass(frozen=True)
class LoginDecision:
    """Answer to :class:`PileLogin`: accepted with the operator's ``schema``, the pile's
    heartbeat interval (s) and its connectors' statuses, or refused with ``refusal``."""

    accepted: bool
    refusal: LoginRefusal | None = None
    schema: str = ""
    heartbeat_interval_s: int = 10
    connectors: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PileLogins:
    """Many piles log in at once (a login storm): the :class:`PileLogin` of each, decided
    together (a fixed number of statements for all of them). Dispatched without a schema;
    answered with a tuple of :class:`LoginDecision`, one per login in ``logins``' order."""

    logins: tuple[PileLogin, ...]


@dataclass(frozen=True)
class PileTakeoverRefused:
    """The gateway refused a login for ``pile_code`` from ``peer`` (host:port) because a
    live connection from ``holder_peer`` holds the pile. Dispatched with the operator's
    schema; the domain records it (refused logins, an alarm on the pile)."""

    pile_code: str
    peer: str
    holder_peer: str
    at: datetime


@dataclass(frozen=True)
class PileOnline:
    """A logged-in pile is online from ``at``."""

    pile_code: str
    at: datetime


@dataclass(frozen=True)
class PilesOnline:
    """Many logged-in piles of one operator are online, each heard from at its ``at`` (a
    login storm: the piles a gateway logged in within a moment; or the gateway's periodic
    "still online" marks of all its piles, gathered for a moment): the :class:`PileOnline`
    of each, marked together in a fixed number of statements. Dispatched with the
    operator's schema; answered with the codes that came back online (they were offline)."""

    marks: tuple[PileOnline, ...]


@dataclass(frozen=True)
class PileOffline:
    """The pile's connection closed at ``at`` (no newer connection holds it)."""

    pile_code: str
    at: datetime


@dataclass(frozen=True)
class PilesOffline:
    """Many piles' connections of one operator closed (a storm: the links a gateway saw
    close within a moment): the :class:`PileOffline` of each, marked together in a fixed
    number of statements, each as alone. Dispatched with the operator's schema; answered
    with the codes marked offline (sorted; a pile a newer frame shows back is not)."""

    marks: tuple[PileOffline, ...]


@dataclass(frozen=True)
class ConnectorStatusChanged:
    """A connector's status changed (YKC 0x13, OCPP StatusNotification)."""

    pile_code: str
    connector_no: int
    status: ConnectorStatus
    at: datetime


@dataclass(frozen=True)
class ActiveFault:
    """One fault a pile reports as present; ``protocol_code`` is the protocol's own code
    (e.g. YKC ``"bit 1"``, OCPP ``"GroundFailure"``), opaque, for staff."""

    code: FaultCode
    severity: FaultSeverity
    protocol_code: str = ""


@dataclass(frozen=True)
class FaultsReported:
    """Every fault connector ``connector_no`` of a pile reports now (YKC 0x13 硬件故障 and
    状态 故障, OCPP StatusNotification errorCode). The whole set, not a change: faults no
    longer listed have cleared, and an empty ``faults`` means healthy. Gateways send it when
    the set changes and again at an interval while it is not empty."""

    pile_code: str
    connector_no: int
    faults: tuple[ActiveFault, ...]
    at: datetime


# --- tariffs: gateway → domain (query) ------------------------------------------------


@dataclass(frozen=True)
class PileTariffQuery:
    """Which tariff pile ``pile_code`` applies on its local date ``on_date`` (None: the
    pile's local today, the version in force now). Answered with a :class:`TariffDay`, or
    None when the pile is unknown or has no tariff in force (YKC 0x09/0x58 billing model,
    OCPP tariff display)."""

    pile_code: str
    on_date: date | None = None


@dataclass(frozen=True)
class TariffDay:
    """A pile's tariff for one local day, in neutral terms.

    ``version_number`` changes with every published tariff version (YKC sends it as the
    计费模型编号); ``prices`` maps each priced period (sharp, peak, flat, valley) to
    (electricity, service) yuan/kWh with 5 decimals; ``slots`` is the period of each
    half hour from local 00:00 (48 names); ``loss_ratio`` the loss allowance in % (0).
    """

    version_number: int
    prices: dict[str, tuple[Decimal, Decimal]]
    slots: tuple[str, ...]
    loss_ratio: int = 0

    def price_at(self, slot: int) -> tuple[Decimal, Decimal]:
        """(electricity, service) yuan/kWh of half hour ``slot`` (0 = 00:00–00:30)."""
        return self.prices[self.slots[slot]]


class TariffMissing(StrEnum):
    """Why a pile has no :class:`TariffDay`."""

    PILE_UNKNOWN = "pile_unknown"  # no pile with that code in the operator's estate
    NO_TARIFF = "no_tariff"  # neither the pile nor its station has a tariff in force


class TariffUnavailable(LookupError):
    """Raised by :meth:`PileTariffs.day` for a pile without a tariff day: ``pile_code`` and
    ``reason`` (a :class:`TariffMissing`) say which and why."""

    def __init__(self, pile_code: str, reason: TariffMissing):
        self.pile_code = pile_code
        self.reason = reason
        super().__init__(f"pile {pile_code!r} has no tariff: {reason.value}")


@dataclass(frozen=True)
class PileTariffsQuery:
    """The tariff day of many piles at once, at the aware instant ``at`` (None: now): for
    each pile its local date at ``at`` and the version in force at ``at`` (the batch form of
    :class:`PileTariffQuery`, for keeping piles' copies of their tariff in step).

    ``pile_codes`` None means every pile of the operator; ``protocol`` ("ykc", "ocpp"; ""
    any) keeps only the piles that speak it. Answered with :class:`PileTariffs`, in a fixed
    number of queries whatever the number of piles.
    """

    pile_codes: tuple[str, ...] | None = None
    protocol: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class PileTariff:
    """One pile's answer in :class:`PileTariffs`: ``pile_id`` is the domain's key of the pile
    (what a protocol's own records reference), ``on_date`` the pile's local date at the
    query's instant, ``day`` its tariff that day, or None with ``missing`` saying why."""

    pile_code: str
    pile_id: int
    on_date: date
    day: TariffDay | None
    missing: TariffMissing | None = None


@dataclass(frozen=True)
class PileTariffs:
    """Answer to :class:`PileTariffsQuery`: ``piles`` maps each pile code found to its
    :class:`PileTariff`; ``unknown`` lists the asked codes that name no pile (sorted)."""

    piles: dict[str, PileTariff]
    unknown: tuple[str, ...] = ()

    def day(self, pile_code: str) -> TariffDay:
        """The pile's tariff day; raises :class:`TariffUnavailable` (``PILE_UNKNOWN`` or
        ``NO_TARIFF``) when there is none."""
        entry = self.piles.get(pile_code)
        if entry is None:
            raise TariffUnavailable(pile_code, TariffMissing.PILE_UNKNOWN)
        if entry.day is None:
            raise TariffUnavailable(pile_code, entry.missing or TariffMissing.NO_TARIFF)
        return entry.day


# --- domain → gateway notices -----------------------------------------------------------


@dataclass(frozen=True)
class TariffsChanged:
    """The tariff of some piles may have changed (a version published or withdrawn, an
    assignment, the periodic refresh): protocols that keep a copy on the pile re-read it.
    ``pile_codes`` None means every pile of the operator; ``at`` the aware instant to
    evaluate. Delivered inside the writing transaction, in the operator's schema, to the
    listeners registered with ``charging.handlers.listen``; each returns how many of its
    records changed (an int)."""

    pile_codes: tuple[str, ...] | None
    at: datetime


# --- staff tooling around the gateways (admin, CLI): queries ---------------------------


@dataclass(frozen=True)
class PileInfo:
    """A pile as protocol tooling lists it: ``pile_id`` the domain's key (the admin's pile
    page), ``rated_power_kw`` the pile's total kW."""

    pile_code: str
    pile_id: int
    name: str
    protocol: str
    enabled: bool
    connector_count: int
    rated_power_kw: Decimal


@dataclass(frozen=True)
class PilesQuery:
    """Piles of the operator, sorted by code: only ``pile_codes`` when given, only those
    speaking ``protocol`` when not "", only enabled ones with ``enabled_only``. Answered with
    a tuple of :class:`PileInfo`."""

    pile_codes: tuple[str, ...] | None = None
    protocol: str = ""
    enabled_only: bool = False


@dataclass(frozen=True)
class VisiblePilesQuery:
    """The piles staff ``user`` may see in the admin (station owners: their stations' piles).
    ``user`` is the request's user, passed through opaque. Answered with
    :class:`VisiblePiles`."""

    user: Any


@dataclass(frozen=True)
class VisiblePiles:
    """``sees_all`` (operator admins: no filtering needed) and the visible piles by code."""

    sees_all: bool
    piles: tuple[PileInfo, ...]


@dataclass(frozen=True)
class OperatorQuery:
    """The schema of the operator with ``slug`` (dispatch it without a schema). Answered
    with the schema name, or None for no such (active) operator."""

    slug: str


# --- charging sessions: gateway → domain -----------------------------------------------


@dataclass(frozen=True)
class StartResult:
    """The pile's answer to a remote start (YKC 0x33, OCPP RemoteStartTransaction.conf +
    StartTransaction)."""

    pile_code: str
    connector_no: int
    trade_no: str
    accepted: bool
    # The protocol's own failure code, kept opaque for staff (the domain never reads it).
    protocol_code: int | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class StopResult:
    """The pile's answer to a remote stop (YKC 0x35): accepted, or refused with
    ``refusal`` (``NOT_CHARGING``: no session runs there, so nothing is left to stop)."""

    pile_code: str
    connector_no: int
    accepted: bool
    refusal: StopRefusal | None = None
    protocol_code: int | None = None  # opaque, as in StartResult
    at: datetime | None = None


@dataclass(frozen=True)
class Progress:
    """Live readings of a connector (YKC 0x13, OCPP MeterValues/StatusNotification).

    The reading fields are None when the protocol did not carry them. ``sample`` asks the
    domain to keep this reading as a :class:`charging.MeterSample` (the gateway samples each
    connector at an interval and on every status change); ``fault_code`` is the protocol's
    fault bits as text, for staff.
    """

    pile_code: str
    connector_no: int
    status: ConnectorStatus
    at: datetime
    trade_no: str | None = None
    plugged: bool | None = None
    energy_kwh: Decimal | None = None
    amount_yuan: Decimal | None = None
    power_kw: Decimal | None = None
    voltage_v: Decimal | None = None
    current_a: Decimal | None = None
    soc_percent: int | None = None
    elapsed_min: int | None = None
    remaining_min: int | None = None
    fault_code: str | None = None
    sample: bool = False


@dataclass(frozen=True)
class ProgressBatch:
    """Many connectors' live readings at once (the batch form of :class:`Progress`, for a
    gateway that queued several piles' readings): the domain applies each as it applies a
    :class:`Progress`, in the order given (a connector's readings in time order), in a
    fixed number of statements whatever their number. A reading naming no order, or one
    the database refuses, is skipped without losing the others. Answered with the number
    of readings applied to an order (int)."""

    readings: tuple[Progress, ...]


@dataclass(frozen=True)
class ConnectorReports:
    """What many connectors of one operator report at once (a storm: the first real-time
    data of the piles logged in within a moment; YKC 0x13): their status changes, fault
    sets and live readings, each applied as its own event would be — the statuses first,
    then the fault sets, then the readings, each kind in the order given (a connector's in
    time order) — in a fixed number of statements whatever their number. Dispatched with
    the operator's schema; answered with the number of readings applied to an order
    (int)."""

    statuses: tuple[ConnectorStatusChanged, ...] = ()
    faults: tuple[FaultsReported, ...] = ()
    readings: tuple[Progress, ...] = ()


@dataclass(frozen=True)
class ReadingsSampled:
    """Readings a gateway chose to keep (each connector at its interval and on every status
    change), batched: the domain stores them as meter samples."""

    readings: tuple[Progress, ...]


@dataclass(frozen=True)
class TransactionRecord:
    """The pile's final record of one session (YKC 0x3B, OCPP StopTransaction).

    ``energy_by_period`` / ``amount_by_period`` map period names (sharp, peak, flat,
    valley) to kWh (4 dp) / yuan (2 dp) when the pile splits its session by tariff period
    (empty: the domain prices the session from its meter timeline); groups a pile sends
    beyond those four (a non-standard record with a fifth price group) are named ``group5``
    … ``group9`` in the order received: the pile's own buckets, which no tariff of ours
    prices. ``pile_amount_yuan`` is None when the pile does not price sessions (OCPP), so
    nothing is compared with it; ``stop_reason`` is the protocol's stop code mapped at its
    edge, ``protocol_stop_code`` that code itself (opaque, for staff); ``raw_hex`` is the
    whole frame as received.

    ``pile_tariff_version`` is the tariff version number the pile last confirmed holding
    from us (YKC: the 计费模型编号 delivered in 0x0A or accepted in 0x58/0x57; a number a
    pile merely claims in 0x05 does not count), None when it never confirmed one;
    ``pile_tariff_since`` the aware instant since which it has held that version unchanged
    (None: unknown). The per-period buckets are the platform's periods only when that
    version is the order's and was held before the session began.
    """

    pile_code: str
    connector_no: int
    trade_no: str
    started_at: datetime
    stopped_at: datetime
    meter_start_kwh: Decimal
    meter_stop_kwh: Decimal
    energy_kwh: Decimal
    pile_amount_yuan: Decimal | None
    stop_reason: StopReason
    protocol_stop_code: int | None = None
    energy_by_period: dict[str, Decimal] = field(default_factory=dict)
    amount_by_period: dict[str, Decimal] = field(default_factory=dict)
    vin: str = ""
    card_no: str = ""
    raw_hex: str = ""
    pile_tariff_version: int | None = None
    pile_tariff_since: datetime | None = None


@dataclass(frozen=True)
class RecordReviewQuery:
    """Staff tooling (the frame log beside a 0x3B): how the domain judged the record with
    ``trade_no``. Answered with :class:`RecordReview`, or None when no record was stored."""

    trade_no: str


@dataclass(frozen=True)
class RecordReview:
    """Answer to :class:`RecordReviewQuery`: the order the record belongs to (``order_id``
    None before settlement), its ``state``, ``review_reason`` (why staff must look, "" for
    nothing) and ``billed_by_time_because`` (why the pile's buckets were not used, "")."""

    order_id: int | None
    order_number: str
    state: str
    review_reason: str
    billed_by_time_because: str


EXTRA_GROUPS = tuple(f"group{n}" for n in range(5, 10))
"""Names of a record's price groups beyond sharp, peak, flat and valley (the 5th … 9th)."""


@dataclass(frozen=True)
class CardStartRequest:
    """A pile asks to start for a card or VIN (YKC 0x31, OCPP Authorize)."""

    pile_code: str
    connector_no: int
    start_mode: str  # "card" or "vin"
    card_no: str = ""
    vin: str = ""
    password: str = ""


@dataclass(frozen=True)
class CredentialQuery:
    """May this card / tag start on pile ``pile_code``? (OCPP Authorize: a check only, the
    start comes later with its connector.) Answered with a :class:`CredentialDecision`."""

    pile_code: str
    card_no: str


# --- replies the gateway needs before answering the pile -------------------------------


@dataclass(frozen=True)
class CredentialDecision:
    """Answer to a CredentialQuery: accepted, or refused with ``refusal``
    (credential_unknown, member_disabled, order_in_progress)."""

    accepted: bool
    refusal: StartRefusal | None = None


@dataclass(frozen=True)
class RecordAck:
    """Answer to a TransactionRecord: the record is durably stored (ack the pile)."""

    stored: bool
    duplicate: bool = False


@dataclass(frozen=True)
class CardStartDecision:
    """Answer to a CardStartRequest: accepted with the order's trade number, the member's
    logical card number and the funds held (yuan), or refused with ``refusal``."""

    accepted: bool
    trade_no: str = ""
    card_no: str = ""
    balance_yuan: Decimal = Decimal("0.00")
    refusal: StartRefusal | None = None


# --- commands: domain → gateway --------------------------------------------------------


@dataclass(frozen=True)
class RemoteStart:
    """Start charging (YKC 0x34). ``balance_yuan`` lets the pile stop itself at zero."""

    pile_code: str
    connector_no: int
    trade_no: str
    balance_yuan: Decimal
    logical_card_no: str = ""
    physical_card_no: str = ""


@dataclass(frozen=True)
class RemoteStop:
    """Stop charging (YKC 0x36, OCPP RemoteStopTransaction). ``trade_no`` names the session
    to stop: YKC's 0x36 carries none, so the gateway refuses (``session_mismatch``) when the
    pile's latest readings show another session on the connector; OCPP sends it as the
    transactionId."""

    pile_code: str
    connector_no: int
    trade_no: str = ""


@dataclass(frozen=True)
class BalanceUpdate:
    """Tell the pile the account's new balance (YKC 0x42)."""

    pile_code: str
    connector_no: int
    balance_yuan: Decimal
    card_no: str = ""


@dataclass(frozen=True)
class ReadRealtime:
    """Ask the pile for a fresh real-time data frame (YKC 0x12 → 0x13)."""

    pile_code: str
    connector_no: int


@dataclass(frozen=True)
class PowerLimit:
    """The one power command to a pile, for both its users (YKC 0x52 工作参数设置: 是否允许
    工作 + 最大允许输出功率 in percent of the rating; OCPP SetChargingProfile, a
    ChargePointMaxProfile on connector 0, and ChangeAvailability on connector 0 when
    ``enabled`` is given):

    - load management caps the pile in kW: ``max_power_kw`` with the pile's
      ``rated_power_kw`` (YKC caps in percent of it, rounded down);
    - remote control (:func:`PowerLimit.percent_of_rating`) caps it at ``percent`` (30–100)
      of its rating and allows (``enabled=True``) or forbids (``False``: no cap is sent on
      OCPP) charging on it.

    ``enabled=None`` leaves the pile's availability alone (YKC's 0x52 then says "allowed").
    A cap the protocol cannot honour (below 30 % on YKC, below the least current on OCPP, a
    percent outside 30–100, neither kW nor percent) answers ``CommandResult(ok=False,
    error="invalid")``; ``ok`` carries ``detail["applied_kw"]``, the cap the pile actually
    took (never above the one asked), when the rating is known."""

    pile_code: str
    max_power_kw: Decimal | None = None
    rated_power_kw: Decimal | None = None
    connector_no: int = 0  # 0: the whole pile
    percent: int | None = None
    enabled: bool | None = None

    @classmethod
    def percent_of_rating(cls, pile_code: str, percent: int = 100, *, enabled: bool = True,
                          rated_power_kw: Decimal | None = None) -> PowerLimit:
        """Remote control's power cap: ``percent`` of the pile's rating (kW, when known:
        the reply then gives ``applied_kw``), charging allowed or forbidden (formerly the
        separate ``PowerCap`` command)."""
        return cls(pile_code, rated_power_kw=rated_power_kw, percent=percent, enabled=enabled)

    def cap_kw(self, rated_power_kw: Decimal | None = None) -> Decimal | None:
        """The cap in kW: ``max_power_kw``, else ``percent`` of the rating (this command's
        or ``rated_power_kw``); None when neither is known."""
        if self.max_power_kw is not None:
            return self.max_power_kw
        rated = self.rated_power_kw if self.rated_power_kw is not None else rated_power_kw
        if self.percent is None or rated is None:
            return None
        return rated * self.percent / 100


@dataclass(frozen=True)
class Reboot:
    """Restart the pile (YKC 0x92, OCPP Reset): ``when_idle`` waits for running sessions to
    end (YKC 执行控制 2, OCPP Soft), else now (YKC 1, OCPP Hard)."""

    pile_code: str
    when_idle: bool = True


@dataclass(frozen=True)
class TimeSync:
    """Set the pile's clock to the platform's (YKC 0x56; reply ``detail["pile_time"]``).
    OCPP 1.6 has no such call (the pile takes the time from BootNotification and Heartbeat
    replies): ``unsupported``."""

    pile_code: str


@dataclass(frozen=True)
class PushTariff:
    """Send the pile the tariff in force for it now (YKC 0x58 计费模型; reply
    ``detail["model_no"]``). OCPP piles do not price (the platform does): ``unsupported``."""

    pile_code: str


@dataclass(frozen=True)
class FirmwareUpdate:
    """Have the pile download and install firmware from ``url`` (hosted by the platform).
    OCPP: UpdateFirmware (location, retrieveDate now, ``retries``); progress comes as
    FirmwareStatusNotification. YKC 0x94 远程更新 takes an FTP server: ``url`` is
    ``ftp://user:password@host:port/path`` (host ≤ 16, user and password ≤ 16, path ≤ 32
    ASCII bytes), ``pile_model`` 1 DC / 2 AC, ``power_kw`` the rating, ``when_idle`` 执行控制,
    ``download_timeout_min`` minutes; the pile answers 0x93 (then or when it is done).
    A URL the protocol cannot carry: ``CommandResult(ok=False, error="invalid")``."""

    pile_code: str
    url: str
    when_idle: bool = True
    retries: int = 1
    download_timeout_min: int = 30
    pile_model: int = 1
    power_kw: int = 0


@dataclass(frozen=True)
class FirmwareStatus:
    """The pile reports firmware progress: ``status`` a ``stations.FirmwareUpdate.Status``
    value (OCPP FirmwareStatusNotification, YKC 0x93 升级状态 mapped by the gateway),
    ``detail`` the protocol's own words or code."""

    pile_code: str
    status: str
    at: datetime
    detail: str = ""


@dataclass(frozen=True)
class CommandResult:
    """What the gateway answered: ``ok`` with the reply's fields, or an error code
    (``pile_offline``, ``timeout``, ``refused``, ``unsupported``, ``session_mismatch``). A
    refused stop carries its :class:`StopRefusal` as ``detail["refusal"]``;
    ``detail["reason_code"]`` is the protocol's own code (opaque, for staff)."""

    ok: bool
    error: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


COMMANDS = {cls.__name__: cls for cls in (RemoteStart, RemoteStop, BalanceUpdate, ReadRealtime,
                                          PowerLimit, Reboot, TimeSync, PushTariff,
                                          FirmwareUpdate)}


def command_to_dict(command) -> dict:
    data = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(command).items()}
    return {"type": type(command).__name__, "fields": data}


def command_from_dict(data: dict):
    """Rebuild a command; raises KeyError/TypeError on an unknown or malformed one."""
    fields = dict(data["fields"])
    if data["type"] == "PowerCap":  # queued by a platform from before PowerLimit took it over
        return PowerLimit.percent_of_rating(fields["pile_code"], fields.get("percent", 100),
                                            enabled=fields.get("enabled", True))
    cls = COMMANDS[data["type"]]
    for name in ("balance_yuan", "max_power_kw", "rated_power_kw"):
        if fields.get(name) is not None:
            fields[name] = Decimal(fields[name])
    return cls(**fields)


# --- interconnection (T/CEC platforms): protocol → domain queries and requests ---------
# A partner platform's drivers charge on the operator's piles: the CEC server asks for the
# operator's stations and starts, stops and follows partner orders through these; the
# domain creates partner orders through the same order-creation path as the app's.


@dataclass(frozen=True)
class ConnectorView:
    """One connector as partners see it: ``connector_type`` is the CEC ConnectorType code
    (the platform stores that code), power kW, voltage V, current A."""

    connector_no: int
    name: str
    status: ConnectorStatus
    connector_type: int
    power_kw: Decimal
    voltage_v: int
    current_a: int
    status_changed_at: datetime | None = None


@dataclass(frozen=True)
class PileView:
    """One pile: ``current_type`` is the CEC EquipmentType code (1 DC, 2 AC, 3 both)."""

    code: str
    name: str
    current_type: int
    power_kw: Decimal
    vendor: str
    model: str
    online: bool
    connectors: tuple[ConnectorView, ...]


@dataclass(frozen=True)
class StationView:
    """One station as partners see it: ``station_type`` / ``status`` are the CEC
    StationType / StationStatus codes (the platform stores those), coordinates GCJ-02."""

    id: int
    code: str
    name: str
    address: str
    area_code: str
    latitude: Decimal | None
    longitude: Decimal | None
    station_type: int
    status: int
    phone: str
    opening_hours: str
    parking_fee_note: str
    time_zone: str
    updated_at: datetime
    piles: tuple[PileView, ...]


@dataclass(frozen=True)
class StationsQuery:
    """The operator's stations, with piles and connectors, by id (``station_ids`` None:
    all), changed since ``changed_since`` if given. Answered with ``tuple[StationView]``
    ordered by id."""

    station_ids: tuple[int, ...] | None = None
    changed_since: datetime | None = None


@dataclass(frozen=True)
class OrderDetail:
    """One priced part of an order: kWh 4 dp, prices yuan/kWh, money yuan 2 dp."""

    start: datetime
    end: datetime
    energy_kwh: Decimal
    electricity_price: Decimal
    service_price: Decimal
    electricity_yuan: Decimal
    service_yuan: Decimal


@dataclass(frozen=True)
class OrderView:
    """An order as a partner or regulator sees it. ``state`` is the order state's value
    (created, starting, charging, stopping, finished, settled, failed...); money yuan,
    energy kWh; the live readings are the latest the pile sent."""

    id: int
    number: str
    partner: str
    partner_seq: str
    station_id: int
    pile_code: str
    connector_no: int
    connector_status: ConnectorStatus
    state: str
    stop_reason: StopReason | None
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    settled_at: datetime | None
    energy_kwh: Decimal
    electricity_yuan: Decimal
    service_yuan: Decimal
    total_yuan: Decimal
    voltage_v: Decimal | None = None
    current_a: Decimal | None = None
    soc_percent: int | None = None
    details: tuple[OrderDetail, ...] = ()


@dataclass(frozen=True)
class PartnerStart:
    """A partner platform asks to start charging on ``pile_code``/``connector_no`` for its
    order ``partner_seq``; the pile may spend up to ``credit_yuan``. Answered with
    :class:`PartnerOrderReply` (a repeated ``partner_seq`` returns the first order)."""

    partner: str
    partner_seq: str
    pile_code: str
    connector_no: int
    credit_yuan: Decimal


@dataclass(frozen=True)
class PartnerStop:
    """A partner platform asks to stop its order ``partner_seq``. Answered with
    :class:`PartnerOrderReply`."""

    partner: str
    partner_seq: str


@dataclass(frozen=True)
class PartnerOrderReply:
    """The order (None when there is none), or why it was refused: a
    :class:`StartRefusal` value, ``order_unknown``, ``not_charging``, ``seq_reused``."""

    order: OrderView | None
    refusal: str = ""


@dataclass(frozen=True)
class OrdersQuery:
    """Orders by id (``order_ids``), or of partner ``partner`` (empty: every order) by
    ``partner_seq``, or settled in [``settled_from``, ``settled_to``), or still active
    (``active``). Answered with ``tuple[OrderView]`` ordered by id."""

    order_ids: tuple[int, ...] | None = None
    partner: str = ""
    partner_seq: str = ""
    settled_from: datetime | None = None
    settled_to: datetime | None = None
    active: bool = False


@dataclass(frozen=True)
class PartnerBalanceQuery:
    """What partner ``partner`` (OperatorID) owes the operator for its drivers' orders.
    Answered with yuan (Decimal, 2 dp; 0 when nothing)."""

    partner: str


# --- interconnection, the other way: our members charge on partners' piles -------------
# The CEC client pulls an infrastructure partner's stations and hands them to the domain;
# the partner's notifications about our member's order arrive as the events below; the
# domain asks the protocol to start and stop through Celery tasks named in
# ``charging.roaming`` (``cec.roaming_start``, ``cec.roaming_stop``).


@dataclass(frozen=True)
class PartnerConnectorInfo:
    """One connector of a partner station: ``connector_type`` the CEC ConnectorType code,
    power kW, ``status`` in the platform's words."""

    connector_id: str
    equipment_id: str
    connector_type: int
    power_kw: Decimal
    status: ConnectorStatus


@dataclass(frozen=True)
class PartnerStationInfo:
    """One station of a partner (GCJ-02 degrees; ``status`` the CEC StationStatus code;
    ``price_note`` the partner's own price text)."""

    station_id: str
    name: str
    address: str
    latitude: Decimal | None
    longitude: Decimal | None
    status: int
    price_note: str
    opening_hours: str
    phone: str
    connectors: tuple[PartnerConnectorInfo, ...]


@dataclass(frozen=True)
class PartnerStationsPulled:
    """Everything infrastructure partner ``partner`` (OperatorID) publishes now: its stations
    replace what we showed of it (an empty tuple removes them all). ``our_operator_id`` is
    ours at that partner. Answered with the number of stations kept."""

    partner: str
    partner_name: str
    our_operator_id: str
    stations: tuple[PartnerStationInfo, ...]
    at: datetime


@dataclass(frozen=True)
class PartnerConnectorChanged:
    """A partner's connector changed status (its ``notification_stationStatus``). Answered
    with True, or False when the connector is unknown."""

    partner: str
    connector_id: str
    status: ConnectorStatus
    at: datetime


@dataclass(frozen=True)
class RoamingOrderView:
    """Our member's order on a partner's pile as the protocol needs it: ``seq`` our
    StartChargeSeq (27 characters), ``state`` the order state's value (starting, charging,
    stopping, finished, settled, failed), money yuan 2 dp, energy kWh."""

    id: int
    number: str
    partner: str
    seq: str
    connector_id: str
    state: str
    created_at: datetime
    energy_kwh: Decimal
    total_yuan: Decimal
    settled_at: datetime | None = None
    stop_requested_at: datetime | None = None
    last_heard_at: datetime | None = None  # the partner's latest figures (else the start)


@dataclass(frozen=True)
class RoamingOrdersQuery:
    """Roaming orders by id (``order_ids``), or of ``partner`` settled in [``settled_from``,
    ``settled_to``), or still running (``active``: starting, charging, stopping). Answered
    with ``tuple[RoamingOrderView]`` ordered by id."""

    order_ids: tuple[int, ...] | None = None
    partner: str = ""
    settled_from: datetime | None = None
    settled_to: datetime | None = None
    active: bool = False


@dataclass(frozen=True)
class RoamingStarted:
    """The partner's answer to our start (``query_start_charge``, or later its
    ``notification_start_charge_result``): ``accepted`` or not, with its FailReason
    (``fail_reason`` -1: the partner could not be reached). Answered with True when the
    order is ours (``partner`` + ``seq``), else False."""

    partner: str
    seq: str
    accepted: bool
    charging: bool = False  # the partner says it is already charging (StartChargeSeqStat 2)
    fail_reason: int = 0
    at: datetime | None = None


@dataclass(frozen=True)
class RoamingProgress:
    """The partner's ChargeStatus for our order (``notification_equip_charge_status``, or
    our ``query_equip_charge_status``): energy kWh, money yuan so far. ``ended`` when its
    StartChargeSeqStat says the session is over. Answered with True when known."""

    partner: str
    seq: str
    at: datetime
    energy_kwh: Decimal
    electricity_yuan: Decimal
    service_yuan: Decimal
    total_yuan: Decimal
    soc_percent: int | None = None
    ended: bool = False


@dataclass(frozen=True)
class RoamingStopped:
    """The partner's answer to our stop (``query_stop_charge`` or
    ``notification_stop_charge_result``): ``accepted`` (stopping or stopped) or refused
    with its FailReason (3: already stopped). Answered with True when known."""

    partner: str
    seq: str
    accepted: bool
    fail_reason: int = 0
    at: datetime | None = None


@dataclass(frozen=True)
class RoamingBillLine:
    """One line of a partner's final order (a CEC ``ChargeDetails`` entry), as the partner
    has it: from and to (aware, ``None`` if the partner sent none), kWh, the electricity and
    service prices (yuan/kWh, up to 4 dp) and amounts (yuan, 2 dp)."""

    start: datetime | None
    end: datetime | None
    energy_kwh: Decimal
    electricity_price: Decimal
    service_price: Decimal
    electricity_yuan: Decimal
    service_yuan: Decimal


@dataclass(frozen=True)
class RoamingBill:
    """The partner's final order (``notification_charge_order_info``): kWh, yuan, the
    StopReason code, its lines (:class:`RoamingBillLine`, shown to the member) and the bill
    as received (kept on the order). Answered with :class:`RoamingBillResult`."""

    partner: str
    seq: str
    started_at: datetime | None
    stopped_at: datetime | None
    energy_kwh: Decimal
    electricity_yuan: Decimal
    service_yuan: Decimal
    total_yuan: Decimal
    stop_reason: int
    raw: dict[str, Any] = field(default_factory=dict)
    lines: tuple[RoamingBillLine, ...] = ()


@dataclass(frozen=True)
class RoamingBillResult:
    """``confirmed`` (billed now or before, never twice), or not with ``dispute`` ("unknown":
    no such order of ours; "changed": billed before with other figures)."""

    confirmed: bool
    dispute: str = ""


@dataclass(frozen=True)
class RoamingCheckLine:
    """One order in a partner's reconciliation (``check_charge_orders``): its
    StartChargeSeq, kWh and yuan as the partner has them."""

    seq: str
    energy_kwh: Decimal
    total_yuan: Decimal


@dataclass(frozen=True)
class RoamingReconcile:
    """Infrastructure partner ``partner``'s day of our members' orders. Answered with
    ``tuple[RoamingDispute]``: the lines we disagree with (empty: all agree)."""

    partner: str
    lines: tuple[RoamingCheckLine, ...]


@dataclass(frozen=True)
class RoamingDispute:
    """A line we disagree with, and why (the CEC DisputeReason: 1 no such order, 2 money
    differs, 3 energy differs)."""

    line: RoamingCheckLine
    reason: int
