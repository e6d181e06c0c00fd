"""API: threshold alerts (list, acknowledge) and the register of large training runs, for the
staff who see them in the admin, with the same permissions."""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from compliance.models import Alert, LargeRunEntry, Scope
from compliance.monitoring import alert_acknowledge
from core.api import CONFLICT, INVALID, Conflict
from core.filters import BooleanFilter, InstantFilter
from core.permissions import StaffModelPermission


class AlertOutput(serializers.ModelSerializer):
    policy_version = serializers.IntegerField(source="policy.version")
    allocation = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", allow_null=True, default=None
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "level",
            "scope",
            "subject",
            "value",
            "threshold",
            "policy_version",
            "allocation",
            "raised_at",
            "notified_at",
            "acknowledged_by",
            "acknowledged_at",
            "acknowledgement_note",
        ]


class AcknowledgeInput(serializers.Serializer):
    note = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default="",
        help_text="What was done or agreed, for the record.",
    )  # fmt: skip


class AlertFilter(django_filters.FilterSet):
    level = django_filters.CharFilter()
    scope = django_filters.ChoiceFilter(choices=Scope.choices)
    acknowledged = BooleanFilter(
        field_name="acknowledged_at", lookup_expr="isnull", exclude=True,
        help_text="true: only acknowledged alerts; false: only those nobody acknowledged yet.",
    )  # fmt: skip
    raised_after = InstantFilter(field_name="raised_at", lookup_expr="gte")
    raised_before = InstantFilter(field_name="raised_at", lookup_expr="lt")

    class Meta:
        model = Alert
        fields = ["level", "scope"]


class AlertPermission(StaffModelPermission):
    model = "compliance.alert"


@extend_schema_view(
    list=extend_schema(summary="Threshold alerts, newest first"),
    retrieve=extend_schema(summary="One alert"),
)
@extend_schema(tags=["alerts"])
class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Call managers, operators and governance officers: every alert the threshold check raised."""

    serializer_class = AlertOutput
    permission_classes = [permissions.IsAuthenticated, AlertPermission]
    filterset_class = AlertFilter

    def get_queryset(self):
        return Alert.objects.select_related("policy", "acknowledged_by").order_by(
            "-raised_at", "-id"
        )

    @extend_schema(
        summary="Acknowledge an alert, with a note for the record",
        request=AcknowledgeInput,
        responses={200: AlertOutput, 400: INVALID, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        alert = self.get_object()
        data = AcknowledgeInput(data=request.data)
        data.is_valid(raise_exception=True)
        if not alert_acknowledge(alert=alert, actor=request.user, note=data.validated_data["note"]):
            raise Conflict("This alert was already acknowledged.")
        return Response(AlertOutput(self.get_queryset().get(pk=alert.pk)).data)


class RegisterEntryOutput(serializers.ModelSerializer):
    policy_version = serializers.IntegerField(source="policy.version")
    allocations = serializers.SerializerMethodField()

    class Meta:
        model = LargeRunEntry
        fields = [
            "id",
            "scope",
            "subject",
            "category",
            "basis",
            "compute_flop",
            "projected_flop",
            "method",
            "policy_version",
            "first_crossed_on",
            "notification_deadline",
            "reminders_sent",
            "notified_on",
            "allocations",
        ]

    def get_allocations(self, entry) -> list[str]:
        """`cluster:account` of each allocation the entry counts."""
        return sorted(f"{a.cluster.name}:{a.account}" for a in entry.allocations.all())


class RegisterFilter(django_filters.FilterSet):
    scope = django_filters.ChoiceFilter(choices=Scope.choices)
    category = django_filters.ChoiceFilter(choices=LargeRunEntry.Category.choices)
    notified = BooleanFilter(field_name="notified_on", lookup_expr="isnull", exclude=True)

    class Meta:
        model = LargeRunEntry
        fields = ["scope", "category"]


class RegisterPermission(StaffModelPermission):
    model = "compliance.largerunentry"


@extend_schema_view(
    list=extend_schema(summary="The register of large training runs"),
    retrieve=extend_schema(summary="One register entry"),
)
@extend_schema(tags=["register"])
class RegisterViewSet(viewsets.ReadOnlyModelViewSet):
    """Governance officers and call managers: efforts that crossed the GPAI or systemic-risk
    line, with the art. 52 deadline."""

    serializer_class = RegisterEntryOutput
    permission_classes = [permissions.IsAuthenticated, RegisterPermission]
    filterset_class = RegisterFilter

    def get_queryset(self):
        return (
            LargeRunEntry.objects.select_related("policy")
            .prefetch_related("allocations__cluster")
            .order_by("-first_crossed_on", "subject", "id")
        )
