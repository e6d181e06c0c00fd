from django.urls import path

from usage import api

urlpatterns = [
    path("usage/imports/", api.UsageImportCreateApi.as_view(), name="usage-import-create"),
]
