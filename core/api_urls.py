from django.urls import path

from core import api

urlpatterns = [
    path("auth/token/", api.TokenView.as_view(), name="api-token"),
]
