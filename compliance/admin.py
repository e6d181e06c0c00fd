from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from compliance.confidential import unseal_or_note
from compliance.models import Alert, LargeRunEntry, MisuseReport
from compliance.monitoring import alerts_acknowledge
from compliance.selectors import register_csv
from compliance.services import (
    MESSAGE_MAX_CHARS,
    ReportClosedError,
    report_acknowledge,
    report_close,
    report_reply,
)
from compliance.thresholds import level_figure
from core import roles


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
            .prefetch_related("allocations__cluster", "alerts")
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


def _officer(request) -> bool:
    return roles.has_role(request.user, roles.GOVERNANCE_OFFICER)


class MisuseReportForm(forms.ModelForm):
    acknowledge = forms.BooleanField(
        required=False,
        label="Acknowledge receipt",
        help_text="Sends the reporter the standard acknowledgement with the feedback date.",
    )
    reply = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        required=False,
        max_length=MESSAGE_MAX_CHARS,
        label="Reply to the reporter",
        help_text=(
            "The reporter reads it with their case key. A first reply acknowledges the report; "
            "the first after the acknowledgement is the feedback."
        ),
    )
    close_with = forms.ChoiceField(
        label="Outcome",
        choices=[("", "Still open"), *MisuseReport.Outcome.choices],
        required=False,
        help_text="Recording an outcome closes the case; the reporter sees the outcome.",
    )
    outcome_note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        required=False,
        max_length=MESSAGE_MAX_CHARS,
        help_text="For the record, encrypted; the reporter does not see it.",
    )

    class Meta:
        model = MisuseReport
        fields = ["category", "organisations", "allocations", "alerts"]

    def clean(self):
        data = super().clean()
        closed = self.instance.status == MisuseReport.Status.CLOSED
        if closed and (data.get("reply") or data.get("close_with") or data.get("acknowledge")):
            raise forms.ValidationError("This case is closed.")
        return data


@admin.register(MisuseReport)
class MisuseReportAdmin(admin.ModelAdmin):
    """Confidential reports, decrypted for governance officers and nobody else."""

    form = MisuseReportForm
    list_display = [
        "case",
        "category",
        "received_on",
        "status",
        "acknowledgement",
        "feedback",
        "outcome",
    ]
    list_filter = ["status", "category", "outcome"]
    date_hierarchy = "received_on"
    autocomplete_fields = ["organisations", "allocations", "alerts"]
    readonly_fields = [
        "case",
        "status",
        "received_on",
        "acknowledgement",
        "feedback",
        "closed_on",
        "shown_outcome",
        "conversation",
    ]
    fieldsets = [
        (
            None,
            {"fields": ["case", "category", "status", "received_on", "conversation"]},
        ),
        (
            "Deadlines (EU Whistleblower Directive 2019/1937 art. 9(1), AI Act art. 87)",
            {"fields": ["acknowledgement", "feedback", "closed_on", "shown_outcome"]},
        ),
        ("Answer", {"fields": ["acknowledge", "reply", "close_with", "outcome_note"]}),
        ("Linked to", {"fields": ["organisations", "allocations", "alerts"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("messages__officer")

    def has_module_permission(self, request) -> bool:
        return _officer(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return _officer(request) and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return _officer(request) and super().has_change_permission(request, obj)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="case", ordering="pk")
    def case(self, obj: MisuseReport) -> str:
        return f"Case {obj.pk}"

    @admin.display(description="acknowledgement")
    def acknowledgement(self, obj: MisuseReport) -> str:
        if obj.acknowledged_on:
            return f"sent {obj.acknowledged_on:%Y-%m-%d}"
        return _due(obj.acknowledgement_due, obj.status)

    @admin.display(description="feedback")
    def feedback(self, obj: MisuseReport) -> str:
        if obj.feedback_on:
            return f"given {obj.feedback_on:%Y-%m-%d}"
        return _due(obj.feedback_due, obj.status)

    @admin.display(description="outcome")
    def shown_outcome(self, obj: MisuseReport) -> str:
        if not obj.outcome:
            return "-"
        note = unseal_or_note(obj.outcome_note_sealed)
        return f"{obj.get_outcome_display()}" + (f": {note}" if note else "")

    @admin.display(description="report and replies")
    def conversation(self, obj: MisuseReport) -> str:
        conversation = [
            {
                "author": m.author,
                "author_label": m.get_author_display(),
                "officer": m.officer,
                "written_on": m.written_on,
                "text": unseal_or_note(m.body_sealed),
            }
            for m in obj.messages.all()
        ]
        return render_to_string(
            "admin/compliance/misusereport/_conversation.html", {"conversation": conversation}
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        report, data = form.instance, form.cleaned_data
        try:
            if data.get("acknowledge"):
                report_acknowledge(report=report, officer=request.user)
            if data.get("reply", "").strip():
                report_reply(report=report, officer=request.user, text=data["reply"])
            if data.get("close_with"):
                report_close(
                    report=report,
                    officer=request.user,
                    outcome=data["close_with"],
                    note=data.get("outcome_note", ""),
                )
        except (ReportClosedError, ValidationError) as error:
            text = error.messages[0] if isinstance(error, ValidationError) else str(error)
            self.message_user(request, text, messages.ERROR)


def _due(day, status) -> str:
    if status == MisuseReport.Status.CLOSED:
        return "-"
    late = day < timezone.localdate()
    return format_html(
        '<strong style="color:#ba2121">due {} (overdue)</strong>' if late else "due {}",
        f"{day:%Y-%m-%d}",
    )
