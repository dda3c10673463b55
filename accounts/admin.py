from django.contrib import admin

from .models import Member


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["id", "nickname", "phone", "status", "created_at", "last_login_at"]
    list_filter = ["status"]
    search_fields = ["openid", "unionid", "phone", "nickname"]
    readonly_fields = ["openid", "unionid", "created_at", "last_login_at"]
