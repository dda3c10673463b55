"""The ASGI app with Django serving static files, for the browser tests only (production
static serving arrives with whitenoise on main; until then uvicorn has none)."""

from channels.routing import ProtocolTypeRouter
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from evplatform.asgi import application as app

application = ProtocolTypeRouter(
    {"http": ASGIStaticFilesHandler(app.application_mapping["http"]),
     "websocket": app.application_mapping["websocket"]}
)
