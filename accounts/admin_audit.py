"""Staff changes made in the admin, recorded in the audit log with before and after.

:class:`AuditedAdminMixin` goes first in a ``ModelAdmin``'s bases: every object added,
changed or deleted through that admin (its form, or the delete action) becomes an
``AuditEntry`` — ``model.add`` / ``model.change`` / ``model.delete`` with ``changes``
{field: [before, after]} (the form's changed fields; values as text, at most 200
characters) — in the same transaction as the change (the admin's views are atomic).
"""

from __future__ import annotations

from . import audit


def _text(value) -> str | None:
    if value is None:
        return None
    if hasattr(value, "all") and callable(value.all):  # a queryset (many-to-many)
        value = ", ".join(str(v) for v in value.all())
    elif isinstance(value, list | tuple | set):
        value = ", ".join(str(v) for v in value)
    return str(value)[:200]


def form_changes(form, add: bool) -> dict[str, list]:
    """{field: [before, after]} of the fields ``form`` changed (before None on add)."""
    changes: dict[str, list] = {}
    for name in form.changed_data:
        field = form.fields.get(name)
        if field is None or name not in form.cleaned_data:
            continue
        before = None if add else form.initial.get(name)
        if not add and before is not None and hasattr(field, "queryset") and \
                not isinstance(before, list | tuple):
            before = field.queryset.filter(pk=getattr(before, "pk", before)).first() or before
        elif not add and isinstance(before, list | tuple) and hasattr(field, "queryset"):
            before = list(field.queryset.filter(pk__in=[getattr(v, "pk", v) for v in before]))
        changes[name] = [_text(before), _text(form.cleaned_data[name])]
    return changes


class AuditedAdminMixin:
    """Record the admin's adds, changes and deletes in the audit log (see the module)."""

    def construct_change_message(self, request, form, formsets, add=False):
        message = super().construct_change_message(request, form, formsets, add)
        changes = form_changes(form, add)
        for formset in formsets or ():
            for inline in getattr(formset, "forms", ()):
                if inline.has_changed() and inline.is_valid():
                    for name, pair in form_changes(inline, inline.instance._state.adding).items():
                        changes[f"{inline.instance._meta.model_name}.{name}"] = pair
        if add or changes:
            audit.record(request.user, "model.add" if add else "model.change", form.instance,
                         changes=changes)
        return message

    def log_deletions(self, request, queryset):
        # Django's delete view and delete action both call this before deleting, whatever
        # delete_model / delete_queryset an admin has of its own.
        for obj in queryset:
            audit.record(request.user, "model.delete", obj)
        return super().log_deletions(request, queryset)
