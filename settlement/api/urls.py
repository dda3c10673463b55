from django.urls import path

from . import owner_views, views

urlpatterns = [
    path("wallet", views.wallet, name="wallet"),
    path("wallet/ledger", views.wallet_ledger, name="wallet-ledger"),
    path("owner/overview", owner_views.overview, name="owner-overview"),
    path("owner/stations", owner_views.stations, name="owner-stations"),
    path("owner/orders", owner_views.orders, name="owner-orders"),
    path("owner/statements", owner_views.statements, name="owner-statements"),
    path("owner/statements/<int:pk>", owner_views.statement_detail, name="owner-statement"),
    path("owner/faults", owner_views.faults, name="owner-faults"),
    path("owner/withdrawals", owner_views.owner_withdrawals, name="owner-withdrawals"),
]
