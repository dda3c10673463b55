"""Admin: the money policy, ledger accounts (a member's wallet with its ledger), postings,
the member page (wallet balances, recent orders, top-ups and refunds); split rules (with a
worked example), owner contracts, order splits, statements (confirm, pay, export XLSX/PDF)
and payouts.

The member page lives here, above ``accounts`` in the dependency order, because it shows
money; orders and payments are read through the member's reverse relations.
"""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from accounts.admin import MemberAdmin as BaseMemberAdmin
from accounts.models import Member
from evplatform.admin_display import html_table, local_seconds
from evplatform.admin_export import ScopedExportMixin
from evplatform.admin_readonly import ReadOnlyAdminMixin
from stations import selectors as station_selectors

from . import exports, selectors, splits, statements, withdrawals
from .models import (
    Account,
    Entry,
    Hold,
    MoneyPolicy,
    OrderSplit,
    OwnerContract,
    OwnerWithdrawal,
    Payout,
    Posting,
    SplitLine,
    SplitRule,
    SplitShare,
    Statement,
)

RECENT = 10


def _link(obj, label) -> str:
    meta = obj._meta
    try:
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return label
    return format_html('<a href="{}">{}</a>', url, label)


def _yuan(value) -> str:
    return f"¥{value:.2f}" if value is not None else "-"


admin.site.unregister(Member)


@admin.register(Member)
class MemberAdmin(BaseMemberAdmin):
    readonly_fields = [*BaseMemberAdmin.readonly_fields, "wallet", "recent_orders",
                       "recent_top_ups", "recent_refunds"]
    fieldsets = [
        (None, {"fields": ["nickname", "phone", "status", "openid", "unionid", "created_at",
                           "last_login_at"]}),
        (_("Wallet"), {"fields": ["wallet"]}),
        (_("Recent orders"), {"fields": ["recent_orders"]}),
        (_("Top-ups and refunds"), {"fields": ["recent_top_ups", "recent_refunds"]}),
    ]

    @admin.display(description=_("balances"))
    def wallet(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        b = selectors.wallet_balance(obj)
        return html_table(
            [_("cash"), _("bonus"), _("held for orders"), _("available"), _("arrears")],
            [[_yuan(b.cash), _yuan(b.bonus), _yuan(b.held), _yuan(b.available), _yuan(b.arrears)]],
        )

    @admin.display(description=_("orders"))
    def recent_orders(self, obj):
        orders = obj.orders.select_related("station").order_by("-created_at")[:RECENT] if obj.pk else []
        rows = [[_link(o, o.number), local_seconds(o.created_at), o.station.name,
                 o.get_state_display(), f"{o.energy_kwh:.2f}", _yuan(o.total_amount)]
                for o in orders]
        if not rows:
            return _("None yet.")
        return html_table([_("order number"), _("created"), _("station"), _("state"),
                           _("energy (kWh)"), _("total")], rows)

    @admin.display(description=_("top-ups"))
    def recent_top_ups(self, obj):
        payments = obj.payments.order_by("-created_at")[:RECENT] if obj.pk else []
        rows = [[_link(p, local_seconds(p.created_at)), p.get_purpose_display(),
                 p.get_status_display(), _yuan(p.amount)] for p in payments]
        if not rows:
            return _("None yet.")
        return html_table([_("created"), _("purpose"), _("status"), _("amount")], rows)

    @admin.display(description=_("refunds"))
    def recent_refunds(self, obj):
        refunds = obj.wallet_refunds.order_by("-created_at")[:RECENT] if obj.pk else []
        rows = [[_link(r, local_seconds(r.created_at)), r.get_status_display(), _yuan(r.amount)]
                for r in refunds]
        if not rows:
            return _("None yet.")
        return html_table([_("created"), _("status"), _("amount")], rows)


@admin.register(MoneyPolicy)
class MoneyPolicyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "min_top_up", "max_top_up", "refund_mode", "withdrawals_enabled", "updated_at"]

    def has_add_permission(self, request):
        return not MoneyPolicy.objects.exists()


class EntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Entry
    extra = 0
    fields = ["posting", "posting_kind", "posting_memo", "amount", "created"]
    readonly_fields = fields
    ordering = ["-id"]

    @admin.display(description=_("kind"))
    def posting_kind(self, obj):
        return obj.posting.get_kind_display()

    @admin.display(description=_("memo"))
    def posting_memo(self, obj):
        return obj.posting.memo or obj.posting.ref

    @admin.display(description=_("created"))
    def created(self, obj):
        return obj.posting.created_at


