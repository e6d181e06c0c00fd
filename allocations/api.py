"""API: allocations (applicants their own, staff all), their cluster users and change requests,
and scheduler exports (operators)."""

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import generics, mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from allocations import services
from allocations.exports import ExportError, export_create
from allocations.models import Allocation, AllocationUser, ChangeRequest, SchedulerExport
from allocations.names import USER_NAME_RULE
from allocations.selectors import (
    allocation_managed_by,
    allocations_for_member,
    allocations_visible_to,
    change_requests_visible_to,
)
from allocations.services import TransitionError
from core.api import CONFLICT, INVALID, Conflict, FormatParameterNegotiation
from core.filters import ID_MAX, IdFilter
from systems.models import Cluster


class AllocationOutput(serializers.ModelSerializer):
    organisation = serializers.CharField(source="organisation.legal_name")
    registration_id = serializers.CharField(source="organisation.registration_id")
    cluster = serializers.CharField(source="cluster.name")
    partition = serializers.CharField(source="partition.name")
    model = serializers.CharField(source="model_name", help_text="Declared model; may be empty.")
    exhausted = serializers.BooleanField(source="is_exhausted")
    gpu_minutes = serializers.IntegerField(
        help_text="The Slurm budget: GrpTRESMins=gres/gpu on the account's NoDecay QOS."
    )
    users = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)

    class Meta:
        model = Allocation
        fields = [
            "id",
            "organisation",
            "registration_id",
            "project",
            "cluster",
            "partition",
            "account",
            "gpu_hours",
            "gpu_minutes",
            "start",
            "end",
            "state",
            "exhausted",
            "model",
            "users",
            "first_exported_at",
        ]


class AllocationFilter(django_filters.FilterSet):
    cluster = django_filters.CharFilter(field_name="cluster__name", help_text="Cluster name.")
    state = django_filters.ChoiceFilter(choices=Allocation.State.choices)

    class Meta:
        model = Allocation
        fields = ["cluster", "state"]


@extend_schema_view(
    list=extend_schema(
        tags=["allocations"],
        summary="Allocations: your organisations' ones, or all for staff allowed to view them",
    ),
    retrieve=extend_schema(tags=["allocations"], summary="One allocation"),
)
class AllocationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AllocationOutput
    filterset_class = AllocationFilter

    def get_queryset(self):
        return (
            allocations_visible_to(self.request.user)
            .prefetch_related("users")
            .order_by("cluster__name", "account")
        )


class ExportPermission(permissions.BasePermission):
    """Reading the history needs the view permission; producing an export the add permission."""

    def has_permission(self, request, view) -> bool:
        action = "view" if request.method in permissions.SAFE_METHODS else "add"
        return request.user.has_perm(f"allocations.{action}_schedulerexport")


class ExportInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=SchedulerExport.Format.choices)
    cluster = serializers.CharField(
        max_length=63,
        required=False,
        allow_null=True,
        help_text="Cluster name; required for slurm and commands.",
    )


class SchedulerExportInput(serializers.Serializer):
    """slurm and commands: the scheduler state of one cluster."""

    format = serializers.ChoiceField(choices=[f.value for f in SchedulerExport.Format][:2])
    cluster = serializers.CharField(max_length=63, help_text="Cluster name.")


class FileExportInput(serializers.Serializer):
    """json and csv: every allocation, or one cluster's."""

    format = serializers.ChoiceField(choices=[f.value for f in SchedulerExport.Format][2:])
    cluster = serializers.CharField(
        max_length=63, required=False, allow_null=True, help_text="Cluster name (optional)."
    )


EXPORT_INPUT = PolymorphicProxySerializer(
    component_name="ExportInput",
    serializers=[SchedulerExportInput, FileExportInput],
    resource_type_field_name=None,
)


class ExportSummaryOutput(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name", allow_null=True, default=None)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    applied_by_token = serializers.CharField(
        source="applied_by_token.name",
        allow_null=True,
        default=None,
        help_text="Name of the site token whose agent applied the export.",
    )

    class Meta:
        model = SchedulerExport
        fields = [
            "id",
            "format",
            "cluster",
            "checksum",
            "allocations",
            "created_by",
            "created_at",
            "for_site_agent",
            "applied_at",
            "applied_by_token",
        ]


class ExportOutput(ExportSummaryOutput):
    class Meta(ExportSummaryOutput.Meta):
        fields = [*ExportSummaryOutput.Meta.fields, "content"]


