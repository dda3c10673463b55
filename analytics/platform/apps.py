from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PlatformStatsConfig(AppConfig):
    name = "analytics.platform"
    label = "analytics_platform"
    verbose_name = _("Platform statistics")
    default_auto_field = "django.db.models.BigAutoField"
