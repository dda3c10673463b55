from django.contrib import admin
from django.contrib.auth.models import Group, User

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

    list_display = ["id", "nickname", "phone", "status", "created_at", "last_login_at"]
    list_filter = ["status"]
    search_fields = ["openid", "unionid", "phone", "nickname"]
    readonly_fields = ["openid", "unionid", "created_at", "last_login_at"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not obj.is_active:  # a disabled member's sign-ins end now, not at their expiry
            member_sessions_revoke(member=obj, reason=MemberSession.Revoked.MEMBER_DISABLED)
