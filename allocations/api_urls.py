from django.urls import include, path
from rest_framework.routers import SimpleRouter

from allocations import api

router = SimpleRouter()
router.register("allocations", api.AllocationViewSet, basename="allocation")

urlpatterns = [
    path("", include(router.urls)),
    path("exports/", api.ExportListCreateView.as_view(), name="export-list"),
    path("exports/<int:pk>/", api.ExportDetailView.as_view(), name="export-detail"),
]
