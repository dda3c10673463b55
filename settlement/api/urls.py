from django.urls import path

from . import views

urlpatterns = [
    path("wallet", views.wallet, name="wallet"),
    path("wallet/ledger", views.wallet_ledger, name="wallet-ledger"),
]
