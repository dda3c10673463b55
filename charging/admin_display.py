"""How an order reads in the admin: its bill as a table, its tariff snapshot as periods and
prices, its transitions in words.

Reads what the order already carries (``ChargingOrder.bill`` lines and totals,
``ChargingOrder.tariff_snapshot``), never the pile's raw record. Units: kWh, yuan, yuan/kWh.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from evplatform.admin_display import html_table, local_seconds, period_name

SLOT_MINUTES = 30  # a snapshot's day is 48 half-hour slots

# Transition reasons the services write (English, for logs), read back in the reader's
# language; unknown reasons are shown as written.
REASONS = {
    "start timed out": _("The pile did not confirm the start in time"),
    "charging reported": _("The pile reported charging"),
    "record for an unknown trade number": _("A record arrived for an unknown trade number"),
    "transaction record": _("The pile's transaction record arrived"),
    "no readings from the pile": _("No readings from the pile"),
    "no transaction record after stop": _("No transaction record after the stop"),
}
REASON_PATTERNS = [
    (re.compile(r"^pile refused start \(code (?P<code>[^)]*)\)$"),
     _("The pile refused to start (code %(code)s)")),
    (re.compile(r"^pile refused stop \(code (?P<code>[^)]*)\)$"),
     _("The pile refused to stop (code %(code)s)")),
    (re.compile(r"^refund ¥(?P<amount>[0-9.]+): (?P<reason>.*)$"),
     _("Refunded ¥%(amount)s: %(reason)s")),
    (re.compile(r"^remote start: (?P<error>.*)$"), _("Remote start failed: %(error)s")),
    (re.compile(r"^card start at the pile$"), _("Started at the pile with a card")),
    (re.compile(r"^vin start at the pile$"), _("Started at the pile by the car's VIN")),
]


def reason_in_words(reason: str) -> str:
    if not reason:
        return ""
    if reason in REASONS:
        return str(REASONS[reason])
    for pattern, words in REASON_PATTERNS:
        match = pattern.match(reason)
        if match:
            return str(words) % match.groupdict()
    return reason


def _yuan(value) -> str:
    try:
        return f"¥{Decimal(str(value)):.2f}"
    except (InvalidOperation, ValueError):
        return "-"


def _num(value, places: int) -> str:
    try:
        return f"{Decimal(str(value)):.{places}f}"
    except (InvalidOperation, ValueError):
        return "-"


def roaming_bill_table(lines: list[dict]):
    """A partner's bill lines (``RoamingOrder.bill_lines``): the span in the operator's
    zone, kWh, prices (yuan/kWh) and amounts as the partner sent them; ``-`` if none."""
    if not lines:
        return "-"

    def when(text):
        return local_seconds(datetime.fromisoformat(text)) if text else "-"

    rows = [
        [when(line.get("start")), when(line.get("end")), line.get("energy_kwh", "-"),
         line.get("electricity_price", "-"), _yuan(line.get("electricity_yuan")),
         line.get("service_price", "-"), _yuan(line.get("service_yuan"))]
        for line in lines
    ]
    return html_table(
        [_("started"), _("stopped"), _("energy (kWh)"), _("electricity price (yuan/kWh)"), _("electricity"),
         _("service price (yuan/kWh)"), _("service")],
        rows,
    )


def bill_table(bill: dict | None):
    """Bill lines (period, kWh, electricity price and amount, service price and amount,
    line amount) and the totals; ``-`` before the order is priced."""
    if not bill or not bill.get("lines"):
        return "-"
    rows = []
    for line in bill["lines"]:
        periods = "、".join(period_name(p) for p in line.get("periods", []))
        amount = Decimal(str(line.get("electricity_yuan", 0))) + Decimal(str(line.get("service_yuan", 0)))
        rows.append([
            periods, _num(line.get("energy_kwh"), 4),
            _num(line.get("electricity_price"), 5), _yuan(line.get("electricity_yuan")),
            _num(line.get("service_price"), 5), _yuan(line.get("service_yuan")), _yuan(amount),
        ])
    electricity = Decimal(str(bill.get("electricity_yuan", 0)))
    service = Decimal(str(bill.get("service_yuan", 0)))
    foot = [_("Total"), _num(bill.get("energy_kwh"), 4), "", _yuan(electricity), "",
            _yuan(service), _yuan(electricity + service)]
    table = html_table(
        [_("period"), _("energy (kWh)"), _("electricity price (yuan/kWh)"), _("electricity"),
         _("service price (yuan/kWh)"), _("service"), _("amount")],
        rows, foot,
    )
    extras = []
    for key, label in (("occupancy_yuan", _("occupancy fee")),
                       ("minimum_topup_yuan", _("raised to the minimum charge"))):
        value = Decimal(str(bill.get(key, 0) or 0))
        if value:
            extras.append(format_html("{}: {}", label, _yuan(value)))
    source = {"pile": _("energy per period as the pile reported it"),
              "meter": _("energy split at period boundaries from the meter readings")}.get(
        bill.get("source"), "")
    if bill.get("by_time_because"):
        source = format_html("{}（{}）", _("billed by time of day, not on the pile's buckets"),
                             bill["by_time_because"])
    note = format_html('<p class="help">{}</p>', source) if source else ""
    more = format_html("<p>{}</p>", "；".join(str(e) for e in extras)) if extras else ""
    return format_html("{}{}{}<p><strong>{}: {}</strong></p>", table, more, note,
                       _("Bill total"), _yuan(bill.get("total_yuan")))


def _runs(slots: list[str]) -> list[tuple[str, str, str]]:
    """48 half-hour slot names → [(start "HH:MM", end "HH:MM", period)] runs."""
    runs: list[tuple[str, str, str]] = []
    start = 0
    for i in range(1, len(slots) + 1):
        if i == len(slots) or slots[i] != slots[start]:
            a, b = start * SLOT_MINUTES, i * SLOT_MINUTES
            runs.append((f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}", slots[start]))
            start = i
    return runs


def _day_text(slots: list[str]) -> str:
    return "；".join(f"{a}–{b} {period_name(p)}" for a, b, p in _runs(slots))


def tariff_table(snapshot: dict | None):
    """The tariff locked on the order: prices per period, the day's periods by time, seasons,
    occupancy fee and minimum charge."""
    if not snapshot:
        return "-"
    prices = snapshot.get("prices", {})
    rows = []
    for name in ("sharp", "peak", "flat", "valley"):
        price = prices.get(name)
        if not price:
            continue
        total = Decimal(str(price.get("electricity", 0))) + Decimal(str(price.get("service", 0)))
        rows.append([period_name(name), _num(price.get("electricity"), 5),
                     _num(price.get("service"), 5), _num(total, 5)])
    parts = [html_table([_("period"), _("electricity price (yuan/kWh)"),
                         _("service price (yuan/kWh)"), _("total (yuan/kWh)")], rows)]
    slots = snapshot.get("slots") or []
    if slots:
        parts.append(format_html("<p>{}: {}</p>", _("Periods of the day"), _day_text(slots)))
    for season in snapshot.get("seasons") or []:
        parts.append(format_html(
            "<p>{}: {}</p>",
            gettext("Months %(start)s–%(end)s") % {"start": season.get("start_month"),
                                                   "end": season.get("end_month")},
            _day_text(season.get("slots") or []),
        ))
    occupancy = snapshot.get("occupancy") or {}
    if occupancy and Decimal(str(occupancy.get("per_minute", 0))):
        parts.append(format_html(
            "<p>{}</p>",
            gettext("Occupancy fee: ¥%(rate)s per minute after %(grace)s free minutes, at most ¥%(cap)s")
            % {"rate": _num(occupancy.get("per_minute"), 2), "grace": occupancy.get("grace_minutes"),
               "cap": _num(occupancy.get("cap"), 2)},
        ))
    minimum = snapshot.get("minimum_charge")
    if minimum and Decimal(str(minimum)):
        parts.append(format_html("<p>{}: {}</p>", _("Minimum charge"), _yuan(minimum)))
    if snapshot.get("timezone"):
        parts.append(format_html('<p class="help">{}: {}</p>', _("Time zone of the periods"),
                                 snapshot["timezone"]))
    return format_html("".join(["{}"] * len(parts)), *parts)
