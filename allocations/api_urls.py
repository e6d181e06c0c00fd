from django.urls import include, path
from rest_framework.routers import SimpleRouter

from allocations import api

router = SimpleRouter()
router.register("allocations", api.AllocationViewSet, basename="allocation")
router.register("change-requests", api.ChangeRequestViewSet, basename="change-request")

urlpatterns = [
    path("", include(router.urls)),
    path(
        "allocations/<int:pk>/users/",
        api.ClusterUserListView.as_view(),
        name="allocation-users",
    ),
    path(
        "allocations/<int:pk>/users/<str:username>/",
        api.ClusterUserDetailView.as_view(),
        name="allocation-user",
    ),
    path("exports/", api.ExportListCreateView.as_view(), name="export-list"),
    path("exports/<int:pk>/", api.ExportDetailView.as_view(), name="export-detail"),
]
