from django.urls import path

from usage import views

app_name = "usage"

urlpatterns = [
    path("usage/", views.usage_index, name="index"),
    path("usage/allocations/<int:pk>/", views.allocation_usage, name="allocation"),
    path(
        "usage/allocations/<int:pk>/annex-xi/",
        views.allocation_annex_xi,
        name="allocation-annex-xi",
    ),
    path(
        "usage/allocations/<int:pk>/annex-xi.json",
        views.allocation_annex_xi,
        {"as_json": True},
        name="allocation-annex-xi-json",
    ),
    path(
        "usage/models/<path:model_name>/annex-xi/",
        views.model_annex_xi,
        name="model-annex-xi",
    ),
    path(
        "usage/models/<path:model_name>/annex-xi.json",
        views.model_annex_xi,
        {"as_json": True},
        name="model-annex-xi-json",
    ),
    # Last: a model name may contain "/", so this pattern would swallow the two above.
    path("usage/models/<path:model_name>/", views.model_usage, name="model"),
]