@admin.register(Account)
class AccountAdmin(ReadOnlyAdminMixin, ScopedExportMixin, admin.ModelAdmin):
    """A member's wallet: filter by member (search by openid/phone), open an account to see
    its ledger lines."""

    list_display = ["name", "kind", "member", "owner", "balance", "code_text"]
    list_display_links = ["name"]
    list_filter = ["kind"]
    search_fields = ["code", "member__openid", "member__phone", "member__nickname"]
    list_select_related = ["member", "owner"]
    inlines = [EntryInline]

    @admin.display(description=_("account"), ordering="kind")
    def name(self, obj):
        whose = obj.member or obj.owner
        return f"{obj.get_kind_display()} · {whose}" if whose else obj.get_kind_display()

    @admin.display(description=_("code"), ordering="code")
    def code_text(self, obj):
        return format_html("<code>{}</code>", obj.code)


class PostingEntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Entry
    extra = 0
    fields = ["account", "amount"]
    readonly_fields = fields


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdminMixin, ScopedExportMixin, admin.ModelAdmin):
    list_display = ["id", "kind", "member", "memo_or_ref", "created"]
    readonly_fields = ["key_text"]
    list_filter = ["kind", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["key", "ref", "memo", "member__openid", "member__phone"]
    date_hierarchy = "created_at"
    list_select_related = ["member"]
    inlines = [PostingEntryInline]

    @admin.display(description=_("memo"))
    def memo_or_ref(self, obj):
        return obj.memo or obj.ref

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, obj):
        return local_seconds(obj.created_at)

    @admin.display(description=_("idempotency key"), ordering="key")
    def key_text(self, obj):
        return format_html("<code>{}</code>", obj.key)


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["key", "member", "cash", "bonus", "status", "created_at", "closed_at"]
    list_filter = ["status"]
    search_fields = ["key", "member__openid"]


# --------------------------------------------------------------------------- revenue split
def _sees_all(request) -> bool:
    return station_selectors.sees_all_stations(request.user)


class SplitShareInline(admin.TabularInline):
    model = SplitShare
    extra = 1
    fields = ["owner", "kind", "value"]
    autocomplete_fields = []


class SplitRuleForm(forms.ModelForm):
    class Meta:
        model = SplitRule
        fields = ["station", "pile", "effective_from", "base", "fee_bearer", "payment_fee_percent",
                  "discounts_reduce_base", "profit_sharing", "note"]

    def clean(self):
        data = super().clean()
        pile, station = data.get("pile"), data.get("station")
        if pile and station and pile.station_id != station.pk:
            raise ValidationError({"pile": _("The pile is not at this station.")})
        return data


class SplitShareFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        shares = [
            splits.ShareInput(f.cleaned_data["owner"].pk, f.cleaned_data["kind"], f.cleaned_data["value"])
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE") and f.cleaned_data.get("owner")
        ]
        try:
            splits.split_rule_validate(shares=shares)
        except splits.SettlementError as exc:
            raise ValidationError(exc.detail) from None


SplitShareInline.formset = SplitShareFormSet


