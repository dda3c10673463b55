from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StationsConfig(AppConfig):
    name = "stations"
    verbose_name = _("Stations and piles")

    def ready(self):
        from . import snapshot

        snapshot.connect_signals()
