"""The tariff editing form: time ranges per period ⇄ the 48 half-hour slots of a snapshot.

Ranges are typed one per line, ``peak 10:00-12:00`` (period names in English or 尖/峰/平/谷,
``-`` or ``–``, 24:00 for the end of the day, boundaries on :00 or :30); slots not covered
take the "all other hours" period. Seasons and special dates overlay ranges on that default
map: ``7-9 summer | sharp 11:00-12:00, sharp 15:00-17:00`` and
``2026-08-01 heat | sharp 11:00-12:00``. Pricing errors (``TariffError.field``) land on the
form field they name.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from . import pricing
from .models import Tariff, TariffVersion

Period = pricing.Period
SLOTS = pricing.SLOTS_PER_DAY

PERIOD_LABELS = {
    Period.SHARP: _("sharp (尖)"),
    Period.PEAK: _("peak (峰)"),
    Period.FLAT: _("flat (平)"),
    Period.VALLEY: _("valley (谷)"),
}
# A publish time typed as "now" is a few seconds old when the form arrives.
PAST_TOLERANCE = timedelta(minutes=2)
# Written back in the admin's language, so what staff type in Chinese reads back in Chinese.
_CHINESE_NAMES = {Period.SHARP: "尖", Period.PEAK: "峰", Period.FLAT: "平", Period.VALLEY: "谷"}
_ALIASES = {
    "sharp": Period.SHARP,
    "尖": Period.SHARP,
    "尖峰": Period.SHARP,
    "peak": Period.PEAK,
    "峰": Period.PEAK,
    "flat": Period.FLAT,
    "平": Period.FLAT,
    "valley": Period.VALLEY,
    "谷": Period.VALLEY,
}
_RANGE = re.compile(r"^(\S+)\s+(\d{1,2}):(\d{2})\s*[-–~至]\s*(\d{1,2}):(\d{2})$")
_SEASON = re.compile(r"^(\d{1,2})\s*[-–~]\s*(\d{1,2})\s*([^|]*)\|(.*)$")
_SPECIAL = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*([^|]*)\|(.*)$")


def _slot_of(hour: str, minute: str, where: str) -> int:
    h, m = int(hour), int(minute)
    if m not in (0, 30) or not 0 <= h <= 24 or (h == 24 and m):
        raise forms.ValidationError(
            _("%(where)s: times must be on the hour or half hour (00:00–24:00)."),
            params={"where": where},
        )
    return h * 2 + m // 30


def parse_range(text: str, where: str) -> tuple[Period, int, int]:
    """``"peak 10:00-12:00"`` → (Period.PEAK, 20, 24): first slot and end slot (exclusive)."""
    match = _RANGE.match(text.strip())
    if not match:
        raise forms.ValidationError(
            _('%(where)s: write a range as "peak 10:00-12:00", got "%(text)s".'),
            params={"where": where, "text": text.strip()},
        )
    name, h1, m1, h2, m2 = match.groups()
    period = _ALIASES.get(name.lower())
    if period is None:
        raise forms.ValidationError(
            _('%(where)s: unknown period "%(name)s"; use sharp, peak, flat or valley (尖峰平谷).'),
            params={"where": where, "name": name},
        )
    start, end = _slot_of(h1, m1, where), _slot_of(h2, m2, where)
    if start >= end:
        raise forms.ValidationError(
            _("%(where)s: the range must end after it starts."), params={"where": where}
        )
    return period, start, end


def apply_ranges(base: list[Period], ranges: list[tuple[Period, int, int]]) -> list[Period]:
    slots = list(base)
    for period, start, end in ranges:
        slots[start:end] = [period] * (end - start)
    return slots


def _hhmm(slot: int) -> str:
    return f"{slot * 30 // 60:02d}:{slot * 30 % 60:02d}"


def period_word(period: Period) -> str:
    """The period's name as staff type it: 尖/峰/平/谷 in Chinese, sharp/peak/… otherwise."""
    language = translation.get_language() or ""
    return _CHINESE_NAMES[period] if language.lower().startswith("zh") else period.value


def ranges_of(slots, base) -> list[str]:
    """Runs of ``slots`` that differ from ``base`` (a period or a 48-slot map) as range text."""
    base_map = [base] * SLOTS if isinstance(base, Period) else list(base)
    out = []
    for first, end, value in pricing.day_runs(
        [s if s != b else None for s, b in zip(slots, base_map, strict=True)]
    ):
        if value is not None:
            out.append(f"{period_word(value)} {_hhmm(first)}-{_hhmm(end)}")
    return out


def _split_items(text: str) -> list[str]:
    return [item.strip() for item in re.split(r"[,;，；]", text) if item.strip()]


# Where a TariffError.field lands on the form.
def form_field_for(path: str) -> str | None:
    if path.startswith("slots"):
        return "ranges"
    if path.startswith("seasons"):
        return "seasons"
    if path.startswith("special_dates"):
        return "special_dates"
    match = re.match(r"^prices\.(\w+)\.(electricity|service)$", path)
    if match:
        return f"{match.group(1)}_{match.group(2)}"
    if path.startswith("occupancy."):
        return "occupancy_" + path.split(".", 1)[1]
    if path in ("minimum_charge", "kind"):
        return path
    return None


