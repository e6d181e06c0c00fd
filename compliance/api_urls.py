from rest_framework.routers import SimpleRouter

from compliance import api

router = SimpleRouter()
router.register("alerts", api.AlertViewSet, basename="alert")
router.register("register", api.RegisterViewSet, basename="register-entry")

urlpatterns = router.urls
