from django.urls import path

from . import views

urlpatterns = [
    path("orders", views.orders, name="orders"),
    path("orders/current", views.order_current, name="order-current"),
    path("orders/prepay", views.order_prepay, name="order-prepay"),
    path("orders/roaming", views.roaming_orders, name="roaming-orders"),
    path("orders/roaming/<int:order_id>", views.roaming_order_detail, name="roaming-order-detail"),
    path("orders/roaming/<int:order_id>/stop", views.roaming_order_stop, name="roaming-order-stop"),
    path("orders/<int:order_id>", views.order_detail, name="order-detail"),
    path("orders/<int:order_id>/stop", views.order_stop, name="order-stop"),
    path("orders/<int:order_id>/departure", views.order_departure, name="order-departure"),
    path("reservations", views.reservations, name="reservations"),
    path("reservations/<int:reservation_id>/cancel", views.reservation_cancel, name="reservation-cancel"),
    path("queue", views.queue, name="queue"),
    path("queue/<int:entry_id>/leave", views.queue_leave, name="queue-leave"),
    path("queue/<int:entry_id>/decline", views.queue_decline, name="queue-decline"),
]
