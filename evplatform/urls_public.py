"""URLs on the platform's public host: the super admin and the API documentation."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from operations.views import feedback_photo_file
from tenants import views as tenant_views

from .admin_sites import platform_admin_site
from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(urlconf="evplatform.urls"), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", platform_admin_site.urls),
    # WeChat Open Platform third-party platform (tenants.open_platform).
    path("wechat/component/events", tenant_views.component_events, name="component-events"),
    path("wechat/component/<str:appid>/events", tenant_views.authorizer_events, name="authorizer-events"),
    # Drivers' feedback photos, whatever host asks (operations.views).
    path("media/feedback/<str:schema>/<str:name>", feedback_photo_file, name="feedback-photo-file"),
    path("wechat/component/authorized", tenant_views.authorized, name="component-authorized"),
]

handler400 = "evplatform.error_pages.handler400"
handler403 = "evplatform.error_pages.handler403"
handler404 = "evplatform.error_pages.handler404"
handler500 = "evplatform.error_pages.handler500"
