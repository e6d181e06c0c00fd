from django.urls import include, path

urlpatterns = [
    path("", include("core.api_urls")),
    path("", include("systems.api_urls")),
    path("", include("vetting.api_urls")),
    path("", include("allocations.api_urls")),
    path("", include("usage.api_urls")),
    path("", include("compliance.api_urls")),
]
