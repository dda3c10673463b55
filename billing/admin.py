"""Registers the domains' admins (Django imports ``<app>.admin``)."""

from .invoices import admin as invoices_admin  # noqa: F401
from .payments import admin as payments_admin  # noqa: F401
from .tariffs import admin as tariffs_admin  # noqa: F401
