"""API of the review workflow, with the admin's permissions: reviewers see their own
assignments, state a conflict of interest (or none) before reading, and score; call managers
assign reviewers, rank an access mode and decide. Every change calls vetting.services.review."""

import django_filters
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import CONFLICT, INVALID, Conflict
from core.filters import ID_MAX, IdFilter
from core.permissions import StaffModelPermission
from systems.models import AccessMode, AccessModePartition
from vetting.models import DRAFT_FIELDS, Application, Decision, Review, ReviewAssignment
from vetting.selectors import review as selectors
from vetting.serializers import EstimateSerializer, ResourceSerializer
from vetting.services import review as workflow
from vetting.services.transitions import TransitionError

# Reviewers and their assignments


class ApplicationBrief(serializers.ModelSerializer):
    organisation = serializers.CharField(source="organisation.legal_name")
    call = serializers.CharField(source="call.title")
    access_mode = serializers.CharField(source="access_mode.kind")

    class Meta:
        model = Application
        fields = ["id", "title", "organisation", "call", "access_mode", "state"]


class ReviewBrief(serializers.ModelSerializer):
    class Meta:
        model = Review
        fields = ["recommendation", "weighted_score", "updated_at", "submitted_at"]


class AssignmentOutput(serializers.ModelSerializer):
    application = ApplicationBrief()
    reviewer = serializers.CharField(source="reviewer.username")
    sees_application = serializers.BooleanField(
        help_text="The application is shown once the reviewer stated no conflict of interest."
    )
    review = serializers.SerializerMethodField()

    class Meta:
        model = ReviewAssignment
        fields = [
            "id",
            "application",
            "reviewer",
            "state",
            "sees_application",
            "assigned_at",
            "conflict_checked_at",
            "review",
        ]

    @extend_schema_field(ReviewBrief(allow_null=True))
    def get_review(self, assignment) -> dict | None:
        try:
            review = assignment.review  # fetched with the assignment (select_related)
        except ObjectDoesNotExist:
            return None
        return ReviewBrief(review).data


class FlagOutput(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.CharField()
    message = serializers.CharField()


class ApplicationForReview(serializers.ModelSerializer):
    """What the reviewer reads: the application as submitted, with its screening flags."""

    organisation = serializers.CharField(source="organisation.legal_name")
    resources = ResourceSerializer(many=True, read_only=True)
    estimate = EstimateSerializer(source="estimate_snapshot", allow_null=True)
    flags = FlagOutput(source="screening_flags", many=True)
    ethics = serializers.JSONField()
    commitments = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Application
        fields = [
            "id",
            "organisation",
            "state",
            "submitted_at",
            *DRAFT_FIELDS,
            "resources",
            "estimate",
            "flags",
        ]


class CriterionOutput(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    guidance = serializers.CharField()
    weight = serializers.IntegerField()
    minimum_score = serializers.IntegerField(allow_null=True)


class RubricOutput(serializers.Serializer):
    scale_max = serializers.IntegerField()
    criteria = CriterionOutput(many=True)


class ScoreOutput(serializers.Serializer):
    criterion = serializers.CharField(source="criterion.key")
    score = serializers.IntegerField()
    comment = serializers.CharField()


class ReviewOutput(serializers.ModelSerializer):
    reviewer = serializers.SerializerMethodField(
        help_text="Shown to call managers only; null for reviewers."
    )
    scores = ScoreOutput(many=True)

    class Meta:
        model = Review
        fields = [
            "reviewer",
            "recommendation",
            "comment",
            "weighted_score",
            "scores",
            "updated_at",
            "submitted_at",
        ]

    def get_reviewer(self, review) -> str | None:
        if self.context.get("show_reviewer_names"):
            return review.assignment.reviewer.username
        return None


class AssignmentDetailOutput(AssignmentOutput):
    application_details = serializers.SerializerMethodField(
        help_text="Null until the reviewer stated having no conflict of interest."
    )
    rubric = serializers.SerializerMethodField()
    other_reviews = serializers.SerializerMethodField(
        help_text="Submitted reviews of the application; a reviewer sees them only after "
        "submitting their own (null before)."
    )

    class Meta(AssignmentOutput.Meta):
        fields = [*AssignmentOutput.Meta.fields, "application_details", "rubric", "other_reviews"]

    @extend_schema_field(ApplicationForReview(allow_null=True))
    def get_application_details(self, assignment) -> dict | None:
        if not (assignment.sees_application or self.context.get("manager")):
            return None
        return ApplicationForReview(assignment.application).data

    @extend_schema_field(RubricOutput)
    def get_rubric(self, assignment) -> dict:
        rubric = workflow.rubric_ensure(assignment.application.call)
        return RubricOutput({"scale_max": rubric.scale_max, "criteria": rubric.criteria.all()}).data

    @extend_schema_field(ReviewOutput(many=True, allow_null=True))
    def get_other_reviews(self, assignment) -> list | None:
        user = self.context["request"].user
        if not selectors.can_see_other_reviews(user, assignment):
            return None
        reviews = [
            review
            for review in selectors.reviews_of(assignment.application)
            if self.context.get("manager") or review.assignment_id != assignment.pk
        ]
        return ReviewOutput(reviews, many=True, context=self.context).data


class AssignmentFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=ReviewAssignment.State.choices)
    application = IdFilter(field_name="application_id")
    call = IdFilter(field_name="application__call_id")

    class Meta:
        model = ReviewAssignment
        fields = ["state", "application", "call"]


class AssignInput(serializers.Serializer):
    application = serializers.IntegerField(
        min_value=1, max_value=ID_MAX, help_text="An application in review."
    )
    reviewer = serializers.IntegerField(
        min_value=1, max_value=ID_MAX, help_text="The reviewer's user id."
    )


class AutoAssignInput(serializers.Serializer):
    application = serializers.IntegerField(
        min_value=1, max_value=ID_MAX, help_text="An application in review."
    )


class ConflictInput(serializers.Serializer):
    explanation = serializers.CharField(
        max_length=5000, help_text="What ties you to the applicant."
    )


class ReviewInput(serializers.Serializer):
    scores = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=100, allow_null=True),
        help_text="Criterion key (see `rubric`) to score; null clears a score of a draft.",
    )
    comments = serializers.DictField(
        child=serializers.CharField(max_length=10_000, allow_blank=True),
        required=False,
        default=dict,
        help_text="Criterion key to comment.",
    )
    comment = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")
    recommendation = serializers.ChoiceField(
        choices=[("", "none yet"), *Review.Recommendation.choices], required=False, default=""
    )


