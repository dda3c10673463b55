"""WebSocket routes (Channels). Apps add theirs here."""

websocket_urlpatterns: list = []
