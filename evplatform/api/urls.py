"""The driver API, ``/api/app/v1/``: each app contributes its own ``api/urls.py``."""

from django.urls import include, path

from . import schema  # noqa: F401  (registers the member token's OpenAPI scheme)

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("stations.api.urls")),
    path("", include("billing.payments.api.urls")),
    path("", include("billing.invoices.api.urls")),
    path("", include("settlement.api.urls")),
    path("", include("charging.api.urls")),
    path("", include("marketing.api.urls")),
    path("", include("operations.api.urls")),
]
