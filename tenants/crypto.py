"""Kept for the migrations that name ``tenants.crypto.EncryptedTextField``: the field and
the mask are the platform's (``evplatform.crypto``), used by every app that keeps secrets."""

from evplatform.crypto import PREFIX, EncryptedTextField, decrypt, encrypt, mask

__all__ = ["PREFIX", "EncryptedTextField", "decrypt", "encrypt", "mask"]
