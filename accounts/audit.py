"""The audit log of staff actions (``accounts.AuditEntry``).

Services call :func:`record` inside the action's transaction, so the entry exists exactly
when the action happened::

    audit.record(request.user, "pile.command", pile, detail="Reboot → ok")

``ACTIONS`` names every action in words staff read (the admin's filter and export).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from .models import AuditAction, AuditEntry

ACTIONS = dict(AuditAction.choices)


def record(user, action: str, target: Any = None, *, changes: dict | None = None,
           detail: str = "") -> AuditEntry:
    """Record ``action`` (a key of ``ACTIONS``) by staff ``user`` (None: the platform) on
    ``target`` (a model instance or None); ``changes`` {field: [before, after]}."""
    actor = user if getattr(user, "pk", None) else None
    entry = AuditEntry(
        actor=actor,
        actor_name=(user.get_username() if actor else str(_("platform"))),
        action=action,
        changes=changes or {},
        detail=detail,
    )
    if target is not None:
        meta = target._meta.concrete_model._meta  # a proxy's rows are its model's
        entry.target_type = f"{meta.app_label}.{meta.model_name}"
        entry.target_id = str(target.pk)
        entry.target_label = str(target)[:200]
    entry.save()
    return entry


def action_label(action: str) -> str:
    return str(ACTIONS.get(action, action))
