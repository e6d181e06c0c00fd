from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from simple_history.admin import SimpleHistoryAdmin

from compliance.models import Alert, LargeRunEntry
from compliance.monitoring import alerts_acknowledge
from compliance.selectors import register_csv
from compliance.thresholds import level_figure


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

    # Figures as people read them (GPUs, GB, FLOP, a share) in place of the raw numbers.
    shown = {"value": "shown_value", "threshold": "shown_threshold", "evidence": "shown_evidence"}

    def get_fields(self, request, obj=None):
        return [self.shown.get(f.name, f.name) for f in Alert._meta.fields if f.name != "id"]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="evidence")
    def shown_evidence(self, obj: Alert) -> str:
        if not obj.evidence:
            return "-"
        return render_to_string("admin/compliance/alert/_evidence.html", {"e": obj.evidence})

    @admin.display(description="value")
    def shown_value(self, obj: Alert) -> str:
        return level_figure(obj.level, obj.value)

    @admin.display(description="threshold")
    def shown_threshold(self, obj: Alert) -> str:
        return level_figure(obj.level, obj.threshold)

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
        "alerts",
    ]
    autocomplete_fields = ["alerts"]
    editable = ("notified_on", "alerts")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("policy")
            .prefetch_related("allocations__cluster")
        )

    def get_readonly_fields(self, request, obj=None):
        return [f for f in self.fields if f not in self.editable]

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
