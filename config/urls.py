from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core import health
from core import views as core_views
from core.admin import AdminLoginForm
from systems import views as systems_views

admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("", systems_views.landing, name="landing"),
    path("healthz", health.healthz, name="healthz"),
    path("livez", health.livez, name="livez"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's, the API docs).
    path("favicon.ico", core_views.favicon),
    path(
        "accounts/notifications/",
        core_views.notification_preferences,
        name="notification-preferences",
    ),
    path("", include("core.urls")),
    path("accounts/", include("allauth.urls")),
    path("", include("organisations.urls")),
    path("", include("vetting.urls")),
    path("", include("allocations.urls")),
    path("", include("usage.urls")),
    path("", include("compliance.urls")),
    path("admin/vetting/ranking/", include("vetting.admin_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file of its own: no inline script (CSP).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="core/swagger_ui.html"
        ),
        name="api-docs",
    ),
]

handler400 = "core.errors.bad_request"
handler403 = "core.errors.permission_denied"
handler404 = "core.errors.page_not_found"
handler500 = "core.errors.server_error"
