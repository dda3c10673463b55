from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = _("Operations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.apps import apps

        from .model_changes import audited_models_register

        audited_models_register()
        # Its permissions are listed on the staff pages; the admin is ours (ModelChange).
        apps.get_app_config("auditlog").verbose_name = _("model change log")
