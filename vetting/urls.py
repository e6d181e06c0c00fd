from django.urls import path

from vetting.views import intake as views

app_name = "vetting"

urlpatterns = [
    path("apply/", views.apply, name="apply"),
    path("applications/", views.application_list, name="list"),
    path("applications/<int:pk>/", views.application_detail, name="detail"),
    path("applications/<int:pk>/edit/", views.application_edit, name="edit"),
    path("applications/<int:pk>/withdraw/", views.application_withdraw_view, name="withdraw"),
    path("applications/<int:pk>/annex/", views.annex_download, name="annex"),
]
