"""Operator admin for marketing: coupon templates (figures, grant to a segment), coupons,
SVIP plans and purchases, points rules, accounts and entries, the points mall and its
fulfilment, scratch-card campaigns with prizes, point-card batches (generate + XLSX,
activate, void), and a statistics page for coupons, SVIP and points."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Member
from evplatform.errors import DomainError
from settlement.models import Account

from . import cards, coupons, mall, sms, svip
from .models import (
    Coupon,
    CouponPurchase,
    CouponTemplate,
    MallItem,
    MallRedemption,
    PointCard,
    PointCardBatch,
    PointsAccount,
    PointsEntry,
    PointsRule,
    Referral,
    ReferralProgram,
    ScratchCampaign,
    ScratchCard,
    ScratchPrize,
    SmsCampaign,
    SmsConsent,
    SmsMessage,
    SmsSettings,
    SmsTemplate,
    SvipPlan,
    SvipPurchase,
    TopUpReward,
)


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SegmentForm(forms.Form):
    SEGMENTS = [
        ("all", _("All members")),
        ("svip", _("SVIP members")),
        ("balance", _("Wallet balance above (yuan)")),
        ("phones", _("A list of phone numbers")),
    ]
    segment = forms.ChoiceField(label=_("audience"), choices=SEGMENTS)
    balance = forms.DecimalField(label=_("balance above (yuan)"), required=False, min_value=Decimal("0"))
    phones = forms.CharField(label=_("phone numbers (one a line)"), required=False, widget=forms.Textarea)


def segment_members(segment: str, *, balance=None, phones: str = ""):
    """Members of an audience: all, SVIP now, wallet cash + bonus above ``balance``, a phone list."""
    members = Member.objects.all()
    if segment == "svip":
        now = timezone.now()
        return members.filter(svip_purchases__status="paid", svip_purchases__starts_at__lte=now,
                              svip_purchases__ends_at__gt=now).distinct()
    if segment == "balance":
        kinds = (Account.Kind.WALLET_CASH, Account.Kind.WALLET_BONUS)
        return members.annotate(b=Sum("ledger_accounts__balance", filter=Q(ledger_accounts__kind__in=kinds))).filter(
            b__gt=balance or 0)
    if segment == "phones":
        return members.filter(phone__in=[p.strip() for p in phones.splitlines() if p.strip()])
    return members


@admin.register(CouponTemplate)
class CouponTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "claimable", "price", "active", "issued", "used", "spent", "budget",
                    "total_quantity"]
    list_filter = ["kind", "active", "claimable", "first_charge_reward"]
    search_fields = ["name"]
    filter_horizontal = ["stations"]
    readonly_fields = ["issued", "spent"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_used=Count("coupons", filter=Q(coupons__status=Coupon.Status.USED)))

    @admin.display(description=_("used (orders driven)"), ordering="n_used")
    def used(self, obj):
        return obj.n_used

    def get_urls(self):
        return [
            path("<int:pk>/grant/", self.admin_site.admin_view(self.grant_view), name="marketing_coupontemplate_grant"),
            path("statistics/", self.admin_site.admin_view(self.statistics_view), name="marketing_statistics"),
            *super().get_urls(),
        ]

    def grant_view(self, request, pk: int):
        """Staff grant one coupon to each member of an audience."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        template = CouponTemplate.objects.get(pk=pk)
        form = SegmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            members = segment_members(form.cleaned_data["segment"], balance=form.cleaned_data["balance"],
                                      phones=form.cleaned_data["phones"])
            granted, skipped = coupons.coupon_grant_many(template_id=template.pk, members=members.iterator())
            self.message_user(request, _("Granted %(g)d coupons; %(s)d members skipped (limit or stock).")
                              % {"g": granted, "s": skipped}, messages.SUCCESS)
            return redirect(reverse("admin:marketing_coupontemplate_change", args=[pk]))
        context = {**self.admin_site.each_context(request), "form": form, "template": template,
                   "title": _("Grant %(name)s to an audience") % {"name": template.name}, "opts": self.model._meta}
        return TemplateResponse(request, "admin/marketing/grant.html", context)

    def statistics_view(self, request):
        now = timezone.now()
        coupon_rows = CouponTemplate.objects.annotate(
            n_used=Count("coupons", filter=Q(coupons__status=Coupon.Status.USED)),
            n_available=Count("coupons", filter=Q(coupons__status=Coupon.Status.AVAILABLE, coupons__valid_until__gt=now)),
        ).order_by("-issued")
        paid = SvipPurchase.objects.filter(status=SvipPurchase.Status.PAID)
        svip_figures = {
            "active_members": paid.filter(starts_at__lte=now, ends_at__gt=now).values("member").distinct().count(),
            "sales": paid.aggregate(s=Sum("amount"))["s"] or Decimal("0.00"),
            "purchases": paid.count(),
            "refunded": SvipPurchase.objects.filter(status=SvipPurchase.Status.REFUNDED).count(),
            "discounts": paid.aggregate(s=Sum("discount_total"))["s"] or Decimal("0.00"),
        }
        by_kind = dict(PointsEntry.objects.values_list("kind").annotate(s=Sum("points")).values_list("kind", "s"))
        points_figures = [(label, by_kind.get(kind, 0)) for kind, label in PointsEntry.Kind.choices]
        outstanding = PointsAccount.objects.aggregate(s=Sum("balance"))["s"] or 0
        context = {
            **self.admin_site.each_context(request), "title": _("Marketing statistics"), "opts": self.model._meta,
            "coupon_rows": coupon_rows, "svip": svip_figures, "points_figures": points_figures,
            "points_outstanding": outstanding,
            "promotion_expense": Account.objects.filter(kind=Account.Kind.PROMOTION).values_list("balance", flat=True).first() or Decimal("0.00"),
        }
        return TemplateResponse(request, "admin/marketing/statistics.html", context)


