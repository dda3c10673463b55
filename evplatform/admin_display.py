"""Small HTML pieces for admin pages: tables instead of JSON, local times to the second.

Shared by the apps' admins; values are escaped by ``format_html``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
