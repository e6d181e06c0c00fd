from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from systems.models import (
    AccessMode,
    AccessModePartition,
    Call,
    Cluster,
    Partition,
    Site,
    ThresholdPolicy,
)

# Importing these modules registers the usage, alert and register admin pages.


class ClusterInline(admin.TabularInline):
    model = Cluster
    extra = 0


@admin.register(Site)
class SiteAdmin(SimpleHistoryAdmin):
    list_display = ["name", "country", "time_zone", "pue", "grid_kg_co2e_per_kwh"]
    list_filter = ["country"]
    search_fields = ["name", "country"]
    inlines = [ClusterInline]


class PartitionInline(admin.TabularInline):
    model = Partition
    extra = 0
    fields = [
        "name",
        "accelerator",
        "gpus_per_node",
        "nodes",
        "peak_tflops",
        "power_watts",
        "memory_gb_per_gpu",
    ]


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ["name", "display_name", "site"]
    list_filter = ["site__country"]
    search_fields = ["name", "display_name", "site__name"]
    list_select_related = ["site"]
    inlines = [PartitionInline]


@admin.register(Partition)
class PartitionAdmin(SimpleHistoryAdmin):
    list_display = [
        "cluster",
        "name",
        "accelerator",
        "gpus_per_node",
        "nodes",
        "total_gpus",
        "peak_tflops",
        "power_watts",
        "memory_gb_per_gpu",
    ]
    list_filter = ["cluster__site__country", "cluster"]
    search_fields = ["name", "cluster__name", "accelerator"]
    list_select_related = ["cluster"]

    @admin.display(description="scheduler GPUs")
    def total_gpus(self, obj: Partition) -> str:
        return f"{obj.total_gpus:,}"


class AccessModePartitionInline(admin.TabularInline):
    model = AccessModePartition
    extra = 0
    autocomplete_fields = ["partition"]


@admin.register(AccessMode)
class AccessModeAdmin(admin.ModelAdmin):
    list_display = [
        "call",
        "kind",
        "min_gpu_hours",
        "max_gpu_hours",
        "durations_months",
        "decision_working_days",
        "cutoff_at",
    ]
    list_filter = ["kind", "call__state"]
    search_fields = ["call__title"]
    list_select_related = ["call"]
    inlines = [AccessModePartitionInline]


class AccessModeInline(admin.StackedInline):
    model = AccessMode
    extra = 0
    show_change_link = True


@admin.register(Call)
class CallAdmin(SimpleHistoryAdmin):
    list_display = ["title", "state", "opens_at", "closes_at", "reviewers_per_application"]
    list_filter = ["state"]
    search_fields = ["title", "description"]
    prepopulated_fields = {"slug": ["title"]}
    date_hierarchy = "opens_at"
    inlines = [AccessModeInline]


@admin.register(ThresholdPolicy)
class ThresholdPolicyAdmin(SimpleHistoryAdmin):
    list_display = [
        "version",
        "effective_from",
        "gpai_flop",
        "systemic_risk_flop",
        "modification_share",
        "warning_share",
        "default_utilisation",
        "allocation_alert_percentages",
    ]
    search_fields = ["note"]
    date_hierarchy = "effective_from"
