from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class YkcConfig(AppConfig):
    """The YKC v1.6 protocol: codec, gateway, and the piles' billing-model sync (its models)."""

    name = "protocols.ykc"
    label = "ykc"
    verbose_name = _("YKC piles")

    def ready(self) -> None:
        from charging import handlers, port

        from .tariff_sync import on_tariffs_changed

        handlers.listen(port.TariffsChanged, on_tariffs_changed)
