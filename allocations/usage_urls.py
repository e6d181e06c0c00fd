from django.urls import path

from . import usage_views

app_name = "usage"

urlpatterns = [
    path("usage/allocations/<int:pk>/", usage_views.allocation_usage, name="allocation"),
    path(
        "usage/allocations/<int:pk>/annex-xi/",
        usage_views.allocation_annex_xi,
        name="allocation-annex-xi",
    ),
    path(
        "usage/allocations/<int:pk>/annex-xi.json",
        usage_views.allocation_annex_xi,
        {"as_json": True},
        name="allocation-annex-xi-json",
    ),
    path(
        "usage/models/<path:model_name>/annex-xi/",
        usage_views.model_annex_xi,
        name="model-annex-xi",
    ),
    path(
        "usage/models/<path:model_name>/annex-xi.json",
        usage_views.model_annex_xi,
        {"as_json": True},
        name="model-annex-xi-json",
    ),
    # Last: a model name may contain "/", so this pattern would swallow the two above.
    path("usage/models/<path:model_name>/", usage_views.model_usage, name="model"),
]