@admin.register(SplitRule)
class SplitRuleAdmin(admin.ModelAdmin):
    """Split rules are versioned: a saved rule is never edited (a change is saved as the next
    version, in force from its own date), so every order keeps the version it started under."""

    form = SplitRuleForm
    inlines = [SplitShareInline]
    list_display = ["__str__", "station", "pile", "version", "effective_from", "base", "fee_bearer",
                    "shares_summary"]
    list_filter = ["base", "fee_bearer"]
    search_fields = ["station__name", "pile__code", "note"]
    readonly_fields = ["version", "worked_example"]
    list_select_related = ["station", "pile"]

    def get_queryset(self, request):
        qs = super().get_queryset(request).prefetch_related("shares__owner")
        if _sees_all(request):
            return qs
        return qs.filter(station__in=station_selectors.stations_visible_to(request.user))

    def has_change_permission(self, request, obj=None):
        # Versions are immutable; "save as new" writes the next version.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return [*SplitRuleForm.Meta.fields, "version", "worked_example"]
        return self.readonly_fields

    @admin.display(description=_("shares"))
    def shares_summary(self, obj):
        return "; ".join(str(s) for s in obj.shares.all())

    @admin.display(description=_("worked example"))
    def worked_example(self, obj):
        commission = splits.commission_percent()
        if obj is None or obj.pk is None:
            return _("Save the rule to see a worked example (40 kWh, electricity ¥32.00, service "
                     "¥24.00, discount ¥2.00, paid ¥54.00; platform commission %(c)s%%).") % {"c": commission}
        figures = splits.split_compute(
            rule=obj, paid=Decimal("54.00"), electricity=Decimal("32.00"), service=Decimal("24.00"),
            discount=Decimal("2.00"), energy_kwh=Decimal("40"), commission=commission,
        )
        owners = {s.owner_id: s.owner for s in obj.shares.all()}
        rows = [(_("Platform commission (%(c)s%%)") % {"c": commission}, figures.commission)]
        rows += [(str(owners[oid]), amount) for oid, amount in figures.owner_parts().items()]
        rows.append((_("Operator (the rest, with the remainder fen)"), figures.parts["operator"]))
        return format_html(
            "<p>{}</p><table><tr><th>{}</th><td>¥{}</td></tr><tr><th>{}</th><td>¥{}</td></tr>"
            "<tr><th>{}</th><td>¥{}</td></tr>{}</table>",
            _("An order of 40 kWh: electricity ¥32.00 + service ¥24.00, discount ¥2.00, paid ¥54.00."),
            _("Payment fee"), figures.payment_fee, _("Split base"), figures.base,
            _("Sum of the parts"), sum(figures.parts.values()),
            format_html_join("", "<tr><td>{}</td><td>¥{}</td></tr>", rows),
        )

    def save_model(self, request, obj, form, change):
        # Written in save_related, through the service (the next version number, under the
        # station's lock, with its shares validated together).
        return

    def save_related(self, request, form, formsets, change):
        shares = [
            splits.ShareInput(f.cleaned_data["owner"].pk, f.cleaned_data["kind"], f.cleaned_data["value"])
            for formset in formsets for f in formset.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE") and f.cleaned_data.get("owner")
        ]
        data = form.cleaned_data
        rule = splits.split_rule_create(
            station_id=data["station"].pk, pile_id=data["pile"].pk if data.get("pile") else None,
            effective_from=data["effective_from"], base=data["base"], fee_bearer=data["fee_bearer"],
            payment_fee_percent=data["payment_fee_percent"],
            discounts_reduce_base=data["discounts_reduce_base"], shares=shares, note=data["note"],
            profit_sharing=data.get("profit_sharing", False),
            user=request.user,
        )
        form.instance.pk = rule.pk
        form.instance.version = rule.version

    def construct_change_message(self, request, form, formsets, add=False):
        # The shares were written by the service, not by the formsets.
        return [{"added": {}}]


@admin.register(OwnerContract)
class OwnerContractAdmin(admin.ModelAdmin):
    list_display = ["owner", "cycle", "delay_days", "method", "real_name"]
    list_filter = ["cycle", "method"]
    search_fields = ["owner__username", "real_name"]


