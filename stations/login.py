"""A pile logs in (any protocol): the public registry routes its code to an operator and
the operator's pile; refusals are counted in the public ``RefusedPileLogin`` list.

Pile codes are no secret and YKC carries no credential, so a login must also come from the
pile's SIM (ICCID bound on first login; a different one is refused until staff change the
pile's ICCID) and, when its station lists source networks, from one of them. A refused
ICCID and a refused takeover (decided by the gateway, which knows the live connection)
raise an alarm on the pile (an open ``Fault``, source platform).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.hashers import check_password
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils.translation import gettext
from django_tenants.utils import get_public_schema_name, schema_context

from tenants.models import Operator, PileRegistration, RefusedPileLogin

from .models import Connector, Fault, Pile, Station, networks_parse

ALARM_ICCID = "iccid_mismatch"
ALARM_TAKEOVER = "takeover_refused"


@dataclass
class LoginOutcome:
    """Whether a pile may log in; ``reason`` is a ``RefusedPileLogin.Reason`` value."""

    accepted: bool
    reason: str = ""
    schema: str = ""
    heartbeat_interval_s: int = 10
    connectors: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoginAttempt:
    """One pile logging in, as :func:`pile_login` takes it (one of :func:`piles_login`'s)."""

    pile_code: str
    peer: str
    firmware_version: str
    iccid: str | None
    at: datetime
    protocol: str = ""
    password: str | None = None


def pile_login(*, pile_code: str, peer: str, firmware_version: str, iccid: str | None,
               at: datetime, protocol: str = "", password: str | None = None) -> LoginOutcome:
    """Route a logging-in pile through the public registry to its operator and pile.

    Refused: code not registered (``unknown``), operator suspended, pile absent from the
    operator's estate (``not_in_estate``) or disabled, a pile of another ``protocol`` (when
    given, ``wrong_protocol``), a missing or wrong ``password`` when the pile has an OCPP
    password (``bad_password``), ``peer`` outside the station's ``pile_networks``
    (``address_refused``), or an ICCID other than the one bound to the pile
    (``iccid_mismatch``, with an alarm on the pile; not checked when ``iccid`` is None, a
    login step that carries none: the OCPP handshake) — each refusal is recorded in the
    public ``RefusedPileLogin`` list. Accepted: the firmware is refreshed; a pile with no
    ICCID yet is bound to the one it reports (an all-zero ICCID is none).

    Two SQL statements (registry + operator; pile + connectors with schema-qualified
    tables): a gateway restart makes every pile log in at once, so this is the hot path
    (and :func:`piles_login` its batch).
    """
    return piles_login(attempts=[LoginAttempt(
        pile_code=pile_code, peer=peer, firmware_version=firmware_version, iccid=iccid, at=at,
        protocol=protocol, password=password)])[0]


def piles_login(*, attempts: list[LoginAttempt]) -> list[LoginOutcome]:
    """:func:`pile_login` for many piles at once (a login storm: every pile of a gateway
    reconnecting), one outcome per attempt in their order, each decided by the same rules.

    One SQL statement for the registry and operators of all of them and one per operator
    for its piles and connectors, whatever their number; then only what an outcome writes
    (a changed firmware or a first ICCID, a refusal, an alarm), pile by pile. The same pile
    twice gets two outcomes of the same rows. Database errors propagate (nothing is
    written for the attempts after the failing one).
    """
    Reason = RefusedPileLogin.Reason
    quote = connection.ops.quote_name
    codes = list(dict.fromkeys(a.pile_code for a in attempts))
    piles: dict[str, tuple] = {}
    with schema_context(get_public_schema_name()), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.code, o.id, o.schema_name, o.status"
            f" FROM {quote(PileRegistration._meta.db_table)} r"
            f" JOIN {quote(Operator._meta.db_table)} o ON o.id = r.operator_id"
            " WHERE r.code = ANY(%s)", [codes])
        routes = {code: (pk, schema_name, status) for code, pk, schema_name, status
                  in cursor.fetchall()}
        by_schema: dict[str, list[str]] = {}
        for code, (_pk, schema_name, status) in routes.items():
            if status == Operator.Status.ACTIVE:
                by_schema.setdefault(schema_name, []).append(code)
        for schema_name, some in by_schema.items():
            schema = quote(schema_name)
            cursor.execute(
                "SELECT p.code, p.id, p.enabled, p.heartbeat_interval_s, p.firmware_version,"
                " p.iccid, p.protocol, p.ocpp_password,"
                " coalesce(json_object_agg(c.number, c.status) FILTER (WHERE c.id IS NOT NULL),"
                f" '{{}}'), s.pile_networks FROM {schema}.{quote(Pile._meta.db_table)} p"
                f" JOIN {schema}.{quote(Station._meta.db_table)} s ON s.id = p.station_id"
                f" LEFT JOIN {schema}.{quote(Connector._meta.db_table)} c ON c.pile_id = p.id"
                " WHERE p.code = ANY(%s) GROUP BY p.id, s.pile_networks", [some])
            for found in cursor.fetchall():
                piles[found[0]] = found[1:]
    return [_login_decide(a, routes.get(a.pile_code), piles.get(a.pile_code), Reason)
            for a in attempts]


