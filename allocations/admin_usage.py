from django.contrib import admin

from .models import UsageImport, UsageRecord


@admin.register(UsageImport)
class UsageImportAdmin(admin.ModelAdmin):
    list_display = [
        "started_at",
        "cluster",
        "source",
        "filename",
        "status",
        "imported",
        "updated",
        "unchanged",
        "steps_skipped",
        "unmatched",
        "rejected",
        "started_by",
    ]
    list_filter = ["cluster", "source", "status"]
    search_fields = ["filename"]
    date_hierarchy = "started_at"
    list_select_related = ["cluster", "started_by"]
    readonly_fields = [f.name for f in UsageImport._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "job_id",
        "cluster",
        "account",
        "allocation",
        "user",
        "state",
        "start",
        "end",
        "gpus",
        "gpu_seconds",
    ]
    list_filter = ["cluster", "state", "running"]
    search_fields = ["job_id", "account", "user", "job_name"]
    list_select_related = ["cluster", "allocation__cluster"]
    raw_id_fields = ["allocation", "partition", "import_run"]
    readonly_fields = [f.name for f in UsageRecord._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
