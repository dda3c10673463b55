"""``import_error_words``: an import's error as a sentence for staff, never a Python class
name or a traceback."""

from __future__ import annotations

from decimal import InvalidOperation

from django import template
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError
from django.utils.translation import gettext as _

register = template.Library()

# What library and Python messages look like; ours are sentences written for staff.
_TECHNICAL = ("literal", "object", "Error", "NoneType", "argument", "invalid syntax", "traceback", "()")


@register.filter
def import_error_words(error) -> str:
    if isinstance(error, ValidationError):
        return " ".join(str(m) for m in error.messages)
    if isinstance(error, IntegrityError):
        return _("It conflicts with data already saved (a code or a gun number is used twice).")
    if isinstance(error, (DataError, InvalidOperation)):
        return _("A value is too long or not a number where a number is expected.")
    text = str(error).strip()
    if isinstance(error, ValueError) and text and not any(word in text for word in _TECHNICAL):
        return text
    return _("This row could not be read; check that every value matches the template's column.")


@register.filter
def column_title(name: str, titles: dict) -> str:
    """A column's label by its field or attribute name (the name itself when unknown)."""
    return (titles or {}).get(name, name)
