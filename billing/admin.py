"""Registers both domains' admins (Django imports ``<app>.admin``)."""

from .payments import admin as payments_admin  # noqa: F401
from .tariffs import admin as tariffs_admin  # noqa: F401
