"""Small HTML pieces for admin pages: tables instead of JSON, local times to the second.

Shared by the apps' admins; values are escaped by ``format_html``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

PERIOD_NAMES = {
    "sharp": _("sharp (尖)"),
    "peak": _("peak (峰)"),
    "flat": _("flat (平)"),
    "valley": _("valley (谷)"),
}


def period_name(name: str) -> str:
    """尖/峰/平/谷 for a tariff period's JSON name; other names as written."""
    label = PERIOD_NAMES.get(name)
    return str(label) if label is not None else name


def local_seconds(value) -> str:
    """``2026-11-30 14:05:09`` in the active (operator's) time zone; ``-`` for none."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def html_table(headers: Sequence, rows: Iterable[Sequence], foot: Sequence | None = None,
               css_class: str = "readable") -> SafeString:
    """A plain table: ``headers`` and each row are sequences of cells (text or safe HTML)."""
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((c,) for c in row)),) for row in rows),
    )
    tfoot = ""
    if foot is not None:
        tfoot = format_html("<tfoot><tr>{}</tr></tfoot>",
                            format_html_join("", "<th>{}</th>", ((c,) for c in foot)))
    return format_html('<table class="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody>{}</table>',
                       css_class, head, body, tfoot)


class TotalsMixin:
    """A totals row under a change list: the sums of everything the filters select, not
    just the page. ``totals`` maps a numeric field to its label; fields in ``totals_money``
    show as yuan. (import-export keeps this template as its base.)"""

    change_list_template = "admin/change_list_totals.html"
    totals: dict = {}
    totals_money: tuple = ()
    totals_count_label = _("count")

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        cl = context.get("cl")
        if cl is not None:
            sums = cl.queryset.aggregate(_count=Count("pk"), **{f: Sum(f) for f in self.totals})
            rows = [(self.totals_count_label, sums["_count"])]
            for field, label in self.totals.items():
                value = sums[field] or 0
                rows.append((label, f"¥{value:.2f}" if field in self.totals_money else f"{value:.4f}"))
            context["totals"] = rows
        return response
