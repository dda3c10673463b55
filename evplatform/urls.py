"""URLs on an operator's host, and the driver API (routed to the operator's schema)."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from analytics.views import bigscreen, report_page
from billing.invoices.api.notify import fapiao_notify
from stations.views import firmware_download, qr_landing

from . import h5
from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/app/v1/", include("evplatform.api.urls")),
    # WeChat Pay and e-invoice provider notifications; the middleware picks the operator from the slug.
    path("api/pay/notify/<slug:slug>/fapiao", fapiao_notify, name="fapiao-notify"),
    path("api/pay/notify/", include("billing.payments.api.notify_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("q/<str:code>", qr_landing, name="qr-landing"),
    path("firmware/<str:token>", firmware_download, name="firmware-download"),
    # T/CEC 102 interconnection: partner and regulator platforms call us here.
    path(settings.CEC_PATH_PREFIX.strip("/") + "/", include("protocols.cec.urls")),
    path("bigscreen/", bigscreen, name="bigscreen"),
    path("reports/", report_page, name="reports"),
    # The drivers' H5 app (miniprogram/, built by `make miniprogram`).
    path("m/", h5.h5_index, name="h5-app"),
    path("m/logo", h5.h5_logo, name="h5-logo"),
    re_path(r"^m/assets/(?P<path>[\w.@-]+)$", h5.h5_asset, name="h5-asset"),
]

handler400 = "evplatform.error_pages.handler400"
handler403 = "evplatform.error_pages.handler403"
handler404 = "evplatform.error_pages.handler404"
handler500 = "evplatform.error_pages.handler500"
