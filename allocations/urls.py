from django.urls import path

from allocations import views

app_name = "allocations"

urlpatterns = [
    path("allocations/", views.allocation_list, name="list"),
    path("allocations/<int:pk>/", views.allocation_detail, name="detail"),
    path("allocations/<int:pk>/users/", views.allocation_user_add, name="user-add"),
    path("allocations/<int:pk>/users/remove/", views.allocation_user_remove, name="user-remove"),
    path("allocations/<int:pk>/changes/", views.change_request_create, name="change-request"),
]
