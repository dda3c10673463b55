from django.urls import path

from . import views

urlpatterns = [
    path("wallet/top-up-options", views.top_up_options, name="wallet-top-up-options"),
    path("wallet/top-ups", views.top_up_create, name="wallet-top-ups"),
    path("wallet/payments/<str:out_trade_no>", views.payment_detail, name="wallet-payment"),
    path("wallet/refunds/preview", views.refund_preview, name="wallet-refund-preview"),
    path("wallet/refunds", views.refunds, name="wallet-refunds"),
    path("wallet/refunds/<int:pk>", views.refund_detail, name="wallet-refund"),
    path("wallet/withdrawals", views.withdrawals, name="wallet-withdrawals"),
    path("wallet/withdrawals/<int:pk>", views.withdrawal_detail, name="wallet-withdrawal"),
]
