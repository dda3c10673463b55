"""WebSocket routes (Channels)."""

from analytics.routing import websocket_urlpatterns as analytics_ws
from charging.routing import websocket_urlpatterns as charging_ws
from operations.routing import websocket_urlpatterns as operations_ws

websocket_urlpatterns: list = [*charging_ws, *analytics_ws, *operations_ws]
