from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = _("Marketing")

    def ready(self) -> None:
        # Billing and charging sit below marketing and cannot call it: marketing hands them
        # its handlers for paid purchases and top-ups (billing.payments.hooks) and who has
        # SVIP priority (accounts.priority).
        from accounts import priority
        from billing.payments import hooks

        from . import coupons, reports, rewards, svip

        hooks.purchase_handler_register("svip", svip.svip_payment_paid)
        hooks.purchase_handler_register("coupon", coupons.coupon_payment_paid)
        hooks.top_up_listener_register(rewards.top_up_rewarded)
        priority.priority_provider_register(priority.SVIP, svip.svip_members)
        priority.priority_provider_register(priority.PRIORITY_RESERVATION,
                                            svip.svip_priority_members)
        reports.register()  # on the operator's report page, beside analytics' own
