from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = _("Marketing")

    def ready(self) -> None:
        from accounts import priority

        from .svip import svip_members

        priority.priority_provider_register(priority.SVIP, svip_members)
