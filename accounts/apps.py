from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Members and staff")

    def ready(self):
        from django.apps import apps
        from django.utils.translation import gettext_lazy as _

        from .roles import roles_sync_after_migrate

        # django-axes' app has no verbose name of its own ("Axes" in the admin).
        apps.get_app_config("axes").verbose_name = _("Login protection")

        # Groups live in each tenant schema; they are (re)made after every migrate of a
        # schema, so the template carries them into every new operator.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="accounts.roles_sync")
