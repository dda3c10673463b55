from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from import_export import resources

from accounts import audit
from evplatform.admin_display import TotalsMixin, local_seconds
from evplatform.admin_export import ScopedExportMixin
from stations import selectors as station_selectors
from stations.admin import VisibleStationFilter

from . import services
from .admin_display import bill_table, reason_in_words, roaming_bill_table, tariff_table
from .models import (
    ChargingOrder,
    ChargingPolicy,
    MemberCredential,
    MeterSample,
    OrderTransition,
    PowerPlan,
    QueueEntry,
    RecordPeriod,
    Reservation,
    RoamingOrder,
    StopReason,
    TransactionRecord,
)


class OrderResource(resources.ModelResource):
    class Meta:
        model = ChargingOrder
        fields = (
            "number", "state", "mode", "member__id", "station__name", "pile__code",
            "connector__number", "trade_no", "created_at", "started_at", "stopped_at",
            "settled_at", "energy_kwh", "electricity_amount", "service_amount",
            "occupancy_amount", "discount_amount", "total_amount", "paid_amount",
            "refunded_amount", "pile_amount", "stop_reason", "pile_stop_code",
            "amount_mismatch", "abnormal", "pile_initiated",
        )
        export_order = fields


class TransitionInline(admin.TabularInline):
    model = OrderTransition
    extra = 0
    can_delete = False
    readonly_fields = ["at_seconds", "from_state", "to_state", "actor", "reason_words"]
    fields = readonly_fields

    @admin.display(description=_("time"))
    def at_seconds(self, obj):
        return local_seconds(obj.at)

    @admin.display(description=_("reason"))
    def reason_words(self, obj):
        return reason_in_words(obj.reason)

    def has_add_permission(self, request, obj=None):
        return False


class SampleInline(admin.TabularInline):
    model = MeterSample
    extra = 0
    can_delete = False
    readonly_fields = ["at_seconds", "energy_kwh", "amount_yuan", "power_kw", "voltage_v", "current_a", "soc_percent"]
    fields = readonly_fields

    @admin.display(description=_("time"))
    def at_seconds(self, obj):
        return local_seconds(obj.at)

    def has_add_permission(self, request, obj=None):
        return False


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200)


class RefundForm(ReasonForm):
    amount = forms.DecimalField(label=_("Amount (yuan)"), max_digits=10, decimal_places=2, min_value=0.01)


def _owned(request, qs, path="station"):
    """Station owners see only what hangs off their own stations (operator admins: all)."""
    if station_selectors.sees_all_stations(request.user):
        return qs
    return qs.filter(**{f"{path}__in": station_selectors.stations_visible_to(request.user)})


class PileStillChargingFilter(admin.SimpleListFilter):
    """Orders no longer active whose pile's latest readings still show their session
    charging: a stop that never arrived (re-send it with the action)."""

    title = _("pile still charging")
    parameter_name = "pile_still_charging"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes: order ended, pile still charging"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=services.orders_pile_still_charging())
        return queryset


