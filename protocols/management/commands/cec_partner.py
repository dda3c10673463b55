"""``manage.py cec_partner add|list|show|disable|push-orders|push-stations|pull-stations`` —
script partner onboarding.

``add`` creates (or updates) a partner of operator ``--tenant`` and prints the secret set we
issued to it (generated unless given); secrets are stored encrypted and ``show`` prints them
masked. ``push-orders`` pushes the orders settled in a date range to a regulator now,
``push-stations`` our stations (``notification_stationInfo``).
"""

from __future__ import annotations

import json
import secrets
import string
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError


def _secret() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))


class Command(BaseCommand):
    help = ("Manage T/CEC interconnection partners: add, list, show, disable, push-orders, "
            "push-stations (our stations to a regulator now), pull-stations (an infrastructure "
            "partner's stations into our search now).")

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("add", "list", "show", "disable", "push-orders",
                                                     "push-stations", "pull-stations"))
        parser.add_argument("--tenant", required=True, help="operator slug")
        parser.add_argument("--operator-id", help="the partner's 9-character OperatorID")
        parser.add_argument("--name", default="")
        parser.add_argument("--our-operator-id", help="our OperatorID towards this partner")
        parser.add_argument("--base-url", default="")
        parser.add_argument("--prefix", default="/evcs/v1/")
        parser.add_argument("--role", action="append", choices=("customer", "infrastructure", "regulator"),
                            help="repeatable; default customer")
        parser.add_argument("--in-secret", help="one 16-character secret for the whole inbound set "
                            "(generated if omitted)")
        parser.add_argument("--out-operator-secret", default="")
        parser.add_argument("--out-data-secret", default="")
        parser.add_argument("--out-data-iv", default="")
        parser.add_argument("--out-sig-secret", default="")
        parser.add_argument("--rename", action="append", default=[],
                            help="STANDARD=PARTNER field-name variant, repeatable")
        parser.add_argument("--status-interval", type=int, default=50)
        parser.add_argument("--owing", choices=("allow", "refuse"),
                            help="add: may its drivers start while it owes us (欠费)? default allow")
        parser.add_argument("--credit", help="add: what a pile may spend on one of its orders, yuan")
        parser.add_argument("--from", dest="start", help="push-orders: first day (yyyy-mm-dd)")
        parser.add_argument("--to", dest="end", help="push-orders: last day (yyyy-mm-dd)")

    def handle(self, *args, **o):
        from django_tenants.utils import get_public_schema_name, schema_context

        from charging import handlers, port

        with schema_context(get_public_schema_name()):  # (a one-shot command: no dispatch's
            schema = handlers.handle(port.OperatorQuery(o["tenant"]))  # connection cleanup)
        if schema is None:
            raise CommandError(f"no operator {o['tenant']!r}")
        with schema_context(schema):
            getattr(self, "do_" + o["action"].replace("-", "_"))(o)

    def _partner(self, o):
        from protocols.cec.models import Partner

        if not o["operator_id"]:
            raise CommandError("--operator-id is required")
        partner = Partner.objects.filter(operator_id=o["operator_id"]).first()
        if partner is None:
            raise CommandError(f"no partner {o['operator_id']}")
        return partner

    def do_add(self, o):
        from django.core.exceptions import ValidationError

        from protocols.cec.models import Partner

        if not o["operator_id"] or not o["our_operator_id"]:
            raise CommandError("--operator-id and --our-operator-id are required")
        roles = set(o["role"] or ["customer"])
        inbound = o["in_secret"] or _secret()
        renames = dict(pair.split("=", 1) for pair in o["rename"])
        partner = Partner.objects.filter(operator_id=o["operator_id"]).first() or Partner(
            operator_id=o["operator_id"])
        partner.name = o["name"] or partner.name or o["operator_id"]
        partner.our_operator_id = o["our_operator_id"]
        partner.base_url, partner.path_prefix = o["base_url"], o["prefix"]
        partner.is_customer_operator = "customer" in roles
        partner.is_infrastructure = "infrastructure" in roles
        partner.is_regulator = "regulator" in roles
        partner.in_operator_secret = partner.in_data_secret = inbound
        partner.in_data_iv = partner.in_sig_secret = inbound
        for field in ("out_operator_secret", "out_data_secret", "out_data_iv", "out_sig_secret"):
            if o[field]:
                setattr(partner, field, o[field])
        partner.field_renames = renames or partner.field_renames
        partner.status_interval_s = o["status_interval"]
        if o["owing"]:
            partner.charge_while_owing = o["owing"] == "allow"
        if o["credit"]:
            try:
                partner.credit_yuan = Decimal(o["credit"])
            except InvalidOperation as exc:
                raise CommandError("--credit is an amount in yuan, e.g. 200.00") from exc
        try:
            partner.full_clean(exclude=["stations"])
        except ValidationError as exc:
            raise CommandError(json.dumps(exc.message_dict, ensure_ascii=False)) from exc
        partner.save()
        self.stdout.write(json.dumps({
            "partner": partner.operator_id, "OperatorSecret": inbound, "DataSecret": inbound,
            "DataSecretIV": inbound, "SigSecret": inbound,
            "url": f"https://{{operator host}}{_prefix()}", }, ensure_ascii=False))

    def do_list(self, o):
        from protocols.cec.models import Partner

        for p in Partner.objects.order_by("operator_id"):
            roles = [r for r, flag in (("customer", p.is_customer_operator),
                                       ("infrastructure", p.is_infrastructure),
                                       ("regulator", p.is_regulator)) if flag]
            self.stdout.write(f"{p.operator_id}\t{p.name}\t{','.join(roles)}\t"
                              f"{'enabled' if p.enabled else 'disabled'}\t{p.base_url}")

    def do_show(self, o):
        from evplatform.crypto import mask

        p = self._partner(o)
        self.stdout.write(json.dumps({
            "operator_id": p.operator_id, "name": p.name, "our_operator_id": p.our_operator_id,
            "base_url": p.base_url, "path_prefix": p.path_prefix, "enabled": p.enabled,
            "roles": {"customer": p.is_customer_operator, "infrastructure": p.is_infrastructure,
                      "regulator": p.is_regulator},
            "field_renames": p.field_renames, "status_interval_s": p.status_interval_s,
            "charge_while_owing": p.charge_while_owing, "credit_yuan": str(p.credit_yuan),
            "secrets": {f: mask(getattr(p, f)) for f in (
                "in_operator_secret", "in_data_secret", "in_data_iv", "in_sig_secret",
                "out_operator_secret", "out_data_secret", "out_data_iv", "out_sig_secret")},
            "pushes": {s: p.pushes.filter(state=s).count() for s in ("pending", "done", "dead")},
        }, ensure_ascii=False, indent=2))

    def do_disable(self, o):
        from protocols.cec.remote import stations_withdraw

        p = self._partner(o)
        p.enabled = False
        p.save(update_fields=["enabled"])
        stations_withdraw(partner=p)  # its stations leave our search
        self.stdout.write(f"{p.operator_id} disabled")

    def do_pull_stations(self, o):
        from protocols.cec.client import CallFailed
        from protocols.cec.remote import stations_pull

        p = self._partner(o)
        if not p.is_infrastructure:
            raise CommandError(f"{p.operator_id} is not an infrastructure partner")
        try:
            count = stations_pull(partner=p)
        except CallFailed as exc:
            raise CommandError(f"pull from {p.operator_id} failed: {exc}") from exc
        self.stdout.write(f"{count} stations of {p.operator_id} in our search")

    def do_push_orders(self, o):
        from protocols.cec import convert, pushes

        p = self._partner(o)
        if not p.is_regulator:
            raise CommandError(f"{p.operator_id} is not a regulator")
        try:
            start, end = date.fromisoformat(o["start"]), date.fromisoformat(o["end"])
        except (TypeError, ValueError) as exc:
            raise CommandError("--from and --to are dates, yyyy-mm-dd") from exc
        count = pushes.orders_push(
            regulator=p,
            settled_from=datetime.combine(start, time.min, tzinfo=convert.CHINA),
            settled_to=datetime.combine(end, time.min, tzinfo=convert.CHINA) + timedelta(days=1),
        )
        self.stdout.write(f"{count} orders queued for {p.operator_id}")


    def do_push_stations(self, o):
        from protocols.cec import pushes

        p = self._partner(o)
        if not p.is_regulator:
            raise CommandError(f"{p.operator_id} is not a regulator")
        count = len(pushes.stations_to_regulators(regulators=[p], resend=True))
        self.stdout.write(f"{count} stations queued for {p.operator_id}")


def _prefix() -> str:
    from django.conf import settings

    return settings.CEC_PATH_PREFIX