@admin.register(OrderSplit)
class OrderSplitAdmin(ReadOnlyAdminMixin, ScopedExportMixin, admin.ModelAdmin):
    list_display = ["order_ref", "station", "rule", "energy_kwh", "gross", "base", "commission",
                    "owners_total", "operator_part", "refunded", "settled_at"]
    list_filter = [("settled_at", admin.DateFieldListFilter)]
    search_fields = ["order_ref"]
    list_select_related = ["station", "rule"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if _sees_all(request):
            return qs
        return qs.filter(station__in=station_selectors.stations_visible_to(request.user))


class SplitLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SplitLine
    extra = 0
    fields = ["occurred_at", "kind", "split", "refund", "amount"]
    readonly_fields = fields


class PayoutInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Payout
    extra = 0
    fields = ["out_bill_no", "method", "amount", "status", "reference", "fail_reason", "finished_at"]
    readonly_fields = fields


class OfflinePayForm(forms.Form):
    reference = forms.CharField(label=_("bank transfer reference"), max_length=64)


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Statements: built by the periodic job (or "build due statements"), confirmed by the
    operator, then paid by WeChat transfer or recorded as an offline bank transfer. Station
    owners see only their own."""

    list_display = ["number", "owner", "period_start", "period_end", "orders", "energy_kwh",
                    "share", "adjustments", "net", "status", "exports"]
    list_filter = ["status"]
    search_fields = ["number", "owner__username"]
    list_select_related = ["owner"]
    inlines = [SplitLineInline, PayoutInline]
    actions = ["confirm", "pay_wechat", "build_due"]
    readonly_fields = ["number", "owner", "period_start", "period_end", "status", "orders",
                       "energy_kwh", "gross", "discounts", "refunds", "payment_fees", "commission",
                       "share", "adjustments", "net", "confirmed_by", "confirmed_at", "paid_at",
                       "exports"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if _sees_all(request) else qs.filter(owner=request.user)

    def has_settle_permission(self, request):
        return request.user.has_perm("settlement.settle_statement")

    def has_export_permission(self, request, obj=None):
        """A statement's XLSX/PDF: ``settlement.export_statement`` and seeing it."""
        return (self.has_view_permission(request, obj)
                and request.user.has_perm("settlement.export_statement"))

    @admin.display(description=_("export"))
    def exports(self, obj):
        base = reverse("admin:settlement_statement_export", args=[obj.pk, "xlsx"])
        pdf = reverse("admin:settlement_statement_export", args=[obj.pk, "pdf"])
        return format_html('<a href="{}">XLSX</a> · <a href="{}">PDF</a>', base, pdf)

    def _each(self, request, queryset, call, done):
        count = 0
        for statement in queryset:
            try:
                call(statement)
                count += 1
            except splits.SettlementError as exc:
                self.message_user(request, f"{statement.number}: {exc.detail}", messages.ERROR)
        if count:
            self.message_user(request, done % {"n": count}, messages.SUCCESS)

    @admin.action(description=_("Confirm the selected statements"), permissions=["settle"])
    def confirm(self, request, queryset):
        self._each(request, queryset,
                   lambda s: statements.statement_confirm(statement_id=s.pk, user=request.user),
                   _("%(n)s statement(s) confirmed."))

    @admin.action(description=_("Pay by WeChat Pay merchant transfer"), permissions=["settle"])
    def pay_wechat(self, request, queryset):
        self._each(request, queryset,
                   lambda s: statements.statement_pay_wechat(statement_id=s.pk, user=request.user),
                   _("%(n)s payout(s) sent to WeChat Pay."))

    @admin.action(description=_("Build the statements that are due"), permissions=["settle"])
    def build_due(self, request, queryset):
        built = statements.statements_build_due()
        self.message_user(request, _("%(n)s statement(s) built.") % {"n": len(built)}, messages.SUCCESS)

    def get_urls(self):
        urls = [
            path("<int:pk>/export/<str:fmt>/", self.admin_site.admin_view(self.export_view),
                 name="settlement_statement_export"),
            path("<int:pk>/pay-offline/", self.admin_site.admin_view(self.pay_offline_view),
                 name="settlement_statement_pay_offline"),
        ]
        return urls + super().get_urls()

    def export_view(self, request, pk: int, fmt: str):
        statement = self.get_queryset(request).filter(pk=pk).first()
        if statement is None or fmt not in ("xlsx", "pdf"):
            raise Http404
        if not self.has_export_permission(request, statement):
            raise PermissionDenied
        if fmt == "xlsx":
            body, kind = exports.statement_xlsx(statement), (
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        else:
            body, kind = exports.statement_pdf(statement), "application/pdf"
        response = HttpResponse(body, content_type=kind)
        response["Content-Disposition"] = f'attachment; filename="{statement.number}.{fmt}"'
        return response

    def pay_offline_view(self, request, pk: int):
        statement = self.get_queryset(request).filter(pk=pk).first()
        if statement is None or not self.has_settle_permission(request):
            raise PermissionDenied
        form = OfflinePayForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                statements.statement_pay_offline(
                    statement_id=pk, reference=form.cleaned_data["reference"], user=request.user
                )
            except splits.SettlementError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
            else:
                self.message_user(request, _("The bank transfer is recorded."), messages.SUCCESS)
            return redirect("admin:settlement_statement_change", pk)
        context = {**self.admin_site.each_context(request), "form": form, "statement": statement,
                   "title": _("Record an offline bank transfer"), "opts": self.model._meta}
        return TemplateResponse(request, "admin/settlement/statement/pay_offline.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        extra_context["pay_offline_url"] = reverse("admin:settlement_statement_pay_offline", args=[object_id])
        extra_context["can_settle"] = self.has_settle_permission(request)
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["out_bill_no", "statement", "withdrawal", "method", "amount", "status",
                    "reference", "created_at", "finished_at"]
    list_filter = ["method", "status"]
    search_fields = ["out_bill_no", "reference", "statement__number", "withdrawal__number"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if _sees_all(request) else qs.filter(
            Q(statement__owner=request.user) | Q(withdrawal__owner=request.user)
        )


class WithdrawalRejectForm(forms.Form):
    reason = forms.CharField(label=_("reason"), max_length=200)


@admin.register(OwnerWithdrawal)
class OwnerWithdrawalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Station owners' withdrawals: approved (two different people above the money policy's
    threshold), rejected with a reason, or, for owners paid by bank, recorded as paid with
    the transfer's reference. Owners see only their own and cannot approve them."""

    list_display = ["number", "owner", "amount", "method", "status", "two_person",
                    "first_approver", "second_approver", "requested_at", "finished_at"]
    list_filter = ["status", "method", "two_person"]
    search_fields = ["number", "owner__username", "reference"]
    list_select_related = ["owner", "first_approver", "second_approver"]
    actions = ["approve"]
    readonly_fields = [f.name for f in OwnerWithdrawal._meta.fields]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if _sees_all(request) else qs.filter(owner=request.user)

    def has_approve_permission(self, request):
        return request.user.has_perm("settlement.approve_owner_withdrawal")

    @admin.action(description=_("Approve the selected withdrawals"), permissions=["approve"])
    def approve(self, request, queryset):
        done = 0
        for withdrawal in queryset:
            try:
                withdrawals.withdrawal_approve(withdrawal_id=withdrawal.pk, user=request.user)
                done += 1
            except splits.SettlementError as exc:
                self.message_user(request, f"{withdrawal.number}: {exc.detail}", messages.ERROR)
        if done:
            self.message_user(request, _("%(n)s approval(s) recorded.") % {"n": done}, messages.SUCCESS)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/reject/", view(self.reject_view), name="settlement_ownerwithdrawal_reject"),
            path("<int:pk>/pay-offline/", view(self.pay_offline_view),
                 name="settlement_ownerwithdrawal_pay_offline"),
        ] + super().get_urls()

    def _form_view(self, request, pk, form_class, call, done, title):
        withdrawal = self.get_queryset(request).filter(pk=pk).first()
        if withdrawal is None or not self.has_approve_permission(request):
            raise PermissionDenied
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                call(withdrawal, form.cleaned_data)
            except splits.SettlementError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
            else:
                self.message_user(request, done, messages.SUCCESS)
            return redirect("admin:settlement_ownerwithdrawal_change", pk)
        context = {**self.admin_site.each_context(request), "form": form, "withdrawal": withdrawal,
                   "title": title, "opts": self.model._meta}
        return TemplateResponse(request, "admin/settlement/ownerwithdrawal/form.html", context)

    def reject_view(self, request, pk: int):
        return self._form_view(
            request, pk, WithdrawalRejectForm,
            lambda w, data: withdrawals.withdrawal_reject(
                withdrawal_id=w.pk, user=request.user, reason=data["reason"]),
            _("The withdrawal is rejected; the amount is back in the owner's payable."),
            _("Reject a withdrawal"),
        )

    def pay_offline_view(self, request, pk: int):
        return self._form_view(
            request, pk, OfflinePayForm,
            lambda w, data: withdrawals.withdrawal_pay_offline(
                withdrawal_id=w.pk, user=request.user, reference=data["reference"]),
            _("The bank transfer is recorded."), _("Record an offline bank transfer"),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        if self.has_approve_permission(request):
            extra_context["reject_url"] = reverse("admin:settlement_ownerwithdrawal_reject", args=[object_id])
            extra_context["pay_offline_url"] = reverse(
                "admin:settlement_ownerwithdrawal_pay_offline", args=[object_id])
        return super().change_view(request, object_id, form_url, extra_context)
