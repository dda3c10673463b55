from axes.models import AccessAttempt, AccessFailureLog
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth.models import Group, User
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from evplatform.admin_sites import StaffGroupAdmin, StaffUserAdmin

from .models import Member, MemberSession
from .services import member_sessions_revoke

# Staff users and role groups of the operator, with permissions named in Chinese.
admin.site.unregister(User)
admin.site.unregister(Group)
admin.site.register(User, StaffUserAdmin)
admin.site.register(Group, StaffGroupAdmin)


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    """Members (drivers); the page with their wallet and orders is ``settlement.admin``'s."""

    list_display = ["id", "nickname", "phone", "fleet", "status", "created_at", "last_login_at"]
    list_filter = ["status"]
    search_fields = ["openid", "unionid", "phone", "nickname"]
    readonly_fields = ["openid", "unionid", "created_at", "last_login_at"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not obj.is_active:  # a disabled member's sign-ins end now, not at their expiry
            member_sessions_revoke(member=obj, reason=MemberSession.Revoked.MEMBER_DISABLED)


class LoginRecordAdmin(admin.ModelAdmin):
    """django-axes' records read in the operator's words: who, from where, when; deleting a
    lockout (登录尝试) unlocks that user or address at once. axes' own admin is off
    (``AXES_ENABLE_ADMIN = False``): its titles are English sentences from ``__str__``."""

    search_fields = ["username", "ip_address"]
    list_filter = ["attempt_time"]
    list_display_links = None
    readonly_fields = ["username", "ip_address", "user_agent", "path_info", "attempt_time"]

    def record_title(self, obj) -> str:
        return _("%(username)s from %(ip)s at %(time)s") % {
            "username": obj.username or "-", "ip": obj.ip_address or "-",
            "time": timezone.localtime(obj.attempt_time).strftime("%Y-%m-%d %H:%M:%S"),
        }

    @admin.display(description=mark_safe('<input type="checkbox" id="action-toggle">'))
    def action_checkbox(self, obj):
        attrs = {"class": "action-select", "aria-label": self.record_title(obj)}
        return helpers.checkbox.render(helpers.ACTION_CHECKBOX_NAME, str(obj.pk), attrs)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = {"subtitle": self.record_title(obj)} if obj is not None else {}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AccessAttempt)
class AccessAttemptAdmin(LoginRecordAdmin):
    list_display = ["username", "ip_address", "failures_since_start", "attempt_time", "path_info"]
    readonly_fields = LoginRecordAdmin.readonly_fields + ["failures_since_start"]


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(LoginRecordAdmin):
    list_display = ["username", "ip_address", "locked_out", "attempt_time", "path_info"]
    list_filter = ["attempt_time", "locked_out"]
    readonly_fields = LoginRecordAdmin.readonly_fields + ["locked_out"]
