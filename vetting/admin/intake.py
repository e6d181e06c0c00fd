from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin, ReadOnlyInline
from vetting.models import Application, ApplicationEvent, ApplicationResource


class ResourceInline(ReadOnlyInline):
    model = ApplicationResource
    fields = ["partition", "gpu_hours"]
    readonly_fields = fields
    select_related = ("partition__cluster",)


class EventInline(ReadOnlyInline):
    model = ApplicationEvent
    fields = ["at", "from_state", "to_state", "actor", "reason", "public_note"]
    readonly_fields = fields
    select_related = ("actor",)


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    """Applications as staff read them. Every change goes through vetting.services, so the
    admin offers no editing; the review workflow adds its own actions."""

    list_display = [
        "__str__",
        "organisation",
        "access_mode",
        "state",
        "compute_class",
        "submitted_at",
    ]
    list_filter = ["state", "call", "access_mode__kind", "compute_class"]
    search_fields = ["title", "model_name", "organisation__legal_name", "pi_name"]
    date_hierarchy = "created_at"
    list_select_related = ["organisation", "access_mode__call"]
    inlines = [ResourceInline, EventInline]
    exclude = ["technical_annex", "unparsed_input"]

    def get_readonly_fields(self, request, obj=None):
        fields = [f.name for f in self.model._meta.fields if f.name not in self.exclude]
        return [*fields, "annex_link"]

    @admin.display(description="technical annex")
    def annex_link(self, obj: Application) -> str:
        if not obj.technical_annex:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("vetting:annex", args=[obj.pk]),
            obj.technical_annex_name or "download",
        )
