from django.urls import path

from .consumers import DriverChatConsumer, StaffChatConsumer

websocket_urlpatterns = [
    path("ws/app/chat/", DriverChatConsumer.as_asgi()),
    path("ws/admin/chat/", StaffChatConsumer.as_asgi()),
]
