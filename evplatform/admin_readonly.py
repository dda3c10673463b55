"""Admin pages that only show: records written by the platform (ledger, payments, logs)."""

from __future__ import annotations


class ReadOnlyAdminMixin:
    """No adding, changing or deleting from the admin (viewing and the page's own actions
    stay, as their permissions say)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
