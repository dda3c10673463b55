"""Admin exports that leak nothing: a permission of their own and the list's scoping.

django-import-export exports for anyone who reaches the admin unless a permission code is
configured, and its export view never asks whether the user may see the list. Every
exporting admin uses :class:`ScopedExportMixin` instead of ``ExportMixin``:

- exporting needs ``<app_label>.export_<model_name>`` (``IMPORT_EXPORT_EXPORT_PERMISSION_CODE``
  is ``"export"``) *and* the list's view permission;
- the rows are those of the user's list — the admin's ``get_queryset`` (a station owner's
  own stations), with the list's filters — whichever way the export was asked for.

The ``export_*`` permissions are made for every model whose admin exports by
:func:`export_permissions_ensure` (after each migrate, before the role groups are set), so a
new exporting admin needs no migration and cannot slip past the rule.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from import_export.admin import ExportMixin

EXPORT = "export"


class ScopedExportMixin(ExportMixin):
    """``ExportMixin`` that needs the export permission and the view permission, and
    exports only rows the admin's ``get_queryset`` gives this user."""

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm(
            f"{self.opts.app_label}.{get_permission_codename(EXPORT, self.opts)}"
        )

    def get_valid_export_item_pks(self, request):
        return self.get_queryset(request).values_list("pk", flat=True)

    def get_export_data(self, file_format, request, queryset, **kwargs):
        if not self.has_export_permission(request):
            raise PermissionDenied
        # Whatever queryset arrived (the list's, selected items, an action's), only the
        # rows this user's list may show leave the server.
        queryset = queryset.filter(pk__in=self.get_queryset(request).values("pk"))
        return super().get_export_data(file_format, request, queryset, **kwargs)


def exporting_admins(site: admin.AdminSite | None = None) -> list[admin.ModelAdmin]:
    """The registered admins of ``site`` (the operator admin by default) that export files:
    import-export admins and those declaring ``has_export_permission`` (statements)."""
    site = site or admin.site
    return [ma for ma in site._registry.values() if hasattr(ma, "has_export_permission")]


def export_permissions_ensure(site: admin.AdminSite | None = None) -> list[str]:
    """Create ``export_<model>`` for every exporting admin's model in the current schema;
    returns their ``app_label.codename``. Content types are read uncached (each schema has
    its own table)."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    made = []
    for model_admin in exporting_admins(site):
        opts = model_admin.model._meta
        content_type, _ = ContentType.objects.get_or_create(app_label=opts.app_label,
                                                            model=opts.model_name)
        codename = get_permission_codename(EXPORT, opts)
        Permission.objects.get_or_create(
            content_type=content_type, codename=codename,
            defaults={"name": f"Can export {opts.verbose_name_raw}"[:255]},
        )
        made.append(f"{opts.app_label}.{codename}")
    return made
