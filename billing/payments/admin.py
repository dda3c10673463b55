"""Admin for payments, refunds and withdrawals: filters, export, review with a reason."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts import audit
from evplatform.admin_display import TotalsMixin
from evplatform.admin_export import ScopedExportMixin
from evplatform.admin_readonly import ReadOnlyAdminMixin

from . import services
from .models import (
    BillCheck,
    BillMismatch,
    Payment,
    PaymentRefund,
    TopUpOffer,
    WalletRefund,
    Withdrawal,
)

__all__ = ["PaymentAdmin", "WalletRefundAdmin", "PaymentRefundAdmin", "WithdrawalAdmin", "TopUpOfferAdmin"]


class ReviewForm(ActionForm):
    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)


@admin.register(TopUpOffer)
class TopUpOfferAdmin(admin.ModelAdmin):
    list_display = ["pay_amount", "bonus_amount", "active", "created_at"]
    list_filter = ["active"]


class PaymentRefundInline(admin.TabularInline):
    model = PaymentRefund
    fk_name = "payment"
    extra = 0
    can_delete = False
    readonly_fields = ["out_refund_no", "amount", "status", "wechat_status", "refund_id", "created_at", "finished_at"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(TotalsMixin, ReadOnlyAdminMixin, ScopedExportMixin, admin.ModelAdmin):
    totals = {"amount": _("amount (yuan)"), "bonus": _("bonus"),
              "refunded_amount": _("refunded")}
    totals_money = ("amount", "bonus", "refunded_amount")
    list_display = [
        "out_trade_no", "member", "purpose", "status", "amount", "bonus", "refunded_amount",
        "flagged", "created_at", "paid_at",
    ]
    list_filter = ["status", "purpose", "flagged", "prepay_state", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["out_trade_no", "transaction_id", "order_ref", "member__openid", "member__phone"]
    date_hierarchy = "created_at"
    list_select_related = ["member"]
    inlines = [PaymentRefundInline]
    actions = ["query_wechat"]

    def has_sync_permission(self, request):
        # Asking WeChat changes the payment's state: the change permission (the admin
        # itself is read-only, so Django's has_change_permission is always False).
        return request.user.has_perm("billing.change_payment")

    @admin.action(description=_("Ask WeChat for the state now"), permissions=["sync"])
    def query_wechat(self, request, queryset):
        for payment in queryset.filter(status=Payment.Status.PENDING):
            services.payment_sync(payment=payment)
        self.message_user(request, _("Queried."), messages.SUCCESS)


@admin.register(PaymentRefund)
class PaymentRefundAdmin(ReadOnlyAdminMixin, ScopedExportMixin, admin.ModelAdmin):
    list_display = ["out_refund_no", "payment", "wallet_refund", "amount", "status", "wechat_status", "created_at", "finished_at"]
    list_filter = ["status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["out_refund_no", "refund_id", "payment__out_trade_no"]
    list_select_related = ["payment", "wallet_refund"]


class ReviewMixin:
    action_form = ReviewForm
    actions = ["approve", "reject"]

    def _review(self, request, queryset, approve: bool):
        reason = request.POST.get("reason", "")
        if not approve and not reason:
            self.message_user(request, _("Give a reason to reject."), messages.ERROR)
            return
        done = 0
        for obj in queryset:
            try:
                with transaction.atomic():
                    self.review(obj, approve=approve, reviewer=request.user, note=reason)
                    audit.record(request.user, "refund.review", obj, detail=(
                        _("approved") if approve else _("rejected: %(reason)s") % {
                            "reason": reason})[:200])
                done += 1
            except services.BillingError as exc:
                self.message_user(request, f"{obj}: {exc.detail}", messages.WARNING)
        self.message_user(request, _("%(n)d reviewed.") % {"n": done}, messages.SUCCESS)

    def has_review_permission(self, request):
        """Approving or rejecting needs the model's change permission (the admin itself is
        read-only: Django's has_change_permission is always False here)."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description=_("Approve selected (reason optional)"), permissions=["review"])
    def approve(self, request, queryset):
        self._review(request, queryset, True)

    @admin.action(description=_("Reject selected (reason required)"), permissions=["review"])
    def reject(self, request, queryset):
        self._review(request, queryset, False)


@admin.register(WalletRefund)
class WalletRefundAdmin(ReviewMixin, ReadOnlyAdminMixin, ScopedExportMixin, admin.ModelAdmin):
    list_display = ["id", "member", "amount", "bonus_forfeited", "status", "created_at", "reviewed_by", "finished_at"]
    list_filter = ["status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["member__openid", "member__phone", "member__nickname"]
    list_select_related = ["member", "reviewed_by"]

    def review(self, obj, **kwargs):
        services.wallet_refund_review(refund=obj, **kwargs)


@admin.register(Withdrawal)
class WithdrawalAdmin(ReviewMixin, ReadOnlyAdminMixin, ScopedExportMixin, admin.ModelAdmin):
    list_display = ["out_bill_no", "member", "amount", "status", "wechat_state", "created_at", "reviewed_by", "finished_at"]
    list_filter = ["status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["out_bill_no", "transfer_bill_no", "member__openid", "member__phone"]
    list_select_related = ["member", "reviewed_by"]

    def review(self, obj, **kwargs):
        services.withdrawal_review(withdrawal=obj, **kwargs)


class BillMismatchInline(admin.TabularInline):
    model = BillMismatch
    extra = 0
    can_delete = False
    fields = ["kind", "business", "out_trade_no", "out_refund_no", "transaction_id", "bill_amount",
              "our_amount", "action"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class DayForm(ActionForm):
    day = forms.DateField(label=_("bill date"), required=False, help_text=_("YYYY-MM-DD"))


@admin.register(BillCheck)
class BillCheckAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """WeChat Pay trade bills (payments, refunds) and fund-flow bills (every movement of the
    merchant's money) matched against our records, one row per day and bill,
    with each difference and what to do. Checked daily for yesterday; "check again" re-runs
    the selected days (or the date given)."""

    list_display = ["bill_date", "bill_type", "status", "bill_lines", "bill_paid", "ledger_paid",
                    "bill_refunded", "ledger_refunded", "bill_paid_out", "ledger_paid_out",
                    "bill_fees", "differences", "checked_at"]
    list_filter = ["bill_type", "status"]
    inlines = [BillMismatchInline]
    actions = ["check_again"]
    action_form = DayForm

    @admin.display(description=_("differences"))
    def differences(self, obj):
        return obj.mismatches.count()

    @admin.action(description=_("Check the bill again (the selected days, or the date given)"), permissions=["review"])
    def check_again(self, request, queryset):
        days = [c.bill_date for c in queryset]
        if request.POST.get("day"):
            form = DayForm(request.POST)
            if form.is_valid() and form.cleaned_data["day"]:
                days.append(form.cleaned_data["day"])
        for day in sorted(set(days)):
            for check in (services.bill_reconcile(day=day), services.fundflow_reconcile(day=day)):
                level = messages.SUCCESS if check.status in ("matched", "no_bill") else messages.WARNING
                self.message_user(request, f"{check}: {check.get_status_display()}", level)

    def has_review_permission(self, request):
        """The actions change state: the model's change permission (the admin itself is
        read-only, so Django's has_change_permission is always False here)."""
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")
