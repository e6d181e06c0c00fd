from django.contrib import admin
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from core import formats
from core.admin import ReadOnlyAdmin, ReadOnlyInline
from vetting.models import Application, ApplicationEvent, ApplicationResource
from vetting.selectors import intake as selectors


class ResourceInline(ReadOnlyInline):
    model = ApplicationResource
    fields = ["partition", "requested_gpu_hours"]
    readonly_fields = fields
    select_related = ("partition__cluster",)

    @admin.display(description="GPU-hours")
    def requested_gpu_hours(self, obj: ApplicationResource) -> str:
        return formats.whole(obj.gpu_hours)


class EventInline(ReadOnlyInline):
    model = ApplicationEvent
    fields = ["at", "from_state", "to_state", "actor", "reason", "public_note"]
    readonly_fields = fields
    select_related = ("actor",)


class ComputeClassFilter(admin.SimpleListFilter):
    title = "compute class"
    parameter_name = "compute_class"

    def lookups(self, request, model_admin):
        return list(formats.CLASSIFICATIONS.items())

    def queryset(self, request, queryset):
        return queryset.filter(compute_class=self.value()) if self.value() else queryset


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    """Applications as staff read them. Every change goes through vetting.services, so the
    admin offers no editing; the review workflow adds its own actions."""

    list_display = [
        "__str__",
        "organisation",
        "access_mode",
        "state",
        "classification",
        "submitted_at",
    ]
    list_filter = ["state", "call", "access_mode__kind", ComputeClassFilter]
    search_fields = ["title", "model_name", "organisation__legal_name", "pi_name"]
    date_hierarchy = "created_at"
    list_select_related = ["organisation", "access_mode__call"]
    inlines = [ResourceInline, EventInline]
    fieldsets = [
        (None, {"fields": ["title", "organisation", "call", "access_mode", "state"]}),
        (
            "Project",
            {
                "fields": [
                    "abstract",
                    "domain",
                    "civilian_use_confirmed",
                    "results_openness",
                    "weights_openness",
                    "eu_market",
                ]
            },
        ),
        (
            "Model plan",
            {
                "fields": [
                    "model_name",
                    "modality",
                    "training_kind",
                    "shown_parameters",
                    "shown_training_tokens",
                    "base_model",
                    "shown_base_model_flop",
                    "base_is_systemic_risk",
                    "shown_synthetic_data_flop",
                ]
            },
        ),
        ("Request", {"fields": ["start_date", "duration_months", "shown_utilisation"]}),
        (
            "Team",
            {"fields": ["pi_name", "pi_email", "pi_contract_end", "team_size", "hpc_experience"]},
        ),
        ("Ethics self-assessment", {"fields": ["ethics_answers"]}),
        ("AI Act", {"fields": ["commitments_made", "commitments_required"]}),
        (
            "Estimate frozen at submission",
            {"fields": ["estimate", "estimate_policy", "shown_estimated_flop", "classification"]},
        ),
        (
            "Record",
            {"fields": ["created_by", "created_at", "updated_at", "submitted_at", "annex_link"]},
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [name for _, options in self.fieldsets for name in options["fields"]]

    @admin.display(description="parameters")
    def shown_parameters(self, obj: Application) -> str:
        return formats.whole(obj.parameters)

    @admin.display(description="training tokens")
    def shown_training_tokens(self, obj: Application) -> str:
        return formats.whole(obj.training_tokens)

    @admin.display(description="base model training compute")
    def shown_base_model_flop(self, obj: Application) -> str:
        return _flop(obj.base_model_flop)

    @admin.display(description="compute for non-public synthetic data")
    def shown_synthetic_data_flop(self, obj: Application) -> str:
        return _flop(obj.synthetic_data_flop)

    @admin.display(description="expected utilisation of peak")
    def shown_utilisation(self, obj: Application) -> str:
        if obj.expected_utilisation is None:
            return "the policy's default"
        return formats.percent(obj.expected_utilisation)

    @admin.display(description="estimated training compute")
    def shown_estimated_flop(self, obj: Application) -> str:
        return _flop(obj.estimated_flop)

    @admin.display(description="compute class", ordering="compute_class")
    def classification(self, obj: Application) -> str:
        return formats.classification(obj.compute_class) if obj.compute_class else "—"

    @admin.display(description="answers")
    def ethics_answers(self, obj: Application) -> str:
        return render_to_string(
            "vetting/_ethics_table.html", {"ethics": selectors.ethics_rows(obj)}
        )

    @admin.display(description="commitments made")
    def commitments_made(self, obj: Application) -> str:
        return _bullets(selectors.commitment_labels(obj.commitments))

    @admin.display(description="required for the compute class")
    def commitments_required(self, obj: Application) -> str:
        keys = (obj.estimate_snapshot or {}).get("required_commitments")
        return _bullets(selectors.commitment_labels(keys))

    @admin.display(description="figures")
    def estimate(self, obj: Application) -> str:
        if not obj.estimate_snapshot:
            return "Not submitted yet."
        return render_to_string("vetting/_estimate_facts.html", {"estimate": obj.estimate_snapshot})

    @admin.display(description="technical annex")
    def annex_link(self, obj: Application) -> str:
        if not obj.technical_annex:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("vetting:annex", args=[obj.pk]),
            obj.technical_annex_name or "download",
        )


def _flop(value) -> str:
    return "—" if value is None else f"{formats.flop(value)} FLOP"


def _bullets(labels: list[str]) -> str:
    if not labels:
        return "none"
    return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((x,) for x in labels)))
