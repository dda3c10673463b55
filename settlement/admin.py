"""Admin: the money policy, ledger accounts (a member's wallet with its ledger), postings."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin

from .models import Account, Entry, Hold, MoneyPolicy, Posting


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

    list_display = ["code", "kind", "member", "owner", "balance"]
    list_filter = ["kind"]
    search_fields = ["code", "member__openid", "member__phone", "member__nickname"]
    list_select_related = ["member", "owner"]
    inlines = [EntryInline]


class PostingEntryInline(ReadOnly, admin.TabularInline):
    model = Entry
    extra = 0
    fields = ["account", "amount"]
    readonly_fields = fields


@admin.register(Posting)
class PostingAdmin(ReadOnly, ExportMixin, admin.ModelAdmin):
    list_display = ["id", "kind", "key", "member", "ref", "memo", "created_at"]
    list_filter = ["kind", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["key", "ref", "memo", "member__openid", "member__phone"]
    date_hierarchy = "created_at"
    list_select_related = ["member"]
    inlines = [PostingEntryInline]


@admin.register(Hold)
class HoldAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["key", "member", "cash", "bonus", "status", "created_at", "closed_at"]
    list_filter = ["status"]
    search_fields = ["key", "member__openid"]
