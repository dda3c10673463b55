"""WebSocket routes (Channels)."""

from charging.routing import websocket_urlpatterns as charging_ws

websocket_urlpatterns: list = [*charging_ws]