class ReviewFilter(admin.SimpleListFilter):
    """Orders with a reason for staff to look: all of them, or only those held (priced,
    not charged) until someone approves or rejects them."""

    title = _("needs review")
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("held", _("Held: awaiting approval"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(review_reason="")
        if self.value() == "held":
            return queryset.filter(state="review")
        return queryset


@admin.register(ChargingOrder)
class ChargingOrderAdmin(TotalsMixin, ScopedExportMixin, admin.ModelAdmin):
    resource_classes = [OrderResource]
    list_display = [
        "number", "state", "station", "member", "energy_kwh", "total_amount", "created", "flags",
    ]
    list_filter = [
        "state", PileStillChargingFilter, ReviewFilter, "abnormal", "amount_mismatch",
        "pile_initiated", "mode", VisibleStationFilter, ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["number", "trade_no", "pile__code", "member__phone", "member__openid"]
    list_select_related = ["station", "pile", "connector__pile", "member"]
    date_hierarchy = "created_at"
    inlines = [TransitionInline, SampleInline]
    actions = ["force_stop", "resend_stop"]
    totals = {"energy_kwh": _("energy (kWh)"), "total_amount": _("total"),
              "paid_amount": _("paid"), "refunded_amount": _("refunded")}
    totals_money = ("total_amount", "paid_amount", "refunded_amount")
    # Read-only with actions: staff never edit an order, they stop, settle or refund it.
    fieldsets = [
        (None, {"fields": ["review_box", "number", "state", "station", "pile", "connector",
                           "member", "mode", "trade_no", "frame_log"]}),
        (_("Times"), {"fields": ["created_at", "started_at", "stopped_at", "settled_at",
                                 "departure_at", "unplugged_at"]}),
        (_("Energy and money"), {"fields": [
            "energy_kwh", "meter_start_kwh", "meter_stop_kwh", "soc_start", "soc_end",
            "bill_lines", "total_amount", "discount_amount", "paid_amount", "refunded_amount",
            "pile_amount", "amount_mismatch", "occupancy_amount", "occupancy_state",
            "unplug_basis"]}),
        (_("Tariff at the start"), {"fields": ["tariff"]}),
        (_("How it ended"), {"fields": ["stop_reason", "pile_stop_code", "abnormal",
                                        "pile_initiated", "card_no", "vin", "review_reason"]}),
        (_("Stop commands"), {"fields": ["stop_attempts", "stop_sent_at", "stop_result",
                                         "stop_confirmed_at"]}),
    ]
    readonly_fields = ["review_box", "frame_log", "bill_lines", "tariff"] + [
        f.name for f in ChargingOrder._meta.fields
    ]

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, obj):
        return local_seconds(obj.created_at)

    @admin.display(description=_("to check"))
    def flags(self, obj):
        words = [label for flag, label in (
            (obj.abnormal, _("abnormal")), (obj.amount_mismatch, _("amount differs from pile")),
            (bool(obj.review_reason), _("needs review")),
        ) if flag]
        return format_html('<span class="order-flag">{}</span>', "、".join(map(str, words))) if words else ""

    @admin.display(description=_("needs review"))
    def review_box(self, obj):
        """Why staff must look at the order, and whether money waits on them."""
        if not obj.review_reason:
            return "-"
        held = (_("Held: priced, nothing charged until approved or rejected.")
                if obj.state == "review" else "")
        return format_html('<div class="order-review"><strong>{}</strong> {}</div>',
                           obj.review_reason, held)

    @admin.display(description=_("bill"))
    def bill_lines(self, obj):
        return bill_table(obj.bill)

    @admin.display(description=_("tariff snapshot"))
    def tariff(self, obj):
        return tariff_table(obj.tariff_snapshot)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}), "show_save": False,
                         "order_actions": self.order_actions(request, obj),
                         "show_save_and_continue": False, "show_save_and_add_another": False,
                         "show_delete": False}
        return super().change_view(request, object_id, form_url, extra_context)


    def get_queryset(self, request):
        return _owned(request, super().get_queryset(request))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def order_actions(self, request, obj) -> list[tuple[str, str]]:
        """(label, url) of what this user may do to the order now. Settling by hand and
        refunding are operator admins' (the money is the operator's); owners only look."""
        if obj is None or not station_selectors.sees_all_stations(request.user):
            return []
        if obj.state == "abnormal":
            return [(_("Settle by hand"), reverse("admin:charging_chargingorder_settle", args=[obj.pk]))]
        if obj.state == "review":
            return [
                (_("Approve and charge"), reverse("admin:charging_chargingorder_approve", args=[obj.pk])),
                (_("Reject: charge nothing"), reverse("admin:charging_chargingorder_reject", args=[obj.pk])),
            ]
        if obj.state == "settled" and obj.mode == "wallet" and obj.paid_amount > obj.refunded_amount:
            return [(_("Refund part"), reverse("admin:charging_chargingorder_refund", args=[obj.pk]))]
        return []

    @admin.display(description=_("Frame log"))
    def frame_log(self, obj):
        try:
            url = reverse("admin:protocols_framelog_changelist")
        except Exception:
            return "-"
        pile = format_html('<a href="{}?pile_code={}">{}</a>', url, obj.pile.code,
                           _("Frames of this pile"))
        if not obj.trade_no:
            return pile
        return format_html('{} · <a href="{}?q={}">{}</a>', pile, url, obj.trade_no,
                           _("Frames of this session"))

    @admin.action(description=_("Force stop"), permissions=["change"])
    def force_stop(self, request, queryset):
        done = 0
        for order in queryset:
            try:
                with transaction.atomic():
                    services.order_stop(
                        order_id=order.pk, actor=OrderTransition.Actor.STAFF,
                        actor_id=request.user.pk, reason=StopReason.PLATFORM,
                    )
                    audit.record(request.user, "order.force_stop", order,
                                 changes={"state": [order.state, "stopping"]})
                done += 1
            except services.OrderRefused as exc:
                self.message_user(request, f"{order.number}: {exc.detail}", messages.WARNING)
        self.message_user(request, _("Stop sent to %(n)d orders.") % {"n": done}, messages.SUCCESS)

    @admin.action(description=_("Re-send stop (pile still charging)"), permissions=["change"])
    def resend_stop(self, request, queryset):
        charging = set(services.orders_pile_still_charging())
        sent = 0
        for order in queryset:
            if order.pk not in charging:
                self.message_user(
                    request,
                    _("%(number)s: its pile does not report this session charging.")
                    % {"number": order.number},
                    messages.WARNING,
                )
                continue
            services.order_stop_resend(order_id=order.pk, user=request.user)
            sent += 1
        self.message_user(request, _("Stop re-sent for %(n)d orders.") % {"n": sent}, messages.SUCCESS)

    def get_urls(self):
        return [
            path(
                "<int:order_id>/settle/",
                self.admin_site.admin_view(self.settle_view),
                name="charging_chargingorder_settle",
            ),
            path(
                "<int:order_id>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="charging_chargingorder_approve",
            ),
            path(
                "<int:order_id>/reject/",
                self.admin_site.admin_view(self.reject_view),
                name="charging_chargingorder_reject",
            ),
            path(
                "<int:order_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="charging_chargingorder_refund",
            ),
        ] + super().get_urls()

    def _staff_action(self, request, order_id: int, form_class, act, *, title, explain, done):
        """An order action that needs a form (reason, amount): GET shows it, POST runs it."""
        order = self.get_object(request, str(order_id))
        if order is None or not self.has_change_permission(request, order):
            return redirect("admin:charging_chargingorder_changelist")
        if not station_selectors.sees_all_stations(request.user):
            raise PermissionDenied  # the same rule that hides the buttons
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                act(order, form.cleaned_data)
                self.message_user(request, done, messages.SUCCESS)
            except services.OrderRefused as exc:
                self.message_user(request, exc.detail, messages.ERROR)
            return redirect("admin:charging_chargingorder_change", order.pk)
        context = {**self.admin_site.each_context(request), "order": order, "form": form,
                   "title": title, "explain": explain}
        return render(request, "admin/charging/order_action.html", context)

    def settle_view(self, request, order_id: int):
        return self._staff_action(
            request, order_id, ReasonForm,
            lambda order, data: services.order_settle_by_staff(
                order_id=order.pk, user=request.user, reason=data["reason"]
            ),
            title=_("Settle abnormal order"),
            explain=_("No record will come from the pile: the member pays what the last readings show."),
            done=_("Order settled."),
        )

    def approve_view(self, request, order_id: int):
        return self._staff_action(
            request, order_id, ReasonForm,
            lambda order, data: services.order_review_approve(
                order_id=order.pk, user=request.user, reason=data["reason"]
            ),
            title=_("Approve an order under review"),
            explain=_("The member is charged the bill shown on the order (nothing, if nobody "
                      "started it here); the order is settled."),
            done=_("Order approved and settled."),
        )

    def reject_view(self, request, order_id: int):
        return self._staff_action(
            request, order_id, ReasonForm,
            lambda order, data: services.order_review_reject(
                order_id=order.pk, user=request.user, reason=data["reason"]
            ),
            title=_("Reject an order under review"),
            explain=_("Nothing is charged: the member's reserved balance or prepayment goes back; "
                      "the pile's figures stay on the order."),
            done=_("Order rejected: nothing charged."),
        )

    def refund_view(self, request, order_id: int):
        return self._staff_action(
            request, order_id, RefundForm,
            lambda order, data: services.order_refund_partial(
                order_id=order.pk, amount=data["amount"], user=request.user, reason=data["reason"]
            ),
            title=_("Refund part of an order"),
            explain=_("The amount goes back to the member's wallet."),
            done=_("Refunded."),
        )


