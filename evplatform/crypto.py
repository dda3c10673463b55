"""Secrets encrypted at rest (Fernet, key from FIELD_ENCRYPTION_KEY): a platform helper
below every app (operators' WeChat secrets, invoice providers, interconnection partners).

The database row holds only ciphertext (``fernet:`` prefix); the model attribute holds
the plain value. ``mask()`` is what admin, logs and API output show instead.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models

PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    # Accept a proper Fernet key, or derive one from any other string.
    try:
        return Fernet(key.encode())
    except ValueError:
        return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def encrypt(plain: str) -> str:
    return PREFIX + _fernet(settings.FIELD_ENCRYPTION_KEY).encrypt(plain.encode()).decode()


def decrypt(stored: str) -> str:
    """Plain text of a stored value; raises ValueError if it cannot be decrypted."""
    if not stored.startswith(PREFIX):
        raise ValueError("value is not encrypted")
    try:
        return _fernet(settings.FIELD_ENCRYPTION_KEY).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt: wrong FIELD_ENCRYPTION_KEY?") from exc


def mask(plain: str | None) -> str:
    """What people may see of a secret: its length and last 4 characters at most."""
    if not plain:
        return ""
    tail = plain[-4:] if len(plain) >= 12 else ""
    return f"••••{tail} ({len(plain)})"


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; the Python value is the plain text."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def to_python(self, value):
        if isinstance(value, str) and value.startswith(PREFIX):
            return decrypt(value)
        return value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
