from django.urls import path
from rest_framework.routers import SimpleRouter

from vetting.api import intake, review

router = SimpleRouter()
router.register("applications", intake.ApplicationViewSet, basename="application")
router.register("review-assignments", review.AssignmentViewSet, basename="review-assignment")
router.register("decisions", review.DecisionViewSet, basename="decision")

urlpatterns = [
    *router.urls,
    path("ranking/<int:mode_id>/", review.RankingView.as_view(), name="ranking"),
]
