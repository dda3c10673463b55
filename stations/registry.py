"""The public pile registry (``tenants.PileRegistration``, pile code → operator) as seen
from the current operator's schema. Only stations' services write it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name

from tenants.models import Operator, PileRegistration


def current_operator() -> Operator:
    """The operator whose schema is active. Raises RuntimeError in the public schema."""
    tenant = getattr(connection, "tenant", None)
    if tenant is None or connection.schema_name == get_public_schema_name():
        raise RuntimeError("stations need an operator's schema to be active")
    return tenant


def taken_message(code: str) -> str:
    return _("Pile code %(code)s is already registered by another operator.") % {"code": code}


def registry_check(*, code: str) -> None:
    """Raise ValidationError({"code": ...}) when another operator holds ``code``."""
    operator = current_operator()
    if PileRegistration.objects.filter(code=code).exclude(operator_id=operator.pk).exists():
        raise ValidationError({"code": taken_message(code)}, code="pile_code_taken")


def registry_claim(*, code: str) -> None:
    """Register ``code`` to the current operator (no-op when it already is).

    Raises ValidationError when another operator holds it, also when two operators race
    for a new code (the registry's unique index decides; no IntegrityError escapes).
    """
    operator = current_operator()
    held = PileRegistration.objects.select_for_update().filter(code=code).first()
    if held is not None:
        if held.operator_id != operator.pk:
            raise ValidationError({"code": taken_message(code)}, code="pile_code_taken")
        return
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives a loss
            PileRegistration.objects.create(code=code, operator=operator)
    except IntegrityError as exc:
        raise ValidationError({"code": taken_message(code)}, code="pile_code_taken") from exc


def registry_release(*, code: str) -> None:
    """Forget ``code`` if the current operator holds it."""
    PileRegistration.objects.filter(code=code, operator_id=current_operator().pk).delete()
