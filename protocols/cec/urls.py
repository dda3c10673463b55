"""The T/CEC endpoints on an operator's host: ``{CEC_PATH_PREFIX}<interface>``."""

from django.urls import path

from .server import endpoint

app_name = "cec"
urlpatterns = [path("<str:interface>", endpoint, name="endpoint")]
