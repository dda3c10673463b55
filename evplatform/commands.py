"""What the management commands that act on operators share: ``--tenant NAME``."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db.models import Q
from django.utils.translation import gettext as _


def operators_named(name: str) -> list:
    """The operators a command's ``--tenant NAME`` means: ``all`` (every operator, by
    slug), else the one whose slug or schema name is NAME. Raises ``CommandError`` ("没有运营
    商 NAME。", the command exits 1) when there is none."""
    from tenants.selectors import operator_list

    if name == "all":
        return list(operator_list().order_by("slug"))
    operator = operator_list().filter(Q(slug=name) | Q(schema_name=name)).first()
    if operator is None:
        raise CommandError(_("No operator %(name)s.") % {"name": name})
    return [operator]
