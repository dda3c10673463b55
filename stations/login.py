"""A pile logs in (any protocol): the public registry routes its code to an operator and
the operator's pile; refusals are counted in the public ``RefusedPileLogin`` list."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.hashers import check_password
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django_tenants.utils import get_public_schema_name, schema_context

from tenants.models import Operator, PileRegistration, RefusedPileLogin

from .models import Connector, Pile


@dataclass
class LoginOutcome:
    """Whether a pile may log in; ``reason`` is a ``RefusedPileLogin.Reason`` value."""

    accepted: bool
    reason: str = ""
    schema: str = ""
    heartbeat_interval_s: int = 10
    connectors: dict[int, str] = field(default_factory=dict)


def pile_login(*, pile_code: str, peer: str, firmware_version: str, iccid: str,
               at: datetime, protocol: str = "", password: str | None = None) -> LoginOutcome:
    """Route a logging-in pile through the public registry to its operator and pile.

    Refused: code not registered (``unknown``), operator suspended, pile absent from the
    operator's estate (``not_in_estate``) or disabled — each refusal is recorded in the
    public ``RefusedPileLogin`` list; so is a pile of another ``protocol`` (when given,
    ``wrong_protocol``) and, when the pile has an OCPP password, a missing or wrong
    ``password`` (``bad_password``). Accepted: firmware/ICCID are refreshed on the pile.

    Two SQL statements (registry + operator; pile + connectors with schema-qualified
    tables): a gateway restart makes every pile log in at once, so this is the hot path.
    """
    Reason = RefusedPileLogin.Reason
    quote = connection.ops.quote_name
    with schema_context(get_public_schema_name()), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT o.id, o.schema_name, o.status FROM {quote(PileRegistration._meta.db_table)} r"
            f" JOIN {quote(Operator._meta.db_table)} o ON o.id = r.operator_id WHERE r.code = %s",
            [pile_code])
        row = cursor.fetchone()
        pile = None
        if row is not None and row[2] == Operator.Status.ACTIVE:
            schema = quote(row[1])
            cursor.execute(
                "SELECT p.id, p.enabled, p.heartbeat_interval_s, p.firmware_version, p.iccid,"
                " p.protocol, p.ocpp_password,"
                " coalesce(json_object_agg(c.number, c.status) FILTER (WHERE c.id IS NOT NULL),"
                f" '{{}}') FROM {schema}.{quote(Pile._meta.db_table)} p"
                f" LEFT JOIN {schema}.{quote(Connector._meta.db_table)} c ON c.pile_id = p.id"
                " WHERE p.code = %s GROUP BY p.id", [pile_code])
            pile = cursor.fetchone()
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
    else:
        pk, _enabled, heartbeat_s, old_firmware, old_iccid, _protocol, _hash, connectors = pile
        changed = {}
        if firmware_version and old_firmware != firmware_version[:50]:
            changed["firmware_version"] = firmware_version[:50]
        if iccid and iccid.strip("0") and old_iccid != iccid[:22]:
            changed["iccid"] = iccid[:22]
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
