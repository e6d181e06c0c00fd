"""API: allocations (applicants their own, staff all) and scheduler exports (operators)."""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, permissions, serializers, status, viewsets
from rest_framework.response import Response

from allocations.exports import ExportError, export_create
from allocations.models import Allocation, SchedulerExport
from allocations.selectors import allocations_visible_to
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
    cluster = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Cluster.objects.all(),
        required=False,
        allow_null=True,
        help_text="Cluster name; required for slurm and commands.",
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
    serializer_class = ExportSummaryOutput
    filterset_fields = ["format"]
    queryset = SchedulerExport.objects.select_related(
        "cluster", "created_by", "applied_by_token"
    ).order_by("-created_at", "-id")

    @extend_schema(summary="Export history: who, when, cluster, format, checksum")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Produce an export; slurm and commands move the baseline of the next commands",
        request=ExportInput,
        responses={201: ExportOutput},
    )
    def post(self, request):
        data = ExportInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            export = export_create(
                fmt=data.validated_data["format"],
                cluster=data.validated_data.get("cluster"),
                actor=request.user,
            )
        except ExportError as error:
            raise serializers.ValidationError({"cluster": [str(error)]}) from error
        return Response(ExportOutput(export).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["exports"], summary="One export with its content")
class ExportDetailView(generics.RetrieveAPIView):
    permission_classes = [permissions.IsAuthenticated, ExportPermission]
    serializer_class = ExportOutput
    queryset = SchedulerExport.objects.select_related("cluster", "created_by", "applied_by_token")
