from django.urls import path

from . import usage_api

urlpatterns = [
    path("usage/imports/", usage_api.UsageImportCreateApi.as_view(), name="usage-import-create"),
]
