from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import health
from core.admin import AdminLoginForm
from systems import views as systems_views

admin.site.site_header = "hpcgate administration"
admin.site.site_title = "hpcgate"
admin.site.index_title = "Calls, reviews, allocations and usage"
admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("", systems_views.landing, name="landing"),
    path("healthz", health.healthz, name="healthz"),
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
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
