import csv

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import render
from simple_history.admin import SimpleHistoryAdmin

from compliance.models import Alert, LargeRunEntry
from compliance.monitoring import alerts_acknowledge
from core.csv import csv_cell


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=2000,
        help_text="What was done or agreed, for the record.",
    )


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "raised_at",
        "level",
        "scope",
        "subject",
        "shown_value",
        "shown_threshold",
        "policy",
        "acknowledged",
        "notified_at",
    ]
    list_filter = ["level", "scope", "policy", ("acknowledged_at", admin.EmptyFieldListFilter)]
    search_fields = ["subject"]
    date_hierarchy = "raised_at"
    list_select_related = ["policy", "acknowledged_by"]
    actions = ["acknowledge"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="value")
    def shown_value(self, obj: Alert) -> str:
        return _figure(obj.level, obj.value)

    @admin.display(description="threshold")
    def shown_threshold(self, obj: Alert) -> str:
        return _figure(obj.level, obj.threshold)

    @admin.display(boolean=True)
    def acknowledged(self, obj: Alert) -> bool:
        return obj.acknowledged_at is not None

    @admin.action(description="Acknowledge the selected alerts", permissions=["change"])
    def acknowledge(self, request, queryset):
        if "apply" in request.POST:
            form = AcknowledgeForm(request.POST)
            if form.is_valid():
                selected = queryset.count()
                done = alerts_acknowledge(
                    alerts=queryset, actor=request.user, note=form.cleaned_data["note"]
                )
                skipped = selected - done
                self.message_user(request, f"Acknowledged {done} alert(s).", messages.SUCCESS)
                if skipped:
                    self.message_user(
                        request,
                        f"{skipped} alert(s) had already been acknowledged.",
                        messages.WARNING,
                    )
                return None
        else:
            form = AcknowledgeForm()
        return render(
            request,
            "admin/compliance/alert/acknowledge.html",
            {
                **self.admin_site.each_context(request),
                "title": "Acknowledge alerts",
                "alerts": queryset,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )


def _figure(level: str, value: float) -> str:
    return f"{value:.0%}" if level.startswith("allocation_") else f"{value:.2g} FLOP"


REGISTER_COLUMNS = [
    "scope",
    "subject",
    "category",
    "compute_flop",
    "basis",
    "projected_flop",
    "method",
    "policy_version",
    "first_crossed_on",
    "notification_deadline",
    "notified_on",
    "allocations",
    "systems",
]


def register_rows(entries):
    for entry in entries:
        allocations = sorted(entry.allocations.all(), key=lambda a: (a.cluster.name, a.account))
        yield {
            "scope": entry.scope,
            "subject": entry.subject,
            "category": entry.category,
            "compute_flop": f"{entry.compute_flop:.2g}",
            "basis": entry.basis,
            "projected_flop": f"{entry.projected_flop:.2g}",
            "method": entry.method,
            "policy_version": entry.policy.version,
            "first_crossed_on": entry.first_crossed_on.isoformat(),
            "notification_deadline": (
                entry.notification_deadline.isoformat() if entry.notification_deadline else ""
            ),
            "notified_on": entry.notified_on.isoformat() if entry.notified_on else "",
            "allocations": " ".join(f"{a.cluster.name}:{a.account}" for a in allocations),
            "systems": " ".join(sorted({a.cluster.name for a in allocations})),
        }


def register_csv(entries) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REGISTER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {key: csv_cell(value) for key, value in row.items()} for row in register_rows(entries)
    )
    return buffer.getvalue()


@admin.register(LargeRunEntry)
class LargeRunEntryAdmin(SimpleHistoryAdmin):
    list_display = [
        "subject",
        "scope",
        "category",
        "shown_compute",
        "basis",
        "first_crossed_on",
        "notification_deadline",
        "notified_on",
        "systems",
    ]
    list_filter = ["category", "scope", "basis", ("notified_on", admin.EmptyFieldListFilter)]
    search_fields = ["subject"]
    date_hierarchy = "first_crossed_on"
    actions = ["export_csv"]
    fields = [
        "scope",
        "subject",
        "category",
        "basis",
        "compute_flop",
        "projected_flop",
        "method",
        "policy",
        "first_crossed_on",
        "notification_deadline",
        "reminders_sent",
        "notified_on",
        "allocations",
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("policy")
            .prefetch_related("allocations__cluster")
        )

    def get_readonly_fields(self, request, obj=None):
        return [f for f in self.fields if f != "notified_on"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="compute (FLOP)", ordering="compute_flop")
    def shown_compute(self, obj: LargeRunEntry) -> str:
        return f"{obj.compute_flop:.2g}"

    @admin.display(description="systems")
    def systems(self, obj: LargeRunEntry) -> str:
        return ", ".join(sorted({a.cluster.name for a in obj.allocations.all()}))

    @admin.action(description="Download the selected entries as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        response = HttpResponse(
            register_csv(queryset.order_by("first_crossed_on", "scope", "subject")),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="large-training-runs.csv"'
        return response
