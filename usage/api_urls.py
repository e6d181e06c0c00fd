from django.urls import path

from usage import api, site_api

urlpatterns = [
    path("usage/imports/", api.UsageImportCreateApi.as_view(), name="usage-import-create"),
    path(
        "clusters/<str:cluster>/pending-changes/",
        site_api.PendingChangesApi.as_view(),
        name="cluster-pending-changes",
    ),
    path(
        "exports/<int:pk>/applied/",
        site_api.ExportAppliedApi.as_view(),
        name="export-applied",
    ),
]
