"""The invoice as a PDF for the driver (reportlab, A5 landscape), in Chinese.

Drawn from our record of what the provider issued (number, date, lines, tax); the legally
binding original is the provider's (``Invoice.pdf_url``), which the document names. Chinese
text uses reportlab's built-in ``STSong-Light`` CID font (no font file needed).
"""

from __future__ import annotations

import io
from decimal import Decimal

from django.utils import timezone
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A5, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from .models import Invoice, InvoiceSettings

FONT = "STSong-Light"
_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ["", "拾", "佰", "仟"]
_GROUPS = ["", "万", "亿"]

__all__ = ["invoice_pdf", "amount_in_words"]


def amount_in_words(amount: Decimal) -> str:
    """人民币大写 of ``amount`` yuan (2 dp), e.g. 12.30 → 壹拾贰圆叁角整; negative: (负数)."""
    negative = amount < 0
    fen_total = int((abs(amount) * 100).to_integral_value())
    yuan_part, jiao, fen = fen_total // 100, fen_total // 10 % 10, fen_total % 10
    words = ""
    if yuan_part:
        groups, g = [], 0
        while yuan_part:
            groups.append((yuan_part % 10000, g))
            yuan_part //= 10000
            g += 1
        parts = []
        for value, g in reversed(groups):
            text, zero = "", False
            for i in range(3, -1, -1):
                d = value // 10**i % 10
                if d:
                    if zero and text:
                        text += "零"
                    text += _DIGITS[d] + _UNITS[i]
                    zero = False
                else:
                    zero = True
            if text:
                if parts and value < 1000:
                    parts.append("零")
                parts.append(text + _GROUPS[g])
        words = "".join(parts) + "圆"
    if jiao:
        words += _DIGITS[jiao] + "角"
    elif fen and words:
        words += "零"
    if fen:
        words += _DIGITS[fen] + "分"
    words = (words or "零圆") + ("" if fen else "整")
    return ("(负数)" if negative else "") + words


def _font() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def invoice_pdf(invoice: Invoice, seller: InvoiceSettings, *, link: str = "") -> bytes:
    """The PDF bytes of an issued invoice. ``link``: where the QR code points (the request)."""
    _font()
    buffer = io.BytesIO()
    width, height = landscape(A5)
    c = Canvas(buffer, pagesize=(width, height))
    red = invoice.kind == Invoice.Kind.RED
    c.setTitle(f"{invoice.invoice_no or invoice.number}")
    c.setFont(FONT, 16)
    c.setFillColor(colors.darkred if red else colors.black)
    title = "电子发票（普通发票）" + ("  销项负数" if red else "")
    c.drawCentredString(width / 2, height - 16 * mm, title)
    c.setFillColor(colors.black)
    c.setFont(FONT, 9)
    issued = timezone.localtime(invoice.issued_at).strftime("%Y年%m月%d日") if invoice.issued_at else ""
    right = width - 12 * mm
    c.drawRightString(right, height - 24 * mm, f"发票号码：{invoice.invoice_no}")
    c.drawRightString(right, height - 29 * mm, f"开票日期：{issued}")
    c.drawString(12 * mm, height - 24 * mm, f"申请单号：{invoice.number}")
    if invoice.status == Invoice.Status.REVERSED:
        c.setFillColor(colors.red)
        c.drawString(12 * mm, height - 29 * mm, "本发票已红冲")
        c.setFillColor(colors.black)

    y = height - 38 * mm
    c.rect(10 * mm, y - 16 * mm, width - 20 * mm, 18 * mm)
    c.line(width / 2, y - 16 * mm, width / 2, y + 2 * mm)
    buyer = [f"购买方名称：{invoice.title_name}", f"统一社会信用代码/纳税人识别号：{invoice.tax_number or '—'}"]
    sell = [f"销售方名称：{seller.seller_name}", f"统一社会信用代码/纳税人识别号：{seller.seller_tax_number}"]
    for i, (b, s) in enumerate(zip(buyer, sell, strict=True)):
        c.drawString(12 * mm, y - 4 * mm - i * 6 * mm, b)
        c.drawString(width / 2 + 2 * mm, y - 4 * mm - i * 6 * mm, s)

    y -= 24 * mm
    cols = [12, 62, 100, 120, 150, 172]
    heads = ["项目名称", "税收分类编码", "税率", "金额", "税额", "价税合计"]
    for x, head in zip(cols, heads, strict=True):
        c.drawString(x * mm, y, head)
    c.line(10 * mm, y - 2 * mm, width - 10 * mm, y - 2 * mm)
    for line in invoice.lines.all():
        y -= 6 * mm
        rate = f"{(line.tax_rate * 100).normalize()}%"
        values = [f"*{line.goods_name}*", line.goods_code, rate, f"{line.amount_ex_tax}",
                  f"{line.tax}", f"{line.amount}"]
        for x, value in zip(cols, values, strict=True):
            c.drawString(x * mm, y, str(value))
    y -= 4 * mm
    c.line(10 * mm, y, width - 10 * mm, y)
    y -= 6 * mm
    c.drawString(12 * mm, y, "合计")
    c.drawString(120 * mm, y, f"¥{invoice.amount_ex_tax}")
    c.drawString(150 * mm, y, f"¥{invoice.tax}")
    y -= 6 * mm
    c.drawString(12 * mm, y, f"价税合计（大写）：{amount_in_words(invoice.total)}")
    c.drawString(150 * mm, y, f"（小写）¥{invoice.total}")
    y -= 8 * mm
    orders = ", ".join(invoice.orders.values_list("order_number", flat=True)) if not red else ""
    remark = invoice.remark or (f"充电订单：{orders}" if orders else "")
    c.drawString(12 * mm, y, f"备注：{remark}"[:90])
    c.setFont(FONT, 7)
    c.setFillColor(colors.grey)
    c.drawString(12 * mm, 10 * mm, "本文件依据税务平台开具结果生成，原件以税务平台发票为准。")
    if invoice.pdf_url:
        c.drawString(12 * mm, 6 * mm, f"原件：{invoice.pdf_url}"[:120])
    if link:
        qr = QrCodeWidget(link)
        x0, y0, x1, y1 = qr.getBounds()
        size = 22 * mm
        drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
        drawing.add(qr)
        renderPDF.draw(drawing, c, width - 34 * mm, 6 * mm)
    c.showPage()
    c.save()
    return buffer.getvalue()
