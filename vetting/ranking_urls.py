from django.urls import path

from . import views_ranking

app_name = "ranking"

urlpatterns = [
    path("", views_ranking.ranking_index, name="index"),
    path("<int:mode_id>/", views_ranking.ranking, name="mode"),
]
