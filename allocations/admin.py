from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from allocations import services
from allocations.exports import (
    SCHEDULER_FORMATS,
    ExportError,
    export_create,
    export_filename,
    export_response,
)
from allocations.models import (
    Allocation,
    AllocationEvent,
    AllocationUser,
    ChangeRequest,
    SchedulerExport,
)
from allocations.names import account_key

# Importing these modules registers the usage, alert and register admin pages.
from core import formats
from core.admin import ReadOnlyAdmin, ReadOnlyInline, apply_with_reason
from systems.models import (
    Cluster,
)


def _allocation_action(name: str, service, *, reason_required: bool = False):
    @admin.action(description=f"{name.capitalize()} selected allocations", permissions=["change"])
    def action(modeladmin, request, queryset):
        return apply_with_reason(
            modeladmin,
            request,
            queryset,
            title=f"{name.capitalize()} allocations",
            reason_required=reason_required,
            apply=lambda obj, actor, reason: service(allocation=obj, actor=actor, reason=reason),
        )

    action.__name__ = name.replace(" ", "_")
    return action


class AllocationUserInline(ReadOnlyInline):
    model = AllocationUser
    fields = ["username", "added_by", "added_at"]
    readonly_fields = fields
    select_related = ("added_by",)


class AllocationEventInline(ReadOnlyInline):
    model = AllocationEvent
    fields = ["at", "action", "from_state", "to_state", "actor", "reason"]
    readonly_fields = fields
    ordering = ["-at", "-id"]
    select_related = ("actor",)


