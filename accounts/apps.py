from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Members and staff")

    def ready(self):
        from .roles import roles_sync_after_migrate

        # Groups live in each tenant schema; they are (re)made after every migrate of a
        # schema, so the template carries them into every new operator.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="accounts.roles_sync")
