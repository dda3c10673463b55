"""Per-operator settings kept as one row of a table in the operator's schema."""

from __future__ import annotations

from django.db import models


class SingletonModel(models.Model):
    """A model of one row per schema: :meth:`load` returns it, creating it with
    :meth:`singleton_defaults` when missing (two first loads at once still make one row:
    the row is created as pk 1, and the loser of the race reads the winner's)."""

    class Meta:
        abstract = True

    @classmethod
    def singleton_defaults(cls) -> dict:
        """Field values of the row created on first load (beyond the fields' defaults)."""
        return {}

    @classmethod
    def load(cls):
        obj = cls.objects.order_by("pk").first()
        if obj is None:
            obj, _created = cls.objects.get_or_create(pk=1, defaults=cls.singleton_defaults())
        return obj
