from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChargingConfig(AppConfig):
    name = "charging"
    verbose_name = _("Charging orders")
