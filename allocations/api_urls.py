from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import api_allocations

router = SimpleRouter()
router.register("allocations", api_allocations.AllocationViewSet, basename="allocation")

urlpatterns = [
    path("", include(router.urls)),
    path("exports/", api_allocations.ExportListCreateView.as_view(), name="export-list"),
    path("exports/<int:pk>/", api_allocations.ExportDetailView.as_view(), name="export-detail"),
]