def _price_field(label) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, required=False, min_value=0, max_digits=10, decimal_places=5
    )


class TariffForm(forms.ModelForm):
    """Edit a tariff's working copy; optionally publish it as a new version."""

    kind = forms.ChoiceField(label=_("kind"), choices=Tariff.Kind.choices)
    base_period = forms.ChoiceField(
        label=_("all other hours"),
        choices=[(p.value, PERIOD_LABELS[p]) for p in Period],
        initial=Period.FLAT.value,
        help_text=_("The period of every half hour not covered by a range below."),
    )
    ranges = forms.CharField(
        label=_("time ranges"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 40}),
        help_text=_(
            'One per line, e.g. "peak 10:00-12:00" or "谷 00:00-08:00"; on the hour or half '
            "hour, 24:00 for midnight. Later lines win."
        ),
    )
    sharp_electricity = _price_field(_("sharp electricity (yuan/kWh)"))
    sharp_service = _price_field(_("sharp service fee (yuan/kWh)"))
    peak_electricity = _price_field(_("peak electricity (yuan/kWh)"))
    peak_service = _price_field(_("peak service fee (yuan/kWh)"))
    flat_electricity = _price_field(_("flat electricity (yuan/kWh)"))
    flat_service = _price_field(_("flat service fee (yuan/kWh)"))
    valley_electricity = _price_field(_("valley electricity (yuan/kWh)"))
    valley_service = _price_field(_("valley service fee (yuan/kWh)"))
    seasons = forms.CharField(
        label=_("seasons"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_(
            "One per line: months, name, then ranges over the default map, e.g. "
            '"7-9 summer | sharp 11:00-12:00, sharp 15:00-17:00".'
        ),
    )
    special_dates = forms.CharField(
        label=_("special dates"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_(
            "One per line: date, note, then ranges over that month's map, e.g. "
            '"2026-08-01 critical peak | sharp 11:00-12:00, sharp 15:00-17:00".'
        ),
    )
    occupancy_per_minute = forms.DecimalField(
        label=_("occupancy fee (yuan/minute)"),
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=5,
        help_text=_("Charged per minute the car stays after charging ends. Empty: none."),
    )
    occupancy_grace_minutes = forms.IntegerField(
        label=_("grace period (minutes)"), required=False, min_value=0, max_value=24 * 60
    )
    occupancy_cap = forms.DecimalField(
        label=_("occupancy fee cap (yuan)"),
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
    )
    minimum_charge = forms.DecimalField(
        label=_("minimum charge (yuan)"),
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
        help_text=_("A session that delivered energy costs at least this much."),
    )
    publish_effective_from = forms.SplitDateTimeField(
        label=_("publish as a new version from"),
        required=False,
        widget=AdminSplitDateTime,
        help_text=_(
            "Leave empty to only save the working copy. Otherwise the saved tariff becomes a "
            "new, immutable version in force from this time."
        ),
    )

    class Meta:
        model = Tariff
        fields = ["name", "description"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.snapshot: pricing.TariffSnapshot | None = None
        if self.instance.pk and self.instance.draft:
            self.initial.update(initial_from_snapshot(self.instance.draft))

    def _ranges(self, text: str, field: str) -> list[tuple[Period, int, int]]:
        out = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                out.append(parse_range(line, _("line %(n)d") % {"n": n}))
        return out

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            snapshot_dict = self._snapshot_dict(data)
        except _FieldError as exc:
            self.add_error(exc.field, exc.error)
            return data
        try:
            self.snapshot = pricing.TariffSnapshot.from_dict(snapshot_dict)
        except pricing.TariffError as exc:
            self.add_error(form_field_for(exc.field), str(exc))
            return data
        when = data.get("publish_effective_from")
        if when is not None and when < timezone.now() - PAST_TOLERANCE:
            self.add_error(
                "publish_effective_from",
                _("A version cannot take effect in the past; give the current time or later."),
            )
        if when is not None and self.instance.pk:
            clash = TariffVersion.objects.filter(tariff=self.instance, effective_from=when)
            if clash.exists():
                self.add_error(
                    "publish_effective_from",
                    _("This tariff already has a version taking effect at that time."),
                )
        return data

    def _snapshot_dict(self, data: dict[str, Any]) -> dict[str, Any]:
        base = Period(data["base_period"])
        default = [base] * SLOTS
        try:
            default = apply_ranges(default, self._ranges(data.get("ranges") or "", "ranges"))
        except forms.ValidationError as exc:
            raise _FieldError("ranges", exc) from None
        seasons = []
        for n, line in enumerate((data.get("seasons") or "").splitlines(), start=1):
            if not line.strip():
                continue
            where = _("line %(n)d") % {"n": n}
            match = _SEASON.match(line.strip())
            if not match:
                raise _FieldError(
                    "seasons",
                    forms.ValidationError(
                        _('%(where)s: write "7-9 summer | sharp 11:00-12:00".'),
                        params={"where": where},
                    ),
                )
            start, end, name, items = match.groups()
            try:
                ranges = [parse_range(item, where) for item in _split_items(items)]
            except forms.ValidationError as exc:
                raise _FieldError("seasons", exc) from None
            seasons.append(
                {
                    "name": name.strip(),
                    "start_month": int(start),
                    "end_month": int(end),
                    "slots": [p.value for p in apply_ranges(default, ranges)],
                }
            )
        specials = []
        for n, line in enumerate((data.get("special_dates") or "").splitlines(), start=1):
            if not line.strip():
                continue
            where = _("line %(n)d") % {"n": n}
            match = _SPECIAL.match(line.strip())
            try:
                day = date.fromisoformat(match.group(1)) if match else None
            except ValueError:
                day = None
            if day is None:
                raise _FieldError(
                    "special_dates",
                    forms.ValidationError(
                        _('%(where)s: write "2026-08-01 note | sharp 11:00-12:00".'),
                        params={"where": where},
                    ),
                )
            try:
                ranges = [parse_range(item, where) for item in _split_items(match.group(3))]
            except forms.ValidationError as exc:
                raise _FieldError("special_dates", exc) from None
            month_map = default
            for season in seasons:
                months = pricing.Season(season["start_month"], season["end_month"], ()).months
                if day.month in months:
                    month_map = [Period(p) for p in season["slots"]]
            specials.append(
                {
                    "date": day.isoformat(),
                    "note": match.group(2).strip(),
                    "slots": [p.value for p in apply_ranges(month_map, ranges)],
                }
            )
        used = set(default)
        for entry in seasons + specials:
            used.update(Period(p) for p in entry["slots"])
        prices = {}
        for period in Period:
            electricity = data.get(f"{period.value}_electricity")
            service = data.get(f"{period.value}_service")
            if period not in used:
                continue
            if electricity is None or service is None:
                missing = "electricity" if electricity is None else "service"
                raise _FieldError(
                    f"{period.value}_{missing}",
                    forms.ValidationError(
                        _("The %(period)s period is used by the time ranges and needs a price."),
                        params={"period": PERIOD_LABELS[period]},
                    ),
                )
            prices[period.value] = {"electricity": str(electricity), "service": str(service)}
        occupancy = None
        if data.get("occupancy_per_minute") is not None:
            occupancy = {
                "per_minute": str(data["occupancy_per_minute"]),
                "grace_minutes": data.get("occupancy_grace_minutes") or 0,
                "cap": None if data.get("occupancy_cap") is None else str(data["occupancy_cap"]),
            }
        minimum = data.get("minimum_charge")
        previous = self.instance.draft or {}
        return {
            "kind": data["kind"],
            "timezone": previous.get("timezone", "Asia/Shanghai"),
            "prices": prices,
            "slots": [p.value for p in default],
            "seasons": seasons,
            "special_dates": specials,
            "occupancy": occupancy,
            "minimum_charge": None if minimum is None else str(minimum),
        }


class _FieldError(Exception):
    def __init__(self, field: str, error: forms.ValidationError) -> None:
        self.field = field
        self.error = error


def _most_common(slots) -> Period:
    return max(Period, key=lambda p: (list(slots).count(p), -p.code))


def initial_from_snapshot(data: dict[str, Any]) -> dict[str, Any]:
    """Form initial values for a snapshot dict (the inverse of the form's clean)."""
    snapshot = pricing.TariffSnapshot.from_dict(data)
    base = _most_common(snapshot.slots)
    initial: dict[str, Any] = {
        "kind": snapshot.kind.value,
        "base_period": base.value,
        "ranges": "\n".join(ranges_of(snapshot.slots, base)),
        "seasons": "\n".join(
            f"{s.start_month}-{s.end_month} {s.name} | "
            + ", ".join(ranges_of(s.slots, snapshot.slots))
            for s in snapshot.seasons
        ),
        "special_dates": "\n".join(
            f"{s.date.isoformat()} {s.note} | "
            + ", ".join(ranges_of(s.slots, snapshot._month_slots[s.date.month]))
            for s in snapshot.special_dates
        ),
        "minimum_charge": snapshot.minimum_charge,
    }
    for price in snapshot.prices:
        initial[f"{price.period.value}_electricity"] = price.electricity
        initial[f"{price.period.value}_service"] = price.service
    if snapshot.occupancy is not None:
        initial["occupancy_per_minute"] = snapshot.occupancy.per_minute
        initial["occupancy_grace_minutes"] = snapshot.occupancy.grace_minutes
        initial["occupancy_cap"] = snapshot.occupancy.cap
    return initial


class AssignStationsForm(forms.Form):
    """Intermediate form of the "assign to stations" action."""

    stations = forms.ModelMultipleChoiceField(
        label=_("stations"), queryset=None, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, **kwargs) -> None:
        from stations.models import Station

        super().__init__(*args, **kwargs)
        self.fields["stations"].queryset = Station.objects.order_by("name")


class TariffVersionForm(forms.ModelForm):
    class Meta:
        model = TariffVersion
        fields = ["effective_from"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.instance.pk and self.instance.locked:
            raise forms.ValidationError(
                _("This version is used by orders and can no longer be changed.")
            )
        return data
