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

        # Tariff changes reach the protocols that keep tariffs on piles through the port.
        from billing.tariffs.signals import tariffs_changed

        from .handlers import tariffs_changed as forward_tariffs_changed

        tariffs_changed.connect(forward_tariffs_changed, dispatch_uid="charging.port.tariffs")
