from django.urls import path

from . import views

urlpatterns = [
    path("invoices/orders", views.invoiceable_orders, name="invoice-orders"),
    path("invoices/titles", views.titles, name="invoice-titles"),
    path("invoices/titles/<int:pk>", views.title_detail, name="invoice-title"),
    path("invoices", views.invoices, name="invoices"),
    path("invoices/<int:pk>", views.invoice_detail, name="invoice"),
    path("invoices/<int:pk>/pdf", views.invoice_pdf_download, name="invoice-pdf"),
]
