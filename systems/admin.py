from datetime import timedelta

from django.contrib import admin
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from core import formats
from systems.forms import ThresholdPolicyForm
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
        "size",
        "durations",
        "decision_working_days",
        "cutoff_at",
    ]
    list_filter = ["kind", "call__state"]
    search_fields = ["call__title"]
    list_select_related = ["call"]
    inlines = [AccessModePartitionInline]

    @admin.display(description="size", ordering="min_gpu_hours")
    def size(self, obj: AccessMode) -> str:
        return obj.size_label

    @admin.display(description="durations")
    def durations(self, obj: AccessMode) -> str:
        return obj.durations_label


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
    """Versions of the thresholds. Estimates frozen at submission and alerts cite the version
    they used, so a version in force (or past) is only read; a change is a new version, made
    from the one it replaces, that takes effect today or later."""

    form = ThresholdPolicyForm
    list_display = [
        "version",
        "effective_from",
        "gpai",
        "systemic_risk",
        "modification",
        "warning",
        "utilisation",
        "alert_levels",
        "in_force",
    ]
    search_fields = ["note"]
    date_hierarchy = "effective_from"
    change_form_template = "admin/systems/thresholdpolicy/change_form.html"
    # Shown in words when a version is read only.
    SHOWN = {
        "gpai_flop": "gpai",
        "systemic_risk_flop": "systemic_risk",
        "modification_share": "modification",
        "warning_share": "warning",
        "default_utilisation": "utilisation",
        "allocation_alert_percentages": "alert_levels",
    }

    @staticmethod
    def is_effective(obj: ThresholdPolicy | None) -> bool:
        return obj is not None and obj.effective_from <= timezone.localdate()

    def has_change_permission(self, request, obj=None) -> bool:
        return not self.is_effective(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not self.is_effective(obj) and super().has_delete_permission(request, obj)

    def get_fields(self, request, obj=None):
        if self.is_effective(obj):
            return [
                self.SHOWN.get(field.name, field.name)
                for field in ThresholdPolicy._meta.concrete_fields
                if field.editable and not field.primary_key
            ]
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if self.is_effective(obj):
            return self.get_fields(request, obj)
        return super().get_readonly_fields(request, obj)

    def get_changeform_initial_data(self, request):
        """`?from=<id>`: a new version with the figures of that one, next number, from
        tomorrow."""
        source = ThresholdPolicy.objects.filter(pk=request.GET.get("from") or None).first()
        latest = ThresholdPolicy.objects.order_by("-version").values_list("version", flat=True)
        initial = {
            "version": (latest.first() or 0) + 1,
            "effective_from": timezone.localdate() + timedelta(days=1),
        }
        if source is not None:
            for field in ThresholdPolicy._meta.concrete_fields:
                if field.name not in ("id", "version", "effective_from"):
                    initial[field.name] = getattr(source, field.attname)
            initial["note"] = f"Made from version {source.version}. {source.note}".strip()
            initial["made_from"] = source.pk
        return initial

    @admin.display(description="GPAI threshold", ordering="gpai_flop")
    def gpai(self, obj: ThresholdPolicy) -> str:
        return f"{formats.flop(obj.gpai_flop)} FLOP"

    @admin.display(description="systemic-risk threshold", ordering="systemic_risk_flop")
    def systemic_risk(self, obj: ThresholdPolicy) -> str:
        return f"{formats.flop(obj.systemic_risk_flop)} FLOP"

    @admin.display(description="modification share")
    def modification(self, obj: ThresholdPolicy) -> str:
        return formats.percent(obj.modification_share, 1)

    @admin.display(description="warning share")
    def warning(self, obj: ThresholdPolicy) -> str:
        return formats.percent(obj.warning_share)

    @admin.display(description="default utilisation")
    def utilisation(self, obj: ThresholdPolicy) -> str:
        return formats.percent(obj.default_utilisation)

    @admin.display(description="allocation alert levels")
    def alert_levels(self, obj: ThresholdPolicy) -> str:
        return ", ".join(f"{p} %" for p in sorted(obj.allocation_alert_percentages or []))

    @admin.display(description="state")
    def in_force(self, obj: ThresholdPolicy) -> str:
        current = ThresholdPolicy.objects.in_force()
        if current is not None and current.pk == obj.pk:
            return "in force"
        return "past" if self.is_effective(obj) else "planned"
