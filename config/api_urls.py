from django.urls import include, path
from rest_framework.routers import DefaultRouter

from allocations import api as allocation_api

router = DefaultRouter()
router.register("calls", allocation_api.CallViewSet, basename="call")
router.register("partitions", allocation_api.PartitionViewSet, basename="partition")

urlpatterns = [
    path("auth/token/", allocation_api.TokenView.as_view(), name="api-token"),
    path("", include(router.urls)),
    path("", include("vetting.api_urls")),
    path("", include("allocations.api_urls")),
    path("", include("allocations.usage_api_urls")),
]
