"""Printable QR labels: an A4 PDF sheet with one label per connector (station name, pile
code, connector number and the code a driver scans).

What the code encodes is the operator's choice (``OperatorSettings``): an ordinary link
(``qr_link_template``, default ``https://{host}/q/{code}``) drawn with ``qrcode``, or a
WeChat mini-program code from ``getwxacodeunlimit`` (page ``wxacode_page``, scene = the
connector code) when ``use_wxacode`` is on.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import qrcode
from django.db import connection
from django.utils.translation import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from .models import Connector, OperatorSettings

COLUMNS, ROWS = 3, 4
LABELS_PER_PAGE = COLUMNS * ROWS
FONT = "STSong-Light"  # a CID font every PDF reader has: Chinese without shipping a font


class LabelError(Exception):
    """A label's code could not be made (WeChat refused or was unreachable)."""


def qr_link(connector: Connector, settings_row: OperatorSettings, host: str) -> str:
    """The ordinary link a label encodes for ``connector``."""
    return settings_row.qr_link_template.format(host=host, code=connector.qr_code or connector.code)


def _operator_host() -> str:
    tenant = connection.tenant
    domain = tenant.domains.filter(is_primary=True).first() or tenant.domains.first()
    return domain.domain if domain else tenant.slug


def _qr_png(text: str) -> bytes:
    img = qrcode.make(text, border=1)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _wxacode_png(connector: Connector, settings_row: OperatorSettings) -> bytes:
    from accounts.wechat import client_for
    from tenants.models import MiniProgram

    mini_program = MiniProgram.objects.filter(operator_id=connection.tenant.pk).first()
    if mini_program is None:
        raise LabelError(_("This operator has no mini-program configured."))
    try:
        res = client_for(mini_program).wxa.get_wxa_code_unlimited(
            connector.qr_code or connector.code, width=430, page=settings_row.wxacode_page
        )
    except Exception as exc:  # wechatpy raises its own errors and requests' ones
        raise LabelError(_("WeChat did not make the mini-program code: %(e)s") % {"e": exc}) from exc
    content = getattr(res, "content", b"")
    if not content.startswith(b"\x89PNG"):
        raise LabelError(_("WeChat did not return an image."))
    return content


def label_image(connector: Connector, settings_row: OperatorSettings, host: str) -> bytes:
    """PNG bytes of the code on ``connector``'s label. Raises LabelError."""
    if settings_row.use_wxacode:
        return _wxacode_png(connector, settings_row)
    return _qr_png(qr_link(connector, settings_row, host))


def labels_pdf(connectors: Iterable[Connector]) -> bytes:
    """An A4 PDF, 3 × 4 labels a page, one per connector (``pile__station`` loaded), in the
    order given. Raises LabelError when a mini-program code cannot be made."""
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    settings_row = OperatorSettings.load()
    host = _operator_host()
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    pdf.setTitle(_("QR labels"))
    page_w, page_h = A4
    margin = 10 * mm
    cell_w = (page_w - 2 * margin) / COLUMNS
    cell_h = (page_h - 2 * margin) / ROWS
    qr_size = min(cell_w, cell_h) - 28 * mm
    count = 0
    for count, connector in enumerate(connectors, start=1):
        slot = (count - 1) % LABELS_PER_PAGE
        if slot == 0 and count > 1:
            pdf.showPage()
        col, row = slot % COLUMNS, slot // COLUMNS
        x = margin + col * cell_w
        y = page_h - margin - (row + 1) * cell_h
        pdf.setDash(2, 2)
        pdf.rect(x + 2, y + 2, cell_w - 4, cell_h - 4)  # cutting guide
        pdf.setDash()
        cx = x + cell_w / 2
        pdf.setFont(FONT, 11)
        pdf.drawCentredString(cx, y + cell_h - 9 * mm, connector.pile.station.name[:24])
        image = ImageReader(io.BytesIO(label_image(connector, settings_row, host)))
        pdf.drawImage(image, cx - qr_size / 2, y + 16 * mm, qr_size, qr_size)
        pdf.setFont(FONT, 9)
        pdf.drawCentredString(
            cx, y + 10 * mm, _("Pile %(code)s") % {"code": connector.pile.code}
        )
        pdf.setFont(FONT, 12)
        pdf.drawCentredString(
            cx, y + 4.5 * mm, _("Connector %(number)02d") % {"number": connector.number}
        )
    if count == 0:
        pdf.setFont(FONT, 12)
        pdf.drawString(margin, page_h - margin - 12, _("No connectors selected."))
    pdf.showPage()
    pdf.save()
    return buf.getvalue()