@extend_schema(tags=["exports"])
class ExportListCreateView(generics.ListAPIView):
    permission_classes = [permissions.IsAuthenticated, ExportPermission]
    content_negotiation_class = FormatParameterNegotiation
    serializer_class = ExportSummaryOutput
    filterset_fields = ["format"]
    # The content and snapshot run to megabytes each; the list shows neither.
    queryset = (
        SchedulerExport.objects.select_related("cluster", "created_by", "applied_by_token")
        .defer("content", "snapshot")
        .order_by("-created_at", "-id")
    )

    @extend_schema(summary="Export history: who, when, cluster, format, checksum")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Produce an export; slurm and commands move the baseline of the next commands",
        request=EXPORT_INPUT,
        responses={201: ExportOutput},
    )
    def post(self, request):
        data = ExportInput(data=request.data)
        data.is_valid(raise_exception=True)
        cluster = None
        if data.validated_data.get("cluster") is not None:
            cluster = Cluster.objects.filter(name=data.validated_data["cluster"]).first()
            if cluster is None:
                raise NotFound("No such cluster.")
        try:
            export = export_create(
                fmt=data.validated_data["format"], cluster=cluster, actor=request.user
            )
        except ExportError as error:
            raise serializers.ValidationError({"cluster": [str(error)]}) from error
        return Response(ExportOutput(export).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["exports"], summary="One export with its content")
class ExportDetailView(generics.RetrieveAPIView):
    permission_classes = [permissions.IsAuthenticated, ExportPermission]
    serializer_class = ExportOutput
    queryset = SchedulerExport.objects.select_related("cluster", "created_by", "applied_by_token")


def _conflict(error: TransitionError) -> Conflict:
    return Conflict(str(error))


# Cluster users: the organisation's members see them, its owners add and remove them.


class ClusterUserOutput(serializers.ModelSerializer):
    class Meta:
        model = AllocationUser
        fields = ["username", "added_at"]


class ClusterUserInput(serializers.Serializer):
    # the scheduler's rule (allocations.names), written so that the schema can carry it
    username = serializers.RegexField(
        r"^[a-z_][a-z0-9_.-]{0,31}$",
        max_length=32,
        trim_whitespace=False,
        help_text=f"The login name on the supercomputer, e.g. jdoe: {USER_NAME_RULE}.",
    )


def _allocation_for_member(request, pk) -> Allocation:
    """The allocation if the caller may see it (members; staff allowed to view allocations);
    404 otherwise, so its existence does not leak."""
    allocation = allocations_visible_to(request.user).filter(pk=pk).first()
    if allocation is None:
        raise NotFound("No such allocation.")
    return allocation


def _allocation_for_owner(request, pk) -> Allocation:
    allocation = allocations_for_member(request.user).filter(pk=pk).first()
    if allocation is None:
        _allocation_for_member(request, pk)  # 404 for those who cannot see it at all
        raise PermissionDenied("Only owners of the organisation can do this.")
    if not allocation_managed_by(request.user, allocation):
        raise PermissionDenied("Only owners of the organisation can do this.")
    return allocation


@extend_schema(tags=["allocations"])
class ClusterUserListView(APIView):
    @extend_schema(
        summary="Cluster users of an allocation", responses={200: ClusterUserOutput(many=True)}
    )
    def get(self, request, pk: int):
        allocation = _allocation_for_member(request, pk)
        return Response(ClusterUserOutput(allocation.users.order_by("username"), many=True).data)

    @extend_schema(
        summary="Add a cluster user (owners of the organisation)",
        request=ClusterUserInput,
        responses={201: ClusterUserOutput, 400: INVALID, 409: CONFLICT},
    )
    def post(self, request, pk: int):
        allocation = _allocation_for_owner(request, pk)
        data = ClusterUserInput(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        if allocation.users.filter(username=username).exists():
            raise Conflict(f"'{username}' is already a user of {allocation.account}.")
        try:
            user = services.allocation_user_add(
                allocation=allocation, username=username, actor=request.user
            )
        except TransitionError as error:
            raise _conflict(error) from error
        except DjangoValidationError as error:
            raise serializers.ValidationError({"username": error.messages}) from error
        return Response(ClusterUserOutput(user).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["allocations"])
class ClusterUserDetailView(APIView):
    @extend_schema(
        summary="Remove a cluster user (owners of the organisation)",
        responses={204: None, 409: CONFLICT},
    )
    def delete(self, request, pk: int, username: str):
        allocation = _allocation_for_owner(request, pk)
        if not allocation.users.filter(username=username).exists():
            raise NotFound(f"'{username}' is not a user of {allocation.account}.")
        try:
            services.allocation_user_remove(
                allocation=allocation, username=username, actor=request.user
            )
        except TransitionError as error:
            raise _conflict(error) from error
        return Response(status=status.HTTP_204_NO_CONTENT)


# Change requests: owners ask for an extension or a top-up; call managers decide.


class ChangeRequestOutput(serializers.ModelSerializer):
    requested_by = serializers.CharField(
        source="requested_by.username", allow_null=True, default=None
    )
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    account = serializers.CharField(source="allocation.account")
    cluster = serializers.CharField(source="allocation.cluster.name")

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "allocation",
            "cluster",
            "account",
            "kind",
            "extra_gpu_hours",
            "new_end",
            "justification",
            "state",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_reason",
        ]


