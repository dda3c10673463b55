"""A statement as a spreadsheet (XLSX, openpyxl) or a printable PDF (reportlab, with the
built-in STSong-Light CID font for Chinese, so no font file is needed). Amounts in yuan,
times in the operator's zone."""

from __future__ import annotations

import io

from django.utils.translation import gettext as _

from .models import SplitLine, Statement
from .statements import operator_zone, statement_period_stats


def _summary(statement: Statement) -> list[tuple[str, str]]:
    zone = operator_zone()
    stats = statement_period_stats(statement)
    rows = [
        (_("Statement"), statement.number),
        (_("Station owner"), statement.owner.get_full_name() or statement.owner.get_username()),
        (_("Period"), f"{statement.period_start.astimezone(zone):%Y-%m-%d %H:%M} – "
                      f"{statement.period_end.astimezone(zone):%Y-%m-%d %H:%M}"),
        (_("Status"), statement.get_status_display()),
        (_("Orders"), str(statement.orders)),
        (_("Energy (kWh)"), str(statement.energy_kwh)),
    ]
    rows += [(_("Energy, period %(period)s (kWh)") % {"period": k}, str(v))
             for k, v in stats.energy_by_period.items()]
    rows += [
        (_("Gross"), str(statement.gross)),
        (_("Discounts"), str(statement.discounts)),
        (_("Refunds"), str(statement.refunds)),
        (_("Payment fees"), str(statement.payment_fees)),
        (_("Platform commission"), str(statement.commission)),
        (_("Owner's share"), str(statement.share)),
        (_("Corrections and carried amounts"), str(statement.adjustments)),
        (_("Net payable"), str(statement.net)),
    ]
    return rows


def _lines(statement: Statement) -> list[list[str]]:
    zone = operator_zone()
    rows = []
    for line in statement.lines.select_related("split").order_by("occurred_at", "pk"):
        split = line.split
        rows.append([
            f"{line.occurred_at.astimezone(zone):%Y-%m-%d %H:%M}",
            line.get_kind_display(),
            split.order_ref if split else "",
            str(split.energy_kwh) if split and line.kind == SplitLine.Kind.SHARE else "",
            str(split.gross) if split and line.kind == SplitLine.Kind.SHARE else "",
            str(split.base) if split and line.kind == SplitLine.Kind.SHARE else "",
            str(line.refund) if line.kind == SplitLine.Kind.REVERSAL else "",
            str(line.amount),
        ])
    return rows


def _headers() -> list[str]:
    return [_("Time"), _("Kind"), _("Order"), _("Energy (kWh)"), _("Gross"), _("Split base"),
            _("Refund"), _("Amount")]


def statement_xlsx(statement: Statement) -> bytes:
    """The statement as an XLSX workbook: a summary sheet and a lines sheet."""
    from openpyxl import Workbook

    book = Workbook()
    summary = book.active
    summary.title = _("Summary")[:31]
    for row in _summary(statement):
        summary.append(list(row))
    sheet = book.create_sheet(_("Lines")[:31])
    sheet.append(_headers())
    for row in _lines(statement):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def statement_pdf(statement: Statement) -> bytes:
    """The statement as an A4 PDF (summary table, then every line)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    styles = getSampleStyleSheet()
    title = styles["Title"].clone("cjk-title", fontName=font)
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=statement.number)
    style = TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
    ])
    lines = Table([_headers(), *_lines(statement)], repeatRows=1)
    lines.setStyle(style)
    summary = Table([list(r) for r in _summary(statement)])
    summary.setStyle(style)
    doc.build([Paragraph(_("Settlement statement"), title), summary, Spacer(0, 12), lines])
    return out.getvalue()
