from rest_framework.routers import SimpleRouter

from vetting import api

router = SimpleRouter()
router.register("applications", api.ApplicationViewSet, basename="application")

urlpatterns = router.urls