class ReviewerPermission(StaffModelPermission):
    """Reviewers and call managers: whoever may view assignments in the admin."""

    model = "vetting.reviewassignment"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        return user.has_perm("vetting.view_reviewassignment")


def _application(pk: int) -> Application:
    """An application named in a call manager's request: they see every application."""
    application = Application.objects.filter(pk=pk).first()
    if application is None:
        raise NotFound("No such application.")
    return application


def _manager_only(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied("Only call managers do this.")


@extend_schema_view(
    list=extend_schema(summary="My review assignments (call managers: all)"),
    retrieve=extend_schema(
        summary="One assignment: the application once no conflict is stated, the rubric, and "
        "the other reviews once my own is in"
    ),
)
@extend_schema(tags=["reviews"])
class AssignmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A reviewer's own assignments, never a released one; anybody else's are 404."""

    permission_classes = [permissions.IsAuthenticated, ReviewerPermission]
    filterset_class = AssignmentFilter

    def get_queryset(self):
        return selectors.assignments_visible_to(self.request.user).order_by("-assigned_at", "-id")

    def get_serializer_class(self):
        return AssignmentDetailOutput if self.action != "list" else AssignmentOutput

    def get_serializer_context(self):
        manager = selectors.can_manage_reviews(self.request.user)
        return {
            **super().get_serializer_context(),
            "manager": manager,
            "show_reviewer_names": manager,
        }

    def _output(self, assignment, code=status.HTTP_200_OK) -> Response:
        assignment = self.get_queryset().filter(pk=assignment.pk).first()
        if assignment is None:  # released by a declared conflict: no longer the reviewer's
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(
            AssignmentDetailOutput(assignment, context=self.get_serializer_context()).data,
            status=code,
        )

    def _own(self, pk) -> ReviewAssignment:
        assignment = self.get_object()
        if assignment.reviewer_id != self.request.user.pk:
            raise PermissionDenied("Only the assigned reviewer can do this.")
        return assignment

    @extend_schema(
        summary="Assign a reviewer to an application in review (call managers)",
        request=AssignInput,
        responses={201: AssignmentDetailOutput, 400: INVALID, 409: CONFLICT},
    )
    def create(self, request):
        _manager_only(request, "vetting.add_reviewassignment")
        data = AssignInput(data=request.data)
        data.is_valid(raise_exception=True)
        application = _application(data.validated_data["application"])
        reviewer = get_user_model().objects.filter(pk=data.validated_data["reviewer"]).first()
        if reviewer is None:
            raise NotFound("No such user.")
        try:
            assignment = workflow.reviewer_assign(
                application=application, reviewer=reviewer, actor=request.user
            )
        except TransitionError as error:
            raise Conflict(str(error)) from error
        return self._output(assignment, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Assign reviewers up to the call's number, least loaded first (call managers)",
        request=AutoAssignInput,
        responses={201: AssignmentOutput(many=True), 400: INVALID, 409: CONFLICT},
    )
    @action(detail=False, methods=["post"], url_path="auto", pagination_class=None)
    def auto_assign(self, request):
        _manager_only(request, "vetting.add_reviewassignment")
        data = AutoAssignInput(data=request.data)
        data.is_valid(raise_exception=True)
        application = _application(data.validated_data["application"])
        try:
            made = workflow.reviewers_auto_assign(application=application, actor=request.user)
        except TransitionError as error:
            raise Conflict(str(error)) from error
        assignments = self.get_queryset().filter(pk__in=[a.pk for a in made])
        return Response(
            AssignmentOutput(assignments, many=True).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="State having no conflict of interest: the application is shown and can be scored",
        request=None,
        responses={200: AssignmentDetailOutput, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], url_path="no-conflict")
    def no_conflict(self, request, pk=None):
        assignment = self._own(pk)
        try:
            workflow.conflict_confirm_none(assignment=assignment, reviewer=request.user)
        except TransitionError as error:
            raise Conflict(str(error)) from error
        return self._output(assignment)

    @extend_schema(
        summary="Declare a conflict of interest: the assignment is released for another reviewer",
        request=ConflictInput,
        responses={204: None, 400: INVALID, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def conflict(self, request, pk=None):
        assignment = self._own(pk)
        data = ConflictInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            workflow.conflict_declare(
                assignment=assignment,
                reviewer=request.user,
                explanation=data.validated_data["explanation"],
            )
        except TransitionError as error:
            raise Conflict(str(error)) from error
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["GET"],
        summary="The review of this assignment (the reviewer's own, or any for call managers)",
        responses={200: ReviewOutput},
    )
    @extend_schema(
        methods=["PUT"],
        summary="Save my review as a draft",
        request=ReviewInput,
        responses={200: ReviewOutput, 400: INVALID, 409: CONFLICT},
    )
    @action(detail=True, methods=["get", "put"])
    def review(self, request, pk=None):
        if request.method == "GET":
            assignment = self.get_object()
            review = Review.objects.filter(assignment=assignment).first()
            if review is None:
                raise NotFound("No review yet.")
            return Response(ReviewOutput(review, context=self.get_serializer_context()).data)
        return self._save(request, pk, submit=False)

    @extend_schema(
        summary="Submit my review: complete, with a recommendation, and final",
        request=ReviewInput,
        responses={200: ReviewOutput, 400: INVALID, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], url_path="review/submit")
    def review_submit(self, request, pk=None):
        return self._save(request, pk, submit=True)

    def _save(self, request, pk, *, submit: bool) -> Response:
        assignment = self._own(pk)
        data = ReviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            review = workflow.review_save(
                assignment=assignment,
                reviewer=request.user,
                scores=values["scores"],
                comments=values["comments"],
                comment=values["comment"],
                recommendation=values["recommendation"],
                submit=submit,
            )
        except TransitionError as error:
            raise Conflict(str(error)) from error
        except DjangoValidationError as error:
            # The call's rubric decides which criteria and scores there are, and submitting
            # needs every score and a recommendation: the review as it stands conflicts.
            raise Conflict(" ".join(error.messages)) from error
        return Response(ReviewOutput(review, context=self.get_serializer_context()).data)


# Call managers: ranking and decisions


class DeciderPermission(permissions.BasePermission):
    """As the ranking page: staff with the permission to add decisions."""

    message = "Only call managers rank and decide."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.is_active
            and user.is_staff
            and user.has_perm("vetting.add_decision")
        )


class PartitionHours(serializers.Serializer):
    partition = serializers.IntegerField()
    gpu_hours = serializers.IntegerField()


class RankingRowOutput(serializers.Serializer):
    rank = serializers.IntegerField(allow_null=True)
    application = ApplicationBrief()
    reviews_submitted = serializers.IntegerField()
    reviewers_needed = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    spread = serializers.FloatField(allow_null=True)
    disagreement = serializers.BooleanField()
    failed_minimums = serializers.ListField(child=serializers.CharField())
    flags = serializers.ListField(child=serializers.CharField())
    requested = PartitionHours(many=True)
    proposed = PartitionHours(many=True)


class CapacityOutput(serializers.Serializer):
    partition = serializers.IntegerField()
    cluster = serializers.CharField()
    name = serializers.CharField()
    capacity = serializers.IntegerField()
    remaining = serializers.IntegerField()
    after_proposals = serializers.IntegerField()


class RankingOutput(serializers.Serializer):
    access_mode = serializers.IntegerField()
    call = serializers.CharField()
    capacity = CapacityOutput(many=True)
    rows = RankingRowOutput(many=True)


def _hours(mapping) -> list[dict]:
    return [{"partition": pid, "gpu_hours": hours} for pid, hours in sorted(mapping.items())]


@extend_schema(
    tags=["decisions"],
    summary="Ranking of an access mode against its remaining capacity (call managers)",
    responses={200: RankingOutput},
)
class RankingView(APIView):
    permission_classes = [permissions.IsAuthenticated, DeciderPermission]

    def get(self, request, mode_id: int):
        access_mode = get_object_or_404(AccessMode.objects.select_related("call"), pk=mode_id)
        rows, remaining, left = selectors.ranking(access_mode)
        selectors.ranking_flags_load(rows)
        for row in rows:  # every row is of this access mode and call: no query per row
            row.application.access_mode = access_mode
            row.application.call = access_mode.call
        links = AccessModePartition.objects.filter(access_mode=access_mode).select_related(
            "partition__cluster"
        )
        data = {
            "access_mode": access_mode.pk,
            "call": access_mode.call.title,
            "capacity": [
                {
                    "partition": link.partition_id,
                    "cluster": link.partition.cluster.name,
                    "name": link.partition.name,
                    "capacity": link.capacity_gpu_hours,
                    "remaining": remaining.get(link.partition_id, 0),
                    "after_proposals": left.get(link.partition_id, 0),
                }
                for link in links
            ],
            "rows": [
                {
                    "rank": row.proposal.rank,
                    "application": row.application,
                    "reviews_submitted": row.reviews_submitted,
                    "reviewers_needed": row.reviewers_needed,
                    "mean": row.summary.mean,
                    "spread": row.summary.spread,
                    "disagreement": row.summary.disagreement,
                    "failed_minimums": list(row.summary.failed_minimums),
                    "flags": [flag.code for flag in row.flags],
                    "requested": _hours(row.requested),
                    "proposed": _hours(row.proposal.proposed),
                }
                for row in rows
            ],
        }
        return Response(RankingOutput(data).data)


class DecisionOutput(serializers.ModelSerializer):
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    grants = serializers.SerializerMethodField()
    allocations = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Decision
        fields = [
            "id",
            "application",
            "outcome",
            "reason",
            "decided_by",
            "decided_at",
            "start",
            "end",
            "grants",
            "allocations",
        ]

    @extend_schema_field(PartitionHours(many=True))
    def get_grants(self, decision) -> list[dict]:
        return [
            {"partition": g.partition_id, "gpu_hours": g.gpu_hours} for g in decision.grants.all()
        ]


class GrantInput(serializers.Serializer):
    partition = serializers.IntegerField(min_value=1, max_value=ID_MAX)
    gpu_hours = serializers.IntegerField(min_value=1, max_value=10**12)


class DecisionInput(serializers.Serializer):
    application = serializers.IntegerField(min_value=1, max_value=ID_MAX)
    outcome = serializers.ChoiceField(choices=Decision.Outcome.choices)
    reason = serializers.CharField(max_length=10_000, help_text="The applicant reads it.")
    grants = GrantInput(
        many=True, required=False, help_text="For an approval: GPU-hours per partition."
    )


class DecisionFilter(django_filters.FilterSet):
    application = IdFilter(field_name="application_id")
    outcome = django_filters.ChoiceFilter(choices=Decision.Outcome.choices)

    class Meta:
        model = Decision
        fields = ["application", "outcome"]


@extend_schema_view(
    list=extend_schema(summary="Decisions taken (call managers)"),
    retrieve=extend_schema(summary="One decision"),
)
@extend_schema(tags=["decisions"])
class DecisionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [permissions.IsAuthenticated, DeciderPermission]
    serializer_class = DecisionOutput
    filterset_class = DecisionFilter

    def get_queryset(self):
        return (
            Decision.objects.select_related("decided_by")
            .prefetch_related("grants", "allocations")
            .order_by("-decided_at", "-id")
        )

    @extend_schema(
        summary="Approve (with grants), reject or waitlist a reviewed application",
        request=DecisionInput,
        responses={201: DecisionOutput, 400: INVALID, 409: CONFLICT},
    )
    def create(self, request):
        data = DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        application = _application(values["application"])
        try:
            if values["outcome"] == Decision.Outcome.APPROVED:
                grants = {g["partition"]: g["gpu_hours"] for g in values.get("grants") or []}
                decision = workflow.application_approve(
                    application=application,
                    actor=request.user,
                    reason=values["reason"],
                    grants=grants,
                )
            elif values["outcome"] == Decision.Outcome.REJECTED:
                decision = workflow.application_reject(
                    application=application, actor=request.user, reason=values["reason"]
                )
            else:
                decision = workflow.application_waitlist(
                    application=application, actor=request.user, reason=values["reason"]
                )
        except TransitionError as error:
            raise Conflict(str(error)) from error
        except DjangoValidationError as error:
            # grants against the request and the access mode's remaining capacity
            raise Conflict(" ".join(error.messages)) from error
        decision = self.get_queryset().get(pk=decision.pk)
        return Response(DecisionOutput(decision).data, status=status.HTTP_201_CREATED)
