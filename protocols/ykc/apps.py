from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class YkcConfig(AppConfig):
    """The YKC v1.6 protocol: codec, gateway, and the piles' billing-model sync (its models)."""

    name = "protocols.ykc"
    label = "ykc"
    verbose_name = _("YKC piles")

    def ready(self) -> None:
        from billing.tariffs.signals import tariffs_changed

        from .tariff_sync import on_tariffs_changed

        tariffs_changed.connect(on_tariffs_changed, dispatch_uid="ykc.tariff_sync")