class RecordPeriodInline(admin.TabularInline):
    model = RecordPeriod
    extra = 0
    can_delete = False
    readonly_fields = ["period", "energy_kwh", "amount_yuan"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TransactionRecord)
class TransactionRecordAdmin(admin.ModelAdmin):
    list_display = ["trade_no", "pile_code", "connector_no", "energy_kwh", "pile_amount_yuan",
                    "stop_reason", "received_at", "duplicates", "order"]
    search_fields = ["trade_no", "pile_code"]
    readonly_fields = [f.name for f in TransactionRecord._meta.fields]
    inlines = [RecordPeriodInline]

    def get_queryset(self, request):
        return _owned(request, super().get_queryset(request), "order__station")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MeterSample)
class MeterSampleAdmin(admin.ModelAdmin):
    """Every connector's sampled readings (what the gateways kept), newest first; station
    owners see their own stations' piles only."""

    list_display = ["at_seconds", "pile_code", "connector_no", "status_label", "trade_no",
                    "voltage_v", "current_a", "power_kw", "energy_kwh", "amount_yuan",
                    "soc_percent"]
    list_filter = ["status"]
    search_fields = ["=pile_code", "=trade_no"]
    date_hierarchy = "at"
    ordering = ["-at", "-id"]
    show_full_result_count = False

    def get_queryset(self, request):
        from stations.models import Pile

        qs = super().get_queryset(request)
        if station_selectors.sees_all_stations(request.user):
            return qs
        visible = station_selectors.stations_visible_to(request.user)
        return qs.filter(pile_code__in=Pile.objects.filter(station__in=visible).values("code"))

    @admin.display(description=_("time"), ordering="at")
    def at_seconds(self, obj):
        return timezone.localtime(obj.at).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description=_("status"), ordering="status")
    def status_label(self, obj):
        from stations.models import Connector

        values = Connector.Status.values
        return Connector.Status(obj.status).label if obj.status in values else obj.status

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ["id", "member", "connector", "state", "fee", "created_at", "expires_at"]
    list_filter = ["state"]

    def get_queryset(self, request):
        return _owned(request, super().get_queryset(request), "connector__pile__station")


