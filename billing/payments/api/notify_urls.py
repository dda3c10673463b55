from django.urls import path

from . import notify

urlpatterns = [
    path("<slug:slug>/<str:kind>", notify.pay_notify, name="pay-notify"),
    # service-provider mode: verified and decrypted with the platform provider's keys
    path("<slug:slug>/<str:kind>/sp", notify.pay_notify, {"partner": True}, name="pay-notify-sp"),
]
