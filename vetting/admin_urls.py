from django.urls import path

from vetting.views import ranking as views

app_name = "ranking"

urlpatterns = [
    path("", views.ranking_index, name="index"),
    path("<int:mode_id>/", views.ranking, name="mode"),
]