@admin.register(QueueEntry)
class QueueEntryAdmin(admin.ModelAdmin):
    """Staff see each station's queue in order and can take a driver out or offer free
    connectors now (the queue lives in the database: it survives restarts)."""

    list_display = ["id", "station", "member", "kind", "state", "joined_at", "offered_at",
                    "offer_expires", "ended_at", "end_reason"]
    list_filter = ["state", "kind", VisibleStationFilter]
    search_fields = ["member__phone", "member__nickname", "station__name"]
    ordering = ["station", "joined_at"]
    raw_id_fields = ["member", "reservation"]
    readonly_fields = ["station", "member", "kind", "state", "joined_at", "offered_at",
                       "reservation", "ended_at", "end_reason"]
    actions = ["remove_from_queue", "offer_now"]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return _owned(request, super().get_queryset(request).select_related(
            "station", "member", "reservation"))

    @admin.display(description=_("offer expires"))
    def offer_expires(self, obj):
        if obj.state != QueueEntry.State.OFFERED or obj.reservation is None:
            return "-"
        return local_seconds(obj.reservation.expires_at)

    @admin.action(description=_("Take out of the queue"), permissions=["change"])
    def remove_from_queue(self, request, queryset):
        done = 0
        for entry in queryset.filter(state__in=QueueEntry.OPEN):
            services.queue_leave(entry=entry)
            done += 1
        self.message_user(request, _("%(n)d taken out of the queue.") % {"n": done})

    @admin.action(description=_("Offer free connectors now"), permissions=["change"])
    def offer_now(self, request, queryset):
        offered = 0
        for station_id in set(queryset.values_list("station_id", flat=True)):
            offered += len(services.queue_offer(station_id=station_id))
        self.message_user(request, _("%(n)d connectors offered.") % {"n": offered})


@admin.register(PowerPlan)
class PowerPlanAdmin(admin.ModelAdmin):
    """Each re-plan of a station's power limit: the caps asked, what each pile took."""

    list_display = ["at", "station", "reason", "limit_kw", "total_kw", "assumed_kw", "piles"]
    list_filter = [VisibleStationFilter]
    readonly_fields = ["station", "at", "reason", "limit_kw", "total_kw", "assumed_kw",
                       "caps_table", "unserved"]
    exclude = ["caps"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return _owned(request, super().get_queryset(request).select_related("station"))

    @admin.display(description=_("piles"))
    def piles(self, obj):
        return len(obj.caps)

    @admin.display(description=_("caps"))
    def caps_table(self, obj):
        from django.utils.html import format_html_join

        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("pile"), _("cap asked (kW)"), _("may draw (kW)"), _("answer"),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
                (row["pile"], row.get("cap_kw") or "-", row.get("believed_kw") or "-",
                 _("not sent") if not row.get("sent") else (_("taken") if row.get("ok")
                                                            else row.get("error")))
                for row in obj.caps)),
        )


@admin.register(MemberCredential)
class MemberCredentialAdmin(admin.ModelAdmin):
    list_display = ["value", "kind", "member", "enabled", "created_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["value", "member__phone"]
    raw_id_fields = ["member"]


@admin.register(ChargingPolicy)
class ChargingPolicyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return not ChargingPolicy.objects.exists()


@admin.register(RoamingOrder)
class RoamingOrderAdmin(admin.ModelAdmin):
    """Our members' charges on interconnection partners' piles (read-only: the partner's
    notifications and bill write them). Operator staff only: no station of ours is
    involved, so station owners see none."""

    list_display = ["number", "member", "partner_name", "station_name", "state", "energy_kwh",
                    "total_amount", "paid_amount", "dispute", "created_at"]
    list_filter = ["state", "partner_name"]
    search_fields = ["number", "seq", "member__phone", "connector_code"]
    # The partner's bill as a table; its JSON as received stays on the row, not on the page.
    exclude = ["bill", "bill_lines"]
    readonly_fields = [f.name for f in RoamingOrder._meta.fields
                       if f.name not in ("bill", "bill_lines")] + ["bill_table"]

    @admin.display(description=_("bill lines"))
    def bill_table(self, obj):
        return roaming_bill_table(obj.bill_lines)

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("member")
        return queryset if station_selectors.sees_all_stations(request.user) else queryset.none()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
