"""Two admin sites: the platform's (public host, super admins) and each operator's.

Operator models register on Django's default ``admin.site``, served only on operator
hosts; platform models (operators, mini-programs) register on ``platform_admin_site``,
served only on the public host, so no operator can ever browse another.
"""

from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_tenants.utils import get_public_schema_name

# Django stores a permission's name in English when it creates it ("Can add pile"): the
# admin shows it in the reader's language from the codename and the model instead.
PERMISSION_VERBS = {
    "add": _("Can add %(model)s"),
    "change": _("Can change %(model)s"),
    "delete": _("Can delete %(model)s"),
    "view": _("Can view %(model)s"),
    "export": _("Can export %(model)s"),
}


def permission_label(perm: Permission) -> str:
    """``电站与充电桩 | 充电桩 | 可以添加 充电桩`` for ``stations.add_pile``."""
    content_type = perm.content_type
    model = content_type.model_class()
    verbose = model._meta.verbose_name if model else content_type.model
    action = perm.codename.split("_", 1)[0]
    if action in PERMISSION_VERBS and model and perm.codename == f"{action}_{model._meta.model_name}":
        text = PERMISSION_VERBS[action] % {"model": verbose}
    else:
        text = gettext(perm.name)
    try:
        app = apps.get_app_config(content_type.app_label).verbose_name
    except LookupError:
        app = content_type.app_label
    return f"{app} | {verbose} | {text}"


class PermissionLabels:
    """Permission choices labelled in the reader's language (users and groups)."""

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and db_field.related_model is Permission:
            field.queryset = field.queryset.select_related("content_type")
            field.label_from_instance = permission_label
        return field


class StaffUserAdmin(PermissionLabels, UserAdmin):
    pass


class StaffGroupAdmin(PermissionLabels, GroupAdmin):
    pass


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
platform_admin_site.register(User, StaffUserAdmin)
platform_admin_site.register(Group, StaffGroupAdmin)

admin.site.site_header = _("Charging operations")
admin.site.site_title = _("Charging operations")
admin.site.index_title = _("Operator administration")
# The home page: today's figures, trends and the station map above the app list.
admin.site.index_template = "analytics/admin_index.html"