@admin.register(Coupon)
class CouponAdmin(ReadOnly):
    list_display = ["id", "template", "member", "source", "status", "valid_until", "order_ref", "used_amount"]
    list_filter = ["status", "source", "template"]
    search_fields = ["order_ref", "member__phone", "member__nickname"]
    list_select_related = ["template", "member"]


@admin.register(SvipPlan)
class SvipPlanAdmin(admin.ModelAdmin):
    list_display = ["name", "months", "price", "service_discount_percent", "monthly_coupon", "monthly_coupon_count",
                    "priority_reservation", "active", "sold"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_sold=Count("purchases", filter=Q(purchases__status="paid")))

    @admin.display(description=_("sold"), ordering="n_sold")
    def sold(self, obj):
        return obj.n_sold


@admin.register(SvipPurchase)
class SvipPurchaseAdmin(ReadOnly):
    list_display = ["id", "member", "plan", "amount", "paid_with", "status", "starts_at", "ends_at", "discount_total",
                    "created_at"]
    list_filter = ["status", "paid_with", "plan"]
    list_select_related = ["member", "plan"]
    actions = ["refund"]

    def has_change_permission(self, request, obj=None):
        return obj is None and request.user.has_perm("marketing.change_svippurchase")

    @admin.action(description=_("Refund (unused, within the plan's window)"), permissions=["change"])
    def refund(self, request, queryset):
        for purchase in queryset:
            try:
                svip.svip_refund(purchase_id=purchase.pk)
            except DomainError as exc:
                self.message_user(request, f"#{purchase.pk}: {exc.detail}", messages.ERROR)


@admin.register(PointsRule)
class PointsRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "per_yuan", "per_kwh", "bonus_weekdays", "bonus_multiplier", "expire_months"]

    def has_add_permission(self, request):
        return not PointsRule.objects.exists()


@admin.register(CouponPurchase)
class CouponPurchaseAdmin(ReadOnly):
    list_display = ["id", "member", "template", "amount", "status", "coupon", "created_at", "paid_at"]
    list_filter = ["status"]
    list_select_related = ["member", "template", "coupon"]


