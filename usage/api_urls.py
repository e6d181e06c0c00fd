from django.urls import path

from usage import api

urlpatterns = [
    path("usage/imports/", api.UsageImportCreateApi.as_view(), name="usage-import-create"),
    path("usage/imports/<int:pk>/", api.UsageImportDetailApi.as_view(), name="usage-import-detail"),
]
