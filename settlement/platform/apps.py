from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PlatformSettlementConfig(AppConfig):
    name = "settlement.platform"
    label = "settlement_platform"
    verbose_name = _("Platform commission")
    default_auto_field = "django.db.models.BigAutoField"
