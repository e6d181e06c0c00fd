from django.contrib import admin, messages
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from allocations.models import Allocation
from core import formats
from core.pagination import EstimatedCountPaginator
from usage.models import SiteToken, UsageImport, UsageRecord
from usage.selectors import usage_records_of_job


@admin.register(SiteToken)
class SiteTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "cluster", "key_start", "created_at", "created_by", "last_used_at"]
    list_display += ["revoked_at"]
    list_filter = ["cluster", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "key_start", "cluster__name"]
    list_select_related = ["cluster", "created_by"]
    readonly_fields = ["key_start", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        # A token stays with the cluster it was made for; a new cluster gets a new token.
        return [*self.readonly_fields, "cluster"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            key = obj.key_issue()
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(
                request,
                format_html(
                    "The key of {}, shown only now: <code>{}</code>. Send it with "
                    "<code>Authorization: SiteToken &lt;key&gt;</code> to "
                    "<code>/api/v1/usage/imports/</code>.",
                    obj,
                    key,
                ),
                messages.WARNING,
            )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked, not deleted: import runs name the token they came with

    @admin.action(description="Revoke the selected site tokens", permissions=["change"])
    def revoke(self, request, queryset):
        count = queryset.active().update(revoked_at=timezone.now())
        self.message_user(request, f"{count} site token(s) revoked.", messages.SUCCESS)


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
        "outside_window",
        "no_gpu_field",
        "started_by",
        "site_token",
    ]
    list_filter = ["cluster", "source", "status"]
    search_fields = ["filename", "started_by__username", "site_token__name"]
    date_hierarchy = "started_at"
    list_select_related = ["cluster", "started_by", "site_token__cluster"]
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


class AttributionFilter(admin.SimpleListFilter):
    """Whose usage a record is: an allocation's, nobody's (no allocation has its account on the
    cluster), or nobody's because it started outside the window of its account's allocation."""

    title = "attribution"
    parameter_name = "attribution"

    def lookups(self, request, model_admin):
        return [
            ("attributed", "counted against an allocation"),
            ("unmatched", "no allocation for the account"),
            ("outside_window", "outside the allocation's window"),
        ]

    def queryset(self, request, queryset):
        owner = Exists(
            Allocation.objects.filter(
                cluster_id=OuterRef("cluster_id"), account_key=OuterRef("account_key")
            )
        )
        if self.value() == "attributed":
            return queryset.filter(allocation__isnull=False)
        if self.value() == "unmatched":
            return queryset.filter(allocation__isnull=True).exclude(owner)
        if self.value() == "outside_window":
            return queryset.filter(owner, allocation__isnull=True)
        return queryset


class StateFilter(admin.SimpleListFilter):
    """The scheduler's job states, from the list Slurm documents rather than a DISTINCT over
    millions of records; a state outside it is found by searching for it."""

    title = "state"
    parameter_name = "state"
    STATES = (
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "REQUEUED",
        "RUNNING",
        "PENDING",
        "SUSPENDED",
    )

    def lookups(self, request, model_admin):
        return [(state, state) for state in self.STATES]

    def queryset(self, request, queryset):
        return queryset.filter(state=self.value()) if self.value() else queryset


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    # Millions of rows: the newest imported first along the primary key (no sort over the
    # table), the unfiltered list counted from the statistics, no second count of the whole
    # table, and filters that list small tables or fixed values.
    ordering = ["-id"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_display = [
        "job_id",
        "cluster",
        "account",
        "gpus",
        "gpu_hours",
        "state",
        "start",
        "end",
        "user",
        "allocation",
        "gpu_slices",
    ]
    list_filter = ["cluster", AttributionFilter, StateFilter, "running"]
    search_fields = ["job_id", "account", "user", "job_name"]
    list_select_related = ["cluster", "allocation__cluster"]
    raw_id_fields = ["allocation", "partition", "import_run"]
    readonly_fields = [f.name for f in UsageRecord._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        """A job number alone is looked up in the run-key index (seconds at millions of
        records otherwise). The page says so under the search box
        (templates/admin/usage/usagerecord/change_list.html)."""
        job = search_term.strip()
        if job.isascii() and job.isdigit():
            return usage_records_of_job(records=queryset, job=job), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="GPU-hours", ordering="gpu_seconds")
    def gpu_hours(self, obj: UsageRecord) -> str:
        return formats.hours_from_seconds(obj.gpu_seconds)
