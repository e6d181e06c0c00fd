from django.contrib import admin
from django.utils.html import format_html, format_html_join

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
    search_fields = ["filename", "started_by__username"]
    date_hierarchy = "started_at"
    list_select_related = ["cluster", "started_by"]
    exclude = ["rejected_lines"]
    readonly_fields = [
        *(f.name for f in UsageImport._meta.fields if f.name != "rejected_lines"),
        "summary",
        "rejected_lines_table",
    ]

    @admin.display(description="rejected lines (first 1,000)")
    def rejected_lines_table(self, run: UsageImport) -> str:
        if not run.rejected_lines:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (entry.get("line"), entry.get("reason"), entry.get("text", ""))
                for entry in run.rejected_lines
            ),
        )
        return format_html(
            "<table><thead><tr><th>line</th><th>reason</th><th>text</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

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
