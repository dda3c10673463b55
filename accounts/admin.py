from django.contrib import admin

from .models import Member, MemberSession
from .services import member_sessions_revoke


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["id", "nickname", "phone", "status", "created_at", "last_login_at"]
    list_filter = ["status"]
    search_fields = ["openid", "unionid", "phone", "nickname"]
    readonly_fields = ["openid", "unionid", "created_at", "last_login_at"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not obj.is_active:  # a disabled member's sign-ins end now, not at their expiry
            member_sessions_revoke(member=obj, reason=MemberSession.Revoked.MEMBER_DISABLED)
