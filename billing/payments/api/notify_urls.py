from django.urls import path

from . import notify

urlpatterns = [
    path("<slug:slug>/<str:kind>", notify.pay_notify, name="pay-notify"),
]
