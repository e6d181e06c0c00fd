from rest_framework.routers import DefaultRouter

from systems import api

router = DefaultRouter()
router.register("calls", api.CallViewSet, basename="call")
router.register("partitions", api.PartitionViewSet, basename="partition")

urlpatterns = router.urls