@admin.register(TopUpReward)
class TopUpRewardAdmin(admin.ModelAdmin):
    list_display = ["min_amount", "coupon", "count", "active"]
    list_filter = ["active"]
    autocomplete_fields = ["coupon"]


@admin.register(ReferralProgram)
class ReferralProgramAdmin(admin.ModelAdmin):
    list_display = ["__str__", "active", "inviter_coupon", "inviter_points", "invitee_coupon", "min_first_order",
                    "max_rewards_per_month"]

    def has_add_permission(self, request):
        return not ReferralProgram.objects.exists() and super().has_add_permission(request)


@admin.register(Referral)
class ReferralAdmin(ReadOnly):
    list_display = ["id", "inviter", "invitee", "status", "reason", "order_ref", "created_at", "rewarded_at"]
    list_filter = ["status"]
    list_select_related = ["inviter", "invitee"]
    search_fields = ["inviter__phone", "invitee__phone", "order_ref"]


@admin.register(PointsAccount)
class PointsAccountAdmin(ReadOnly):
    list_display = ["member", "balance"]
    search_fields = ["member__phone", "member__nickname"]


@admin.register(PointsEntry)
class PointsEntryAdmin(ReadOnly):
    list_display = ["id", "account", "kind", "points", "balance_after", "ref", "expires_at", "created_at"]
    list_filter = ["kind"]
    search_fields = ["ref", "key"]


@admin.register(MallItem)
class MallItemAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "points", "stock", "active", "redeemed"]
    list_filter = ["kind", "active"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n=Count("redemptions"))

    @admin.display(description=_("redeemed"), ordering="n")
    def redeemed(self, obj):
        return obj.n


class FulfilForm(forms.Form):
    tracking_no = forms.CharField(label=_("tracking number"), max_length=40)


@admin.register(MallRedemption)
class MallRedemptionAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "member", "points", "status", "recipient", "phone", "address", "tracking_no", "created_at"]
    list_filter = ["status", "item"]
    list_editable = ["tracking_no"]
    readonly_fields = ["item", "member", "points", "status", "recipient", "phone", "address", "created_at"]
    actions = ["mark_shipped", "mark_delivered", "cancel"]

    def has_add_permission(self, request):
        return False

    def _move(self, request, queryset, status):
        for r in queryset:
            try:
                mall.mall_fulfil(redemption_id=r.pk, status=status, tracking_no=r.tracking_no)
            except DomainError as exc:
                self.message_user(request, f"#{r.pk}: {exc.detail}", messages.ERROR)

    @admin.action(description=_("Mark shipped (needs the tracking number)"), permissions=["change"])
    def mark_shipped(self, request, queryset):
        self._move(request, queryset, MallRedemption.Status.SHIPPED)

    @admin.action(description=_("Mark delivered"), permissions=["change"])
    def mark_delivered(self, request, queryset):
        self._move(request, queryset, MallRedemption.Status.DELIVERED)

    @admin.action(description=_("Cancel and return the points"), permissions=["change"])
    def cancel(self, request, queryset):
        self._move(request, queryset, MallRedemption.Status.CANCELLED)


class PrizeInline(admin.TabularInline):
    model = ScratchPrize
    extra = 1
    fields = ["name", "kind", "weight", "stock", "coupon", "points", "bonus", "cost"]


@admin.register(ScratchCampaign)
class ScratchCampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "starts_at", "ends_at", "budget", "spent", "given", "scratched", "won", "active"]
    inlines = [PrizeInline]
    readonly_fields = ["spent"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_given=Count("cards"), n_scratched=Count("cards", filter=Q(cards__scratched_at__isnull=False)),
            n_won=Count("cards", filter=Q(cards__prize__isnull=False)))

    @admin.display(description=_("cards given"), ordering="n_given")
    def given(self, obj):
        return obj.n_given

    @admin.display(description=_("scratched"), ordering="n_scratched")
    def scratched(self, obj):
        return obj.n_scratched

    @admin.display(description=_("won"), ordering="n_won")
    def won(self, obj):
        return obj.n_won