class _ChangeInput(serializers.Serializer):
    allocation = serializers.IntegerField(min_value=1, max_value=ID_MAX)
    justification = serializers.CharField(
        max_length=5000,
        help_text="Why the change is needed: progress so far, what the extra time or hours buy.",
    )


class ExtensionInput(_ChangeInput):
    new_end = serializers.DateField(help_text="After the allocation's current end.")


class TopUpInput(_ChangeInput):
    extra_gpu_hours = serializers.IntegerField(min_value=1, max_value=10**12)


class ApproveInput(serializers.Serializer):
    reason = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default="", help_text="For the record."
    )


class DenyInput(serializers.Serializer):
    reason = serializers.CharField(max_length=5000, help_text="The applicant reads it.")


class ChangeRequestFilter(django_filters.FilterSet):
    allocation = IdFilter(field_name="allocation_id")
    state = django_filters.ChoiceFilter(choices=ChangeRequest.State.choices)
    kind = django_filters.ChoiceFilter(choices=ChangeRequest.Kind.choices)

    class Meta:
        model = ChangeRequest
        fields = ["allocation", "state", "kind"]


@extend_schema_view(
    list=extend_schema(summary="Change requests: my organisations' ones, or all for call managers"),
    retrieve=extend_schema(summary="One change request"),
)
@extend_schema(tags=["change requests"])
class ChangeRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = ChangeRequestOutput
    filterset_class = ChangeRequestFilter

    def get_queryset(self):
        return change_requests_visible_to(self.request.user).order_by("-requested_at", "-id")

    def _submit(self, request, serializer_class, kind: str) -> Response:
        data = serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        allocation = _allocation_for_owner(request, values["allocation"])
        try:
            change = services.change_request_submit(
                allocation=allocation,
                kind=kind,
                justification=values["justification"],
                requested_by=request.user,
                extra_gpu_hours=values.get("extra_gpu_hours") or 0,
                new_end=values.get("new_end"),
            )
        except (TransitionError, DjangoValidationError) as error:
            # e.g. an end date not after the current one, or an allocation that has ended
            message = error.messages[0] if hasattr(error, "messages") else str(error)
            raise Conflict(message) from error
        return Response(
            ChangeRequestOutput(self.get_queryset().get(pk=change.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Ask for a later end date (owners of the organisation)",
        request=ExtensionInput,
        responses={201: ChangeRequestOutput, 400: INVALID, 409: CONFLICT},
    )
    @action(detail=False, methods=["post"])
    def extensions(self, request):
        return self._submit(request, ExtensionInput, ChangeRequest.Kind.EXTENSION)

    @extend_schema(
        summary="Ask for more GPU-hours (owners of the organisation)",
        request=TopUpInput,
        responses={201: ChangeRequestOutput, 400: INVALID, 409: CONFLICT},
    )
    @action(detail=False, methods=["post"], url_path="top-ups")
    def top_ups(self, request):
        return self._submit(request, TopUpInput, ChangeRequest.Kind.TOP_UP)

    def _decide(self, request, service, serializer_class) -> Response:
        if not (
            request.user.is_staff and request.user.has_perm("allocations.change_changerequest")
        ):
            raise PermissionDenied("Only call managers decide change requests.")
        change = self.get_object()
        data = serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            service(change_request=change, actor=request.user, reason=data.validated_data["reason"])
        except TransitionError as error:
            raise _conflict(error) from error
        return Response(ChangeRequestOutput(self.get_queryset().get(pk=change.pk)).data)

    @extend_schema(
        summary="Approve: the extension or top-up is applied (call managers)",
        request=ApproveInput,
        responses={200: ChangeRequestOutput, 400: INVALID, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._decide(request, services.change_request_approve, ApproveInput)

    @extend_schema(
        summary="Deny, with a reason for the applicant (call managers)",
        request=DenyInput,
        responses={200: ChangeRequestOutput, 400: INVALID, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def deny(self, request, pk=None):
        return self._decide(request, services.change_request_deny, DenyInput)
