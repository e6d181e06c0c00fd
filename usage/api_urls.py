from django.urls import path

from usage import api, api_reads, site_api

urlpatterns = [
    path("usage/imports/", api.UsageImportCreateApi.as_view(), name="usage-import-create"),
    path("usage/imports/<int:pk>/", api.UsageImportDetailApi.as_view(), name="usage-import-detail"),
    path(
        "usage/allocations/<int:pk>/",
        api_reads.AllocationUsageView.as_view(),
        name="usage-allocation",
    ),
    path(
        "usage/allocations/<int:pk>/series/",
        api_reads.AllocationSeriesView.as_view(),
        name="usage-allocation-series",
    ),
    path(
        "usage/allocations/<int:pk>/jobs/",
        api_reads.AllocationJobsView.as_view(),
        name="usage-allocation-jobs",
    ),
    path(
        "usage/allocations/<int:pk>/annex-xi/",
        api_reads.AllocationAnnexView.as_view(),
        name="usage-allocation-annex-xi",
    ),
    path("usage/models/", api_reads.ModelUsageView.as_view(), name="usage-model"),
    path("usage/models/series/", api_reads.ModelSeriesView.as_view(), name="usage-model-series"),
    path("usage/models/jobs/", api_reads.ModelJobsView.as_view(), name="usage-model-jobs"),
    path("usage/models/annex-xi/", api_reads.ModelAnnexView.as_view(), name="usage-model-annex-xi"),
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
