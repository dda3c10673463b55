"""Admin: the money policy, ledger accounts (a member's wallet with its ledger), postings,
and the member page (wallet balances, recent orders, top-ups and refunds).

The member page lives here, above ``accounts`` in the dependency order, because it shows
money; orders and payments are read through the member's reverse relations.
"""

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin

from accounts.admin import MemberAdmin as BaseMemberAdmin
from accounts.models import Member
from evplatform.admin_display import html_table, local_seconds

from . import selectors
from .models import Account, Entry, Hold, MoneyPolicy, Posting

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


class ReadOnly:
    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MoneyPolicy)
class MoneyPolicyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "min_top_up", "max_top_up", "refund_mode", "withdrawals_enabled", "updated_at"]

    def has_add_permission(self, request):
        return not MoneyPolicy.objects.exists()


class EntryInline(ReadOnly, admin.TabularInline):
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
class AccountAdmin(ReadOnly, ExportMixin, admin.ModelAdmin):
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


class PostingEntryInline(ReadOnly, admin.TabularInline):
    model = Entry
    extra = 0
    fields = ["account", "amount"]
    readonly_fields = fields


@admin.register(Posting)
class PostingAdmin(ReadOnly, ExportMixin, admin.ModelAdmin):
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
class HoldAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["key", "member", "cash", "bonus", "status", "created_at", "closed_at"]
    list_filter = ["status"]
    search_fields = ["key", "member__openid"]
