"""Two admin sites: the platform's (public host, super admins) and each operator's.

Operator models register on Django's default ``admin.site``, served only on operator
hosts; platform models (operators, mini-programs) register on ``platform_admin_site``,
served only on the public host, so no operator can ever browse another.
"""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import connection
from django.utils.translation import gettext_lazy as _
from django_tenants.utils import get_public_schema_name


class PlatformAdminSite(admin.AdminSite):
    site_header = _("Charging platform — super admin")
    site_title = _("Charging platform")
    index_title = _("Platform administration")

    def has_permission(self, request):
        return (
            connection.schema_name == get_public_schema_name()
            and request.user.is_active
            and request.user.is_superuser
        )


platform_admin_site = PlatformAdminSite(name="platform_admin")
platform_admin_site.register(User, UserAdmin)
platform_admin_site.register(Group, GroupAdmin)

admin.site.site_header = _("Charging operations")
admin.site.site_title = _("Charging operations")
admin.site.index_title = _("Operator administration")
# The home page: today's figures, trends and the station map above the app list.
admin.site.index_template = "analytics/admin_index.html"
