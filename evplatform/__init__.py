"""The EV-charging operations platform: Django project package.

Named ``evplatform`` because a top-level ``platform`` package would shadow Python's
standard ``platform`` module (and break ``import uuid``, so Django).
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
