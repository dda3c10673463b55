"""Operator admin: the pile frame log and session messages (read-only; meter samples are
``charging``'s).

A pile's frame log is ``admin:protocols_framelog_changelist`` with ``?pile_code=<code>``
(the pile admin links there by URL name; nothing imports this module). Frame types show
by the protocol document's names (``protocols.ykc.names``), times to the second in the
operator's zone, and a frame's page decodes its fields beside the hex. Station owners see
the frames and messages of their own stations' piles only (asked of the domain through
charging's port: :class:`port.VisiblePilesQuery`, :class:`port.PilesQuery`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from enum import Enum

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from charging import handlers, port

from .models import FrameLog, SessionMessage
from .ykc.errors import FrameError
from .ykc.frame import decode_frame
from .ykc.names import FRAME_NAMES, frame_name


def _visible_pile_codes(user):
    """Codes of the piles ``user`` may see, or None for all (operator admins)."""
    visible = handlers.handle(port.VisiblePilesQuery(user))
    return None if visible.sees_all else [pile.pile_code for pile in visible.piles]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        codes = _visible_pile_codes(request.user)
        return qs if codes is None else qs.filter(pile_code__in=codes)


def local_seconds(value) -> str:
    """``2026-11-30 14:05:09`` in the operator's zone (the admin's default drops seconds)."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


class PileFilter(admin.SimpleListFilter):
    """By pile: the piles the user may see (the URL may also carry ``?pile_code=``)."""

    title = _("pile")
    parameter_name = "pile_code"

    def lookups(self, request, model_admin):
        piles = handlers.handle(port.VisiblePilesQuery(request.user)).piles
        return [(p.pile_code, f"{p.pile_code} {p.name}".strip()) for p in piles[:500]]

    def queryset(self, request, queryset):
        return queryset.filter(pile_code=self.value()) if self.value() else queryset


class FrameTypeFilter(admin.SimpleListFilter):
    title = _("frame type")
    parameter_name = "frame_type"

    def lookups(self, request, model_admin):
        return [(str(code), f"0x{code:02X} {name}") for code, name in FRAME_NAMES.items()]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(frame_type=int(self.value()))
        return queryset


def _pile_link(code: str):
    piles = handlers.handle(port.PilesQuery(pile_codes=(code,)))
    if not piles:
        return code
    try:
        return format_html('<a href="{}">{}</a>',
                           reverse("admin:stations_pile_change", args=[piles[0].pile_id]), code)
    except NoReverseMatch:
        return code


def _field_value(value) -> str:
    if isinstance(value, Enum):
        return f"{value.name} ({value.value:#04x})" if isinstance(value.value, int) else value.name
    if dataclasses.is_dataclass(value):
        return ", ".join(f"{k}={_field_value(v)}" for k, v in dataclasses.asdict(value).items())
    if isinstance(value, (list, tuple)):
        return "; ".join(_field_value(v) for v in value)
    return str(value)


def _is_ocpp(obj) -> bool:
    """A YKC frame starts with 0x68; an OCPP-J message is JSON text (or what a pile sent
    instead of it)."""
    return not obj.hex.startswith("68")


@admin.register(FrameLog)
class FrameLogAdmin(ReadOnlyAdmin):
    list_display = ["at_seconds", "pile", "direction", "frame_code", "short_hex"]
    list_filter = [PileFilter, "direction", FrameTypeFilter]
    search_fields = ["=pile_code", "=trade_no"]
    date_hierarchy = "at"
    list_per_page = 100
    show_full_result_count = False  # counting a big log is slow
    fields = ["at_seconds", "pile", "direction", "frame_code", "trade_no", "record_review",
              "hex", "decoded"]
    readonly_fields = fields

    @admin.display(description=_("how the record was billed"))
    def record_review(self, obj):
        """For a transaction record (YKC 0x3B): its order, and why it is held for review or
        billed by time of day, as the domain judged it (charging's port)."""
        if obj.frame_type != 0x3B or not obj.trade_no:
            return "-"
        review = handlers.handle(port.RecordReviewQuery(obj.trade_no))
        if review is None:
            return _("Not stored (not acknowledged to the pile).")
        if review.order_id is None:
            return _("Stored, not settled yet.")
        try:
            url = reverse("admin:charging_chargingorder_change", args=[review.order_id])
        except NoReverseMatch:
            url = ""
        parts = [format_html('<a href="{}">{}</a> {}', url, review.order_number, review.state)]
        if review.review_reason:
            parts.append(format_html("<strong>{}</strong>: {}", _("needs review"),
                                     review.review_reason))
        if review.billed_by_time_because:
            parts.append(format_html("{}: {}", _("billed by time of day"),
                                     review.billed_by_time_because))
        return format_html_join("", "<p>{}</p>", ((p,) for p in parts))

    @admin.display(description=_("time"), ordering="at")
    def at_seconds(self, obj):
        return local_seconds(obj.at)

    @admin.display(description=_("pile"), ordering="pile_code")
    def pile(self, obj):
        return _pile_link(obj.pile_code)

    @admin.display(description=_("frame type"), ordering="frame_type")
    def frame_code(self, obj):
        if _is_ocpp(obj):  # OCPP-J: the message type id and the action
            return format_html("<code>[{}]</code> {}", obj.frame_type, obj.name)
        return format_html("<code>{}</code> {}", f"0x{obj.frame_type:02X}", frame_name(obj.frame_type))

    @admin.display(description=_("frame (hex)"))
    def short_hex(self, obj):
        text = obj.hex if len(obj.hex) <= 48 else obj.hex[:48] + "…"
        return format_html('<code title="{}">{}</code>', obj.hex, text)

    @admin.display(description=_("decoded fields"))
    def decoded(self, obj):
        """The frame decoded again from its hex (YKC v1.6 codec): one row per field; an
        OCPP message is shown as its JSON text."""
        if _is_ocpp(obj):
            text = bytes.fromhex(obj.hex).decode("utf-8", "replace")
            with contextlib.suppress(ValueError):
                text = json.dumps(json.loads(text), ensure_ascii=False, indent=2)
            return format_html('<pre class="decoded">{}</pre>', text)
        try:
            message = decode_frame(bytes.fromhex(obj.hex)).message
        except (ValueError, FrameError) as exc:
            return format_html("{}: {}", _("Cannot decode this frame"), exc)
        if not dataclasses.is_dataclass(message):
            return "-"
        rows = [(f.name, _field_value(getattr(message, f.name)))
                for f in dataclasses.fields(message)]
        return format_html(
            '<table class="decoded"><tbody>{}</tbody></table>',
            format_html_join("", "<tr><th><code>{}</code></th><td><code>{}</code></td></tr>", rows),
        )


@admin.register(SessionMessage)
class SessionMessageAdmin(ReadOnlyAdmin):
    list_display = ["trade_no", "at_seconds", "pile_code", "connector_no", "frame_code"]
    list_filter = [PileFilter]
    search_fields = ["=trade_no", "=pile_code"]
    show_full_result_count = False

    @admin.display(description=_("time"), ordering="at")
    def at_seconds(self, obj):
        return local_seconds(obj.at)

    @admin.display(description=_("message"), ordering="frame_type")
    def frame_code(self, obj):
        return format_html("<code>{}</code> {}", f"0x{obj.frame_type:02X}", frame_name(obj.frame_type))


from protocols.cec import admin as _cec_admin  # noqa: E402, F401  (partners, push log)