class ExhaustedFilter(admin.SimpleListFilter):
    title = "exhausted"
    parameter_name = "exhausted"

    def lookups(self, request, model_admin):
        return [("yes", "Exhausted"), ("no", "Not exhausted")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(exhausted_at__isnull=self.value() == "no")
        return queryset


@admin.register(Allocation)
class AllocationAdmin(admin.ModelAdmin):
    list_display = [
        "account",
        "cluster",
        "partition",
        "organisation",
        "granted",
        "start",
        "end",
        "state",
        "exhausted",
        "first_exported_at",
    ]
    list_filter = ["state", ExhaustedFilter, "cluster", "access_mode__call"]
    search_fields = ["account", "organisation__legal_name", "project", "model_name"]
    list_select_related = ["cluster", "partition__cluster", "organisation"]
    date_hierarchy = "start"
    inlines = [AllocationUserInline, AllocationEventInline]
    actions = [
        _allocation_action("suspend", services.allocation_suspend, reason_required=True),
        _allocation_action("reactivate", services.allocation_reactivate),
        _allocation_action("expire", services.allocation_expire),
        _allocation_action("close", services.allocation_close, reason_required=True),
        _allocation_action("clear exhausted mark", services.allocation_clear_exhausted),
    ]
    # Grants change through change requests and states through the actions above.
    editable_on_change = ("project", "model_name")

    def has_add_permission(self, request) -> bool:
        # Allocations come from a call decision (allocations_grant) or import_allocations.
        return False

    def get_readonly_fields(self, request, obj=None):
        editable = set(self.editable_on_change)
        if obj is not None and obj.first_exported_at is None:
            editable.add("account")
        names = [f.name for f in Allocation._meta.fields if f.name != "id"]
        return [name for name in names if name not in editable]

    @admin.display(boolean=True)
    def exhausted(self, obj: Allocation) -> bool:
        return obj.is_exhausted

    @admin.display(description="granted GPU-hours", ordering="gpu_hours")
    def granted(self, obj: Allocation) -> str:
        return formats.whole(obj.gpu_hours)

    def save_model(self, request, obj, form, change):
        if "account" in form.changed_data:
            # A fresh copy: the service refreshes what it is given, which would drop the
            # other edits of this form.
            services.allocation_rename_account(
                allocation=Allocation.objects.get(pk=obj.pk),
                account=obj.account,
                actor=request.user,
            )
        fields = [name for name in form.changed_data if name != "account"]
        if fields:
            obj.save(update_fields=[*fields, "updated_at"])
            services.allocation_event_record(
                obj, "edited", actor=request.user, reason=", ".join(fields)
            )

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "account" in form.base_fields and obj is not None:
            allocation = obj

            def clean_account(self):
                account = self.cleaned_data["account"]
                try:
                    services.account_name_check(account)
                except ValidationError as error:
                    raise forms.ValidationError(error.messages) from error
                taken = Allocation.objects.filter(
                    cluster_id=allocation.cluster_id, account_key=account_key(account)
                )
                if taken.exclude(pk=allocation.pk).exists():
                    raise forms.ValidationError("This account is already used on this cluster.")
                return account

            form.clean_account = clean_account
        return form


@admin.register(ChangeRequest)
class ChangeRequestAdmin(admin.ModelAdmin):
    list_display = [
        "allocation",
        "kind",
        "extra",
        "new_end",
        "state",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["state", "kind", "allocation__cluster"]
    search_fields = ["allocation__account", "allocation__organisation__legal_name"]
    list_select_related = ["allocation__cluster", "requested_by", "decided_by"]
    readonly_fields = [f.name for f in ChangeRequest._meta.fields]
    actions = ["approve", "deny"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="extra GPU-hours", ordering="extra_gpu_hours")
    def extra(self, obj: ChangeRequest) -> str:
        return formats.whole(obj.extra_gpu_hours) if obj.extra_gpu_hours else "—"

    @admin.action(description="Approve selected requests", permissions=["change"])
    def approve(self, request, queryset):
        return apply_with_reason(
            self,
            request,
            queryset,
            title="Approve change requests",
            apply=lambda obj, actor, reason: services.change_request_approve(
                change_request=obj, actor=actor, reason=reason
            ),
        )

    @admin.action(description="Deny selected requests", permissions=["change"])
    def deny(self, request, queryset):
        return apply_with_reason(
            self,
            request,
            queryset,
            title="Deny change requests",
            reason_required=True,
            apply=lambda obj, actor, reason: services.change_request_deny(
                change_request=obj, actor=actor, reason=reason
            ),
        )


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=SchedulerExport.Format.choices)
    cluster = forms.ModelChoiceField(
        queryset=Cluster.objects.order_by("name"),
        required=False,
        help_text="Required for the sacctmgr formats; JSON and CSV cover all clusters without one.",
    )

    def clean(self):
        data = super().clean()
        if data.get("format") in SCHEDULER_FORMATS and not data.get("cluster"):
            self.add_error("cluster", "Choose the cluster this export is for.")
        return data


@admin.register(SchedulerExport)
class SchedulerExportAdmin(ReadOnlyAdmin):
    # Exports are produced by the export page below, never typed in, and never deleted: the
    # history is the baseline of the next commands export.
    list_display = [
        "created_at",
        "cluster",
        "format",
        "allocations",
        "created_by",
        "applied",
        "short_checksum",
        "download",
    ]
    list_filter = ["format", "cluster", "for_site_agent"]
    list_select_related = ["cluster", "created_by", "applied_by_token"]
    date_hierarchy = "created_at"
    search_fields = ["checksum"]
    fields = ["created_at", "cluster", "format", "allocations", "created_by", "for_site_agent",
              "applied_at", "applied_by_token", "checksum", "download", "content"]  # fmt: skip
    readonly_fields = fields
    change_list_template = "admin/allocations/schedulerexport/change_list.html"

    def get_queryset(self, request):
        # An export's content and snapshot run to megabytes at a centre's scale; the list shows
        # neither, and the page of one export reads them when it needs them.
        return super().get_queryset(request).defer("content", "snapshot")

    @admin.display(description="applied by the site agent")
    def applied(self, obj: SchedulerExport) -> str:
        if not obj.for_site_agent:
            return "-"
        if obj.applied_at is None:
            return "pending"
        return f"{timezone.localtime(obj.applied_at):%Y-%m-%d %H:%M} ({obj.applied_by_token.name})"

    @admin.display(description="SHA-256")
    def short_checksum(self, obj: SchedulerExport) -> str:
        return obj.checksum[:12]

    @admin.display(description="file")
    def download(self, obj: SchedulerExport) -> str:
        url = reverse("admin:allocations_schedulerexport_download", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, export_filename(obj))

    def get_urls(self):
        own = [
            path(
                "produce/",
                self.admin_site.admin_view(self.produce_view),
                name="allocations_schedulerexport_produce",
            ),
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="allocations_schedulerexport_download",
            ),
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_produce": _can_produce(request.user)}
        return super().changelist_view(request, extra_context)

    def produce_view(self, request):
        if not _can_produce(request.user):
            raise PermissionDenied
        form = ExportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                export = export_create(
                    fmt=form.cleaned_data["format"],
                    cluster=form.cleaned_data["cluster"],
                    actor=request.user,
                )
            except ExportError as error:
                form.add_error(None, str(error))
            else:
                self.message_user(
                    request,
                    f"Export produced: {export.allocations} allocations, "
                    f"SHA-256 {export.checksum}.",
                    messages.SUCCESS,
                )
                return redirect("admin:allocations_schedulerexport_change", export.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Produce a scheduler export",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/allocations/schedulerexport/produce.html", context)

    def download_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        export = get_object_or_404(SchedulerExport.objects.select_related("cluster"), pk=pk)
        return export_response(export)


def _can_produce(user) -> bool:
    return user.has_perm("allocations.add_schedulerexport")
