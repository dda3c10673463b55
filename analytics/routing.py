from django.urls import path

from .consumers import BigScreenConsumer

websocket_urlpatterns = [
    path("ws/bigscreen/", BigScreenConsumer.as_asgi()),
]
