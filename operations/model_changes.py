"""The model-change log (模型变更记录): which models are audited, and the log read in the
operator's words.

django-auditlog records each add, change and delete of the models in :data:`AUDITED`
(registered by :func:`audited_models_register` when the app is ready) in the operator's
schema, with the staff user of the request. Only a model's own columns are compared, less
those the platform moves by itself (a pile's liveness, counters, caches, timestamps). Its ``changes`` are {field: [before, after]} as JSON values (a
many-to-many change: {field: {"type": "m2m", "operation": "add" | "delete", "objects"}}).
Here they become rows of (field's name, before, after) as staff read them: choices by
their label, yes/no, related objects by name, money with its field's decimals, times in
the operator's zone, a JSON value (a tariff's working copy) as the leaves that differ.

A station owner sees the changes of their own stations and what hangs off them only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from evplatform.admin_display import PERIOD_NAMES, period_name
from stations import selectors as station_selectors

# app_label.Model → columns left out, columns masked, many-to-many fields followed.
AUDITED: dict[str, dict[str, tuple[str, ...]]] = {
    "stations.Station": {"exclude": ("price_today",), "m2m": ("owners",)},
    "stations.Pile": {"exclude": ("online", "last_seen_at", "power_cap_kw", "power_cap_at",
                                  "firmware_version", "iccid", "network"),
                      "mask": ("ocpp_password",)},
    "stations.Connector": {"exclude": ("status", "status_changed_at")},
    "stations.OperatorSettings": {},
    "billing.Tariff": {},
    "billing.TariffVersion": {"exclude": ("locked_at",)},
    "billing.StationTariff": {"exclude": ("assigned_at",)},
    "billing.PileTariff": {"exclude": ("assigned_at",)},
    "billing.TopUpOffer": {},
    "settlement.SplitRule": {},
    "settlement.SplitShare": {},
    "settlement.MoneyPolicy": {},
    "settlement.OwnerContract": {},
    "charging.ChargingPolicy": {},
    "marketing.CouponTemplate": {"exclude": ("issued", "spent"), "m2m": ("stations",)},
    "marketing.SvipPlan": {},
    "marketing.SmsSettings": {"mask": ("secret_key",)},
    "operations.AlarmSettings": {},
    "operations.DutyContact": {},
    "operations.AlarmWebhook": {"mask": ("url",)},  # the robot's key is in its URL
    "operations.ControlPolicy": {},
    # Roles are groups (平台管理员, 站长); permissions one by one are the roles' business
    # (accounts.roles) and read in English as objects, so they are not followed.
    "auth.User": {"exclude": ("last_login", "date_joined"), "mask": ("password",),
                  "m2m": ("groups",)},
    "auth.Group": {},
}
NEVER_AUDITED = {"created_at", "updated_at"}


def audited_models_register() -> None:
    """Register :data:`AUDITED` with django-auditlog, each with its own columns named:
    auditlog would otherwise read every reverse relation on an add (a query each, and one
    into a table a schema may not have)."""
    from auditlog.registry import auditlog
    from django.apps import apps

    for label, spec in AUDITED.items():
        model = apps.get_model(label)
        left_out = NEVER_AUDITED | set(spec.get("exclude", ()))
        columns = [f.name for f in model._meta.concrete_fields
                   if not f.primary_key and f.name not in left_out]
        auditlog.register(model, include_fields=columns, mask_fields=list(spec.get("mask", ())),
                          m2m_fields=set(spec.get("m2m", ())))


ACTIONS = {
    0: gettext_lazy("added"),
    1: gettext_lazy("changed"),
    2: gettext_lazy("deleted"),
    3: gettext_lazy("viewed"),
}
JSON_ROWS_MAX = 30  # leaves of one JSON field shown (a day's 48 half-hour slots, say)
TEXT_MAX = 200


def mask(value: str) -> str:
    """Masked fields (passwords, secret keys, webhook keys) say only that they changed."""
    return "******" if value not in ("", "None") else ""


def action_label(action: int) -> str:
    return str(ACTIONS.get(action, action))


def visible(user, queryset: QuerySet) -> QuerySet:
    """The entries ``user`` may see: all for the operator's admins; for a station owner,
    those of their stations and of the piles, connectors, tariff assignments and split rules
    of those stations (as they exist now)."""
    if station_selectors.sees_all_stations(user):
        return queryset
    from billing.tariffs.models import PileTariff, StationTariff
    from settlement.models import SplitRule, SplitShare
    from stations.models import Connector, Pile, Station

    stations = Station.objects.filter(owners=user)
    owned = {
        Station: stations,
        Pile: Pile.objects.filter(station__in=stations),
        Connector: Connector.objects.filter(pile__station__in=stations),
        StationTariff: StationTariff.objects.filter(station__in=stations),
        PileTariff: PileTariff.objects.filter(pile__station__in=stations),
        SplitRule: SplitRule.objects.filter(station__in=stations),
        SplitShare: SplitShare.objects.filter(rule__station__in=stations),
    }
    mine = Q(pk__in=[])
    for model, rows in owned.items():
        mine |= Q(content_type=ContentType.objects.get_for_model(model, for_concrete_model=True),
                  object_id__in=rows.values("pk"))
    return queryset.filter(mine)


def _text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= TEXT_MAX else text[:TEXT_MAX] + "…"


def _decimal(field: models.DecimalField, value: Any) -> str:
    try:
        return str(Decimal(str(value)).quantize(Decimal(1).scaleb(-field.decimal_places)))
    except (InvalidOperation, ValueError):
        return _text(value)


def _when(value: Any) -> str:
    # auditlog keeps instants as naive UTC text ("2026-11-30 08:00:00").
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return _text(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M:%S}"


def _related(field: models.Field, value: Any) -> str:
    model = field.related_model
    try:
        obj = model._base_manager.filter(pk=value).first()
    except (ValueError, TypeError):
        obj = None
    return _text(obj) if obj is not None else f"#{value}"


def value_text(field: models.Field | None, value: Any) -> str:
    """One stored value as staff read it ("-" for none)."""
    if value is None or value == "None" or value == "":
        return "-"
    if field is None:
        return _text(value)
    if field.choices:
        labels = {str(k): v for k, v in field.flatchoices}
        return _text(labels.get(str(value), value))
    if isinstance(field, models.BooleanField):
        truth = value if isinstance(value, bool) else str(value) == "True"
        return _("yes") if truth else _("no")
    if isinstance(field, models.DecimalField):
        return _decimal(field, value)
    if isinstance(field, models.DateTimeField):
        return _when(value)
    if field.is_relation and (field.many_to_one or field.one_to_one):
        return _related(field, value)
    return _text(value)


def _json_leaves(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """The (path, before, after) of each leaf where two JSON values differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            out += _json_leaves(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            out += _json_leaves(b, a, f"{path}[{i + 1}]")
        return out
    return [] if before == after else [(path, before, after)]


def _json_text(value: Any) -> str:
    """A JSON leaf as text (a tariff period by its name); a whole object or list as data
    (``<code>``), for the page and not for the one-line summary."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return period_name(value) if value in PERIOD_NAMES else _text(value)
    if isinstance(value, bool | int | float):
        return str(value)
    return format_html("<code>{}</code>", _text(json.dumps(value, ensure_ascii=False)))


def rows(entry) -> list[tuple[str, str, str]]:
    """The entry's changes as (field, before, after), in the model's field order. A JSON
    field's change is a row per leaf that differs (``working copy · prices.peak.electricity``)."""
    model = entry.content_type.model_class()
    changes = entry.changes if isinstance(entry.changes, dict) else {}
    order = {f.name: i for i, f in enumerate(model._meta.get_fields())} if model else {}
    out = []
    for name in sorted(changes, key=lambda n: order.get(n, len(order))):
        values = changes[name]
        field = None
        if model is not None:
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:
                field = None
        m2m = isinstance(values, dict) and values.get("type") == "m2m"
        if field is not None and not m2m and not field.concrete:
            continue  # auditlog's add and delete entries name reverse relations too
        label = str(getattr(field, "verbose_name", name))
        if m2m:
            objects = "、".join(str(o) for o in values.get("objects", []))
            verb = _("added: %(items)s") if values.get("operation") == "add" else _("removed: %(items)s")
            out.append((label, "", _text(verb % {"items": objects})))
            continue
        before, after = (list(values) + [None, None])[:2]
        if isinstance(field, models.JSONField):
            leaves = _json_leaves(before, after) if before is not None and after is not None \
                else [("", before, after)]
            for path, b, a in leaves[:JSON_ROWS_MAX]:
                out.append((f"{label} · {path}" if path else label, _json_text(b), _json_text(a)))
            if len(leaves) > JSON_ROWS_MAX:
                out.append((label, "…", _("%(n)d more") % {"n": len(leaves) - JSON_ROWS_MAX}))
            continue
        out.append((label, value_text(field, before), value_text(field, after)))
    return out


def summary(entry) -> str:
    """The changes on one line: ``field：before → after；…`` (what the list shows); whole
    JSON objects are left to the entry's page."""

    def plain(value) -> str:
        return "…" if isinstance(value, SafeString) else value

    return _text("；".join(f"{label}：{plain(b)} → {plain(a)}" if b else f"{label}：{plain(a)}"
                          for label, b, a in rows(entry)))
