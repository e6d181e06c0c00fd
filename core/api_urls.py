from django.urls import path
from rest_framework.routers import SimpleRouter

from core import api

router = SimpleRouter()
router.register("auth/tokens", api.OwnTokenViewSet, basename="api-own-token")

urlpatterns = [
    path("auth/token/", api.TokenView.as_view(), name="api-token"),
    *router.urls,
]
