from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChargingConfig(AppConfig):
    name = "charging"
    verbose_name = _("Charging orders")

    def ready(self) -> None:
        # Invoicing (billing, below us) reads settled orders through its port.
        from billing.invoices.orders import order_source_set

        from .invoicing import ChargingOrderSource

        order_source_set(ChargingOrderSource())
