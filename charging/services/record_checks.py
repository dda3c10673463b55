"""What a pile's transaction record may be billed on, and what keeps it from being charged
without a person looking at it first.

Two questions, asked of every record at settlement:

* **Whose buckets?** A record's per-period energies are the pile's periods under the billing
  model it was running. They are ours only when the pile had confirmed the order's tariff
  version (``pile_tariff_version``, held since before the session began) and they add up to
  the record's total within the pile's rounding, with nothing in a non-standard group
  (``group5`` …). Otherwise the record's total is billed by time of day (the meter samples,
  else the record's start and end) — :func:`bucket_doubt` says why.
* **Can it be charged?** Figures no pile can produce (energy beyond the connector's rated
  power × duration, a meter that ran backwards, a session that ended before it began), a
  pile amount of zero where ours is not, buckets that don't add up, or a session nobody
  started here: the order waits under review (:func:`hold_reasons`), never charged silently.

Reasons are stored in the operator's language (``settings.LANGUAGE_CODE``): staff read them
on the order page, the frame log and the "needs review" filter.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from evplatform import money

from ..models import ChargingOrder, Period, TransactionRecord

# A pile rounds (or truncates) each group to 0.0001 kWh: the groups' sum may differ from the
# total by that much per group before anything is wrong.
ROUNDING_KWH_PER_GROUP = Decimal("0.0001")
# Rated power × duration, with this margin (meters, clock seconds, a connector briefly above
# its rating) and a fixed allowance for the start / end times' resolution.
POWER_MARGIN = Decimal("1.10")
POWER_SLACK_KWH = Decimal("0.1")

STANDARD = {Period.SHARP.value, Period.PEAK.value, Period.FLAT.value, Period.VALLEY.value}


def _say(template: str, **values) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return gettext(template) % values


def groups_sum(record: TransactionRecord) -> Decimal:
    """kWh over all of the record's price groups (standard and extra)."""
    return sum((p.energy_kwh for p in record.periods.all()), Decimal("0"))


def sum_differs(record: TransactionRecord) -> str:
    """Why the per-period energies can't be the total ("" when they add up)."""
    periods = list(record.periods.all())
    if not any(p.energy_kwh for p in periods):
        return ""  # the pile did not split: nothing to add up
    total = sum((p.energy_kwh for p in periods), Decimal("0"))
    if abs(total - record.energy_kwh) <= ROUNDING_KWH_PER_GROUP * len(periods):
        return ""
    return _say(gettext_noop("the pile's per-period energies add up to %(sum)s kWh, its total "
                             "is %(total)s kWh"),
                sum=money.kwh(total), total=money.kwh(record.energy_kwh))


def bucket_doubt(order: ChargingOrder, record: TransactionRecord) -> str:
    """Why the record's buckets can't be priced as our periods ("" when they can, or when the
    pile sent none: then the bill is by time of day anyway)."""
    periods = [p for p in record.periods.all() if p.energy_kwh]
    if not periods:
        return ""
    extra = [p for p in periods if p.period not in STANDARD]
    if extra:
        return _say(gettext_noop("the pile reported %(kwh)s kWh in price groups beyond the four "
                                 "standard ones"),
                    kwh=money.kwh(sum((p.energy_kwh for p in extra), Decimal("0"))))
    differs = sum_differs(record)
    if differs:
        return differs
    if order.pile_initiated and order.member_id is None:
        return _say(gettext_noop("a session the platform never started: the buckets are the "
                                 "pile's own"))
    ours = (order.tariff_snapshot or {}).get("model_number")
    if record.pile_tariff_version is None:
        return _say(gettext_noop("the pile never confirmed our billing model"))
    if ours is not None and record.pile_tariff_version != ours:
        return _say(gettext_noop("the pile was running billing model %(theirs)s, not ours "
                                 "(%(ours)s)"), theirs=record.pile_tariff_version, ours=ours)
    since = record.pile_tariff_since
    if since is None or since > record.started_at:
        return _say(gettext_noop("the pile confirmed our billing model only after the session "
                                 "began"))
    return ""


def impossible(order: ChargingOrder, record: TransactionRecord) -> list[str]:
    """Figures no pile can produce, in words (empty when the record is plausible)."""
    found = []
    if record.stopped_at < record.started_at:
        found.append(_say(gettext_noop("the session ends before it starts")))
    if record.meter_stop_kwh < record.meter_start_kwh:
        found.append(_say(gettext_noop("meter stop %(stop)s kWh is below meter start "
                                       "%(start)s kWh"),
                          stop=record.meter_stop_kwh, start=record.meter_start_kwh))
    rated = _rated_kw(order)
    if rated and record.energy_kwh > 0:
        seconds = max(0, int((record.stopped_at - record.started_at).total_seconds()))
        hours = Decimal(seconds) / 3600
        limit = money.kwh(rated * hours * POWER_MARGIN + POWER_SLACK_KWH)
        if record.energy_kwh > limit:
            found.append(_say(
                gettext_noop("%(kwh)s kWh in %(minutes)s min is more than %(kw)s kW can deliver "
                             "(at most %(limit)s kWh)"),
                kwh=money.kwh(record.energy_kwh), minutes=int(hours * 60), kw=rated,
                limit=limit,
            ))
    return found


def pile_amount_zero(record: TransactionRecord, ours: Decimal) -> str:
    """The pile says the session cost nothing while we bill ``ours`` yuan ("" otherwise)."""
    if record.pile_amount_yuan == 0 and ours > 0:
        return _say(gettext_noop("the pile's amount is ¥0.00, ours is ¥%(ours)s"), ours=ours)
    return ""


def unknown_trade() -> str:
    return _say(gettext_noop("a record for a trade number the platform never started: "
                             "nobody to charge"))


def _rated_kw(order: ChargingOrder) -> Decimal | None:
    connector = order.connector
    rated = getattr(connector, "rated_power_kw", None) or getattr(order.pile, "rated_power_kw", None)
    return Decimal(rated) if rated else None