@admin.register(ScratchCard)
class ScratchCardAdmin(ReadOnly):
    list_display = ["id", "campaign", "member", "source_ref", "prize", "scratched_at", "created_at"]
    list_filter = ["campaign"]


@admin.register(PointCardBatch)
class PointCardBatchAdmin(admin.ModelAdmin):
    list_display = ["name", "face_value", "credit_as", "count", "status", "redeemed", "valid_until", "created_at"]
    list_filter = ["status", "credit_as"]
    readonly_fields = ["status"]
    actions = ["generate", "activate", "void"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n=Count("cards", filter=Q(cards__redeemed_at__isnull=False)))

    @admin.display(description=_("redeemed"), ordering="n")
    def redeemed(self, obj):
        return obj.n

    @admin.action(description=_("Generate the cards and download them for printing (XLSX, PINs shown once)"), permissions=["change"])
    def generate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose one batch."), messages.ERROR)
            return None
        batch = queryset.get()
        try:
            made = cards.batch_generate(batch_id=batch.pk)
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return None
        response = HttpResponse(cards.batch_xlsx(batch, made),
                                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        response["Content-Disposition"] = f'attachment; filename="point-cards-{batch.pk}.xlsx"'
        return response

    @admin.action(description=_("Activate"), permissions=["change"])
    def activate(self, request, queryset):
        for batch in queryset:
            try:
                cards.batch_set_status(batch_id=batch.pk, status=PointCardBatch.Status.ACTIVE)
            except DomainError as exc:
                self.message_user(request, f"{batch}: {exc.detail}", messages.ERROR)

    @admin.action(description=_("Void"), permissions=["change"])
    def void(self, request, queryset):
        for batch in queryset:
            cards.batch_set_status(batch_id=batch.pk, status=PointCardBatch.Status.VOID)


@admin.register(PointCard)
class PointCardAdmin(ReadOnly):
    list_display = ["number", "batch", "redeemed_by", "redeemed_at"]
    list_filter = ["batch"]
    search_fields = ["number"]
    exclude = ["pin_hash"]


@admin.register(SmsSettings)
class SmsSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "provider", "sdk_app_id", "sign_name", "price_per_message", "rate_per_second"]

    def has_add_permission(self, request):
        return not SmsSettings.objects.exists()

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.base_fields["secret_key"].widget = forms.PasswordInput(render_value=True)
        return form


@admin.register(SmsTemplate)
class SmsTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "template_id", "content"]


@admin.register(SmsCampaign)
class SmsCampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "template", "segment", "status", "total", "sent", "failed", "delivered", "progress",
                    "billed", "cost", "created_at"]
    list_filter = ["status", "segment"]
    readonly_fields = ["status", "total", "sent", "failed", "delivered", "billed", "cost", "started_at", "finished_at"]
    actions = ["send", "pull_receipts"]

    @admin.display(description=_("progress"))
    def progress(self, obj):
        return f"{sms.sms_progress(obj)['percent']}%"

    @admin.action(description=_("Send now"), permissions=["change"])
    def send(self, request, queryset):
        for campaign in queryset:
            try:
                started = sms.sms_campaign_start(campaign_id=campaign.pk)
            except DomainError as exc:
                self.message_user(request, f"{campaign}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, _("%(name)s: sending to %(n)d numbers.") % {"name": started.name, "n": started.total})

    @admin.action(description=_("Fetch delivery receipts"), permissions=["change"])
    def pull_receipts(self, request, queryset):
        self.message_user(request, _("%(n)d receipts recorded.") % {"n": sms.sms_pull_receipts()})


@admin.register(SmsMessage)
class SmsMessageAdmin(ReadOnly):
    list_display = ["phone", "campaign", "status", "fee", "serial_no", "error", "sent_at", "receipt_at"]
    list_filter = ["status", "campaign"]
    search_fields = ["phone", "serial_no"]


@admin.register(SmsConsent)
class SmsConsentAdmin(ReadOnly):
    list_display = ["member", "consented", "opted_out_at", "updated_at"]
    list_filter = ["consented"]