def _login_decide(attempt: LoginAttempt, row: tuple | None, pile: tuple | None,
                  Reason) -> LoginOutcome:
    """One attempt's outcome from its registry ``row`` (operator id, schema, status) and
    its ``pile`` row (None: not in the estate); writes what the outcome needs."""
    pile_code, peer, at = attempt.pile_code, attempt.peer, attempt.at
    firmware_version, iccid = attempt.firmware_version, attempt.iccid
    password, protocol = attempt.password, attempt.protocol
    if row is None:
        reason = Reason.UNKNOWN
    elif row[2] != Operator.Status.ACTIVE:
        reason = Reason.OPERATOR_SUSPENDED
    elif pile is None:
        reason = Reason.NOT_IN_ESTATE
    elif not pile[1]:
        reason = Reason.PILE_DISABLED
    elif protocol and pile[5] != protocol:
        reason = Reason.WRONG_PROTOCOL
    elif pile[6] and not (password is not None and check_password(password, pile[6])):
        reason = Reason.BAD_PASSWORD
    elif not peer_allowed(peer, pile[8]):
        reason = Reason.ADDRESS_NOT_ALLOWED
    elif iccid is not None and _sim(pile[4]) and _sim(iccid) != _sim(pile[4]):
        reason = Reason.ICCID_MISMATCH
        with schema_context(row[1]):
            pile_alarm(pile_id=pile[0], code=ALARM_ICCID, at=at, description=gettext(
                "Login from %(peer)s with SIM ICCID %(iccid)s refused; the pile's is %(bound)s.")
                % {"peer": peer, "iccid": _sim(iccid) or "-", "bound": _sim(pile[4])})
    else:
        pk, _enabled, heartbeat_s, old_firmware, old_iccid, _protocol, _hash, connectors, _networks = pile
        changed = {}
        if firmware_version and old_firmware != firmware_version[:50]:
            changed["firmware_version"] = firmware_version[:50]
        if _sim(iccid) and not _sim(old_iccid):  # trust on first login
            changed["iccid"] = _sim(iccid)
        if changed:
            with schema_context(row[1]):
                Pile.objects.filter(pk=pk).update(**changed)
        if isinstance(connectors, str):
            connectors = json.loads(connectors)
        return LoginOutcome(True, "", row[1], heartbeat_s or 10,
                            {int(no): status for no, status in connectors.items()})
    operator = Operator.objects.filter(pk=row[0]).first() if row is not None else None
    refused_login_record(pile_code=pile_code, reason=reason, operator=operator, peer=peer,
                         firmware_version=firmware_version, at=at)
    return LoginOutcome(False, reason)


def _sim(iccid: str) -> str:
    """An ICCID as bound (22 characters at most); all zeros or blank: none."""
    iccid = (iccid or "").strip()[:22]
    return iccid if iccid.strip("0") else ""


def peer_host(peer: str) -> str:
    """``10.0.0.5`` from ``10.0.0.5:4001``, ``::1`` from ``[::1]:4001`` (or ``::1:4001``
    as asyncio's peername joined by a colon)."""
    if peer.startswith("["):
        return peer[1:].split("]", 1)[0]
    host, sep, port = peer.rpartition(":")
    if not sep:
        return peer
    return host if port.isdigit() else peer


def peer_allowed(peer: str, networks_text: str | None) -> bool:
    """Whether ``peer`` (host:port) is inside the station's networks (none listed: yes)."""
    if not (networks_text or "").strip():
        return True
    try:
        address = ipaddress.ip_address(peer_host(peer))
        networks = networks_parse(networks_text)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in net for net in networks if net.version == address.version)


def pile_alarm(*, pile_id: int, code: str, at: datetime, description: str) -> None:
    """Open a platform alarm on the pile, or refresh the open one with this ``code``
    (repeated attempts keep one open alarm; ``RefusedPileLogin.count`` counts them)."""
    description = description[:200]
    open_alarm = Fault.objects.filter(pile_id=pile_id, code=code, cleared_at__isnull=True)
    if not open_alarm.update(description=description):
        Fault.objects.create(pile_id=pile_id, source=Fault.Source.PLATFORM, code=code,
                             description=description, started_at=at)


def takeover_refused(*, pile_code: str, peer: str, holder_peer: str, at: datetime) -> None:
    """The gateway refused a login from ``peer`` because a live connection from
    ``holder_peer`` holds the pile: counted in the refused logins and an alarm on the pile
    (in the current, the pile's operator's, schema)."""
    pile = Pile.objects.filter(code=pile_code).values_list("pk", flat=True).first()
    if pile is not None:
        pile_alarm(pile_id=pile, code=ALARM_TAKEOVER, at=at, description=gettext(
            "Login from %(peer)s refused: the pile is connected from %(holder)s.")
            % {"peer": peer, "holder": holder_peer})
    operator = Operator.objects.filter(schema_name=connection.schema_name).first()
    refused_login_record(pile_code=pile_code, reason=RefusedPileLogin.Reason.TAKEOVER,
                         operator=operator, peer=peer, firmware_version="", at=at)


def refused_login_record(*, pile_code: str, reason: str, operator, peer: str,
                         firmware_version: str, at: datetime) -> None:
    """Count one refused login in the public list (one row per pile code)."""
    values = {"reason": reason, "operator": operator, "peer": peer[:64],
              "firmware_version": firmware_version[:20], "last_seen_at": at}
    with schema_context(get_public_schema_name()):
        rows = RefusedPileLogin.objects.filter(pile_code=pile_code)
        if rows.update(count=F("count") + 1, **values):
            return
        try:
            with transaction.atomic():
                RefusedPileLogin.objects.create(pile_code=pile_code, first_seen_at=at, **values)
        except IntegrityError:  # another gateway inserted it meanwhile
            rows.update(count=F("count") + 1, **values)
