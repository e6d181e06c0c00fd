"""The review workflow in the admin.

Reviewers reach applications only through their own assignments: first the conflict-of-interest
statement, then a read-only application page with the score form. Other reviewers' scores stay
hidden until one's own review is submitted. Call managers see every assignment and review, assign
reviewers by hand or with "auto-assign", and edit the rubric of each call. Every change calls
vetting.services.review.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin, ReadOnlyInline, apply_with_reason
from vetting.admin.intake import ApplicationAdmin
from vetting.models import (
    Application,
    Decision,
    DecisionGrant,
    Review,
    ReviewAssignment,
    ReviewerProfile,
    Rubric,
    RubricCriterion,
    ScreeningFlag,
)
from vetting.selectors import intake as intake_selectors
from vetting.selectors import review as review_selectors
from vetting.services import review as workflow
from vetting.services.transitions import TransitionError
from vetting.views.intake import annex_response

# Call managers


class ScreeningFlagInline(ReadOnlyInline):
    model = ScreeningFlag
    fields = ["severity", "code", "message"]
    readonly_fields = fields


class AssignmentInline(ReadOnlyInline):
    model = ReviewAssignment
    fields = ["reviewer", "state", "assigned_at", "weighted_score"]
    readonly_fields = fields
    show_change_link = True
    select_related = ("reviewer", "review")

    @admin.display(description="weighted score")
    def weighted_score(self, obj: ReviewAssignment):
        review = getattr(obj, "review", None)
        if review is None or review.weighted_score is None:
            return "—"
        return f"{review.weighted_score:.2f}"


class DecisionInline(ReadOnlyInline):
    model = Decision
    fields = ["outcome", "decided_by", "decided_at", "reason", "start", "end"]
    readonly_fields = fields
    select_related = ("decided_by",)


def _message(error: Exception) -> str:
    return "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)


admin.site.unregister(Application)


@admin.register(Application)
class VettingApplicationAdmin(ApplicationAdmin):
    """The intake's read-only application admin, plus screening flags, reviews and decisions."""

    inlines = [*ApplicationAdmin.inlines, ScreeningFlagInline, AssignmentInline, DecisionInline]
    actions = ["auto_assign_reviewers", "override_ineligibility", "screen_again"]

    def has_review_permission(self, request) -> bool:
        return review_selectors.can_manage_reviews(request.user)

    @admin.action(description="Auto-assign reviewers", permissions=["review"])
    def auto_assign_reviewers(self, request, queryset):
        for application in queryset:
            try:
                made = workflow.reviewers_auto_assign(application=application, actor=request.user)
            except TransitionError as error:
                self.message_user(request, f"{application}: {error}", messages.WARNING)
            else:
                names = ", ".join(str(a.reviewer) for a in made) or "no one needed"
                self.message_user(request, f"{application}: assigned {names}.", messages.SUCCESS)

    @admin.action(description="Override ineligibility (send to review)", permissions=["review"])
    def override_ineligibility(self, request, queryset):
        return apply_with_reason(
            self,
            request,
            queryset,
            title="Send ineligible applications to review",
            reason_required=True,
            apply=lambda obj, actor, reason: workflow.ineligibility_override(
                application=obj, actor=actor, reason=reason
            ),
        )

    @admin.action(description="Run the screening now", permissions=["review"])
    def screen_again(self, request, queryset):
        done = [workflow.application_screen(application_id=a.pk) for a in queryset]
        screened = [a for a in done if a is not None]
        self.message_user(
            request,
            f"Screened {len(screened)}; the others were not waiting for screening.",
            messages.SUCCESS,
        )


class AssignmentAddForm(forms.ModelForm):
    class Meta:
        model = ReviewAssignment
        fields = ["application", "reviewer"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["application"].queryset = Application.objects.filter(
            state=Application.State.IN_REVIEW
        ).select_related("organisation")
        self.fields["reviewer"].queryset = review_selectors.reviewers()

    def clean(self):
        data = super().clean()
        application, reviewer = data.get("application"), data.get("reviewer")
        if application and reviewer:
            problem = workflow.assignment_problem(application, reviewer)
            if problem:
                raise ValidationError(problem)
        return data

    def validate_unique(self):
        # The workflow refuses a second assignment with a clearer message than the constraint.
        pass


class ScoreForm(forms.Form):
    """One score and comment per rubric criterion, an overall comment and recommendation."""

    comment = forms.CharField(
        label="Overall comment", widget=forms.Textarea(attrs={"rows": 4}), required=False
    )
    recommendation = forms.ChoiceField(
        choices=[("", "—"), *Review.Recommendation.choices], required=False
    )

    def __init__(self, *args, rubric: Rubric, review: Review | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.criteria = list(rubric.criteria.all())
        scores = {s.criterion_id: s for s in (review.scores.all() if review else [])}
        choices = [("", "—")] + [(str(n), str(n)) for n in range(rubric.scale_max + 1)]
        for criterion in self.criteria:
            given = scores.get(criterion.pk)
            self.fields[f"score_{criterion.key}"] = forms.TypedChoiceField(
                label=f"{criterion.name} ({criterion.weight} %)",
                choices=choices,
                coerce=int,
                empty_value=None,
                required=False,
                initial=given.score if given else "",
                help_text=criterion.guidance
                + (f" Minimum {criterion.minimum_score}." if criterion.minimum_score else ""),
            )
            self.fields[f"comment_{criterion.key}"] = forms.CharField(
                label="Comment",
                widget=forms.Textarea(attrs={"rows": 2}),
                required=False,
                initial=given.comment if given else "",
            )
        if review:
            self.fields["comment"].initial = review.comment
            self.fields["recommendation"].initial = review.recommendation

    def rows(self):
        return [(c, self[f"score_{c.key}"], self[f"comment_{c.key}"]) for c in self.criteria]

    def scores(self) -> dict:
        return {c.key: self.cleaned_data.get(f"score_{c.key}") for c in self.criteria}

    def comments(self) -> dict:
        return {c.key: self.cleaned_data.get(f"comment_{c.key}", "") for c in self.criteria}


class ConflictForm(forms.Form):
    explanation = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Only when declaring a conflict: what ties you to the applicant.",
    )


@admin.register(ReviewAssignment)
class ReviewAssignmentAdmin(admin.ModelAdmin):
    list_display = ["application_title", "call", "state", "assigned_at", "your_review"]
    list_filter = ["state", "application__call"]
    search_fields = ["application__title"]
    form = AssignmentAddForm

    def get_queryset(self, request):
        return review_selectors.assignments_visible_to(request.user)

    def get_list_display(self, request):
        if review_selectors.can_manage_reviews(request.user):
            return ["application_title", "reviewer", "call", "state", "assigned_at", "score"]
        return self.list_display

    @admin.display(description="application", ordering="application__title")
    def application_title(self, obj):
        return obj.application.title

    @admin.display(description="call")
    def call(self, obj):
        return obj.application.call.title

    @admin.display(description="your review")
    def your_review(self, obj):
        if obj.state == ReviewAssignment.State.PENDING:
            return "Confirm no conflict of interest first"
        if obj.state == ReviewAssignment.State.SUBMITTED:
            return "Submitted"
        return "Open"

    @admin.display(description="weighted score")
    def score(self, obj):
        review = getattr(obj, "review", None)
        return f"{review.weighted_score:.2f}" if review and review.weighted_score else "—"

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        assignment = workflow.reviewer_assign(
            application=obj.application, reviewer=obj.reviewer, actor=request.user
        )
        obj.pk = assignment.pk

    def get_urls(self):
        return [
            path(
                "<int:pk>/annex/",
                self.admin_site.admin_view(self.annex_view),
                name="vetting_reviewassignment_annex",
            ),
            *super().get_urls(),
        ]

    def _assignment(self, request, pk) -> ReviewAssignment:
        assignment = self.get_queryset(request).filter(pk=pk).first()
        if assignment is None:
            raise Http404("No such assignment.")
        return assignment

    def annex_view(self, request, pk: int):
        assignment = self._assignment(request, pk)
        is_manager = review_selectors.can_manage_reviews(request.user)
        if not (assignment.sees_application or is_manager):
            raise PermissionDenied("Confirm you have no conflict of interest first.")
        return annex_response(assignment.application)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        assignment = self._assignment(request, object_id)
        own = assignment.reviewer_id == request.user.pk
        if own and assignment.state == ReviewAssignment.State.PENDING:
            return self._conflict_view(request, assignment)
        if not own and not review_selectors.can_manage_reviews(request.user):
            raise PermissionDenied
        return self._review_view(request, assignment, own=own)

    def _context(self, request, assignment, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "assignment": assignment,
            "application": assignment.application,
            "title": assignment.application.title,
            **extra,
        }

    def _conflict_view(self, request, assignment):
        form = ConflictForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                if "declare" in request.POST:
                    workflow.conflict_declare(
                        assignment=assignment,
                        reviewer=request.user,
                        explanation=form.cleaned_data["explanation"],
                    )
                    self.message_user(
                        request,
                        "Thank you: the assignment is released and another reviewer will "
                        "take over.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:vetting_reviewassignment_changelist")
                    )
                workflow.conflict_confirm_none(assignment=assignment, reviewer=request.user)
                return HttpResponseRedirect(request.path)
            except (TransitionError, ValidationError) as error:
                form.add_error(None, _message(error))
        application = assignment.application
        return TemplateResponse(
            request,
            "admin/vetting/reviewassignment/conflict.html",
            self._context(
                request,
                assignment,
                form=form,
                organisation=application.organisation,
                title=f"Conflict of interest: {application.title}",
            ),
        )

    def _review_view(self, request, assignment, *, own: bool):
        application = assignment.application
        rubric = workflow.rubric_ensure(application.call)
        review = Review.objects.filter(assignment=assignment).first()
        editable = own and assignment.state == ReviewAssignment.State.ACCEPTED
        form = None
        if editable:
            form = ScoreForm(request.POST or None, rubric=rubric, review=review)
            if request.method == "POST" and form.is_valid():
                submit = "submit" in request.POST
                try:
                    workflow.review_save(
                        assignment=assignment,
                        reviewer=request.user,
                        scores=form.scores(),
                        comments=form.comments(),
                        comment=form.cleaned_data["comment"],
                        recommendation=form.cleaned_data["recommendation"],
                        submit=submit,
                    )
                except (TransitionError, ValidationError) as error:
                    form.add_error(None, _message(error))
                else:
                    self.message_user(
                        request,
                        "Review submitted; it can no longer be changed."
                        if submit
                        else "Draft saved.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(request.path)
        can_see_others = review_selectors.can_see_other_reviews(request.user, assignment)
        reviews = list(review_selectors.reviews_of(application)) if can_see_others else []
        if not review_selectors.can_manage_reviews(request.user):
            reviews = [r for r in reviews if r.assignment_id != assignment.pk]
        return TemplateResponse(
            request,
            "admin/vetting/reviewassignment/review.html",
            self._context(
                request,
                assignment,
                form=form,
                review=review,
                own=own,
                reviews=reviews,
                show_reviewer_names=review_selectors.can_manage_reviews(request.user),
                others_hidden=not can_see_others,
                summary=review_selectors.application_summary(application)
                if can_see_others
                else None,
                flags=application.screening_flags.all(),
                resources=application.resources.select_related("partition__cluster"),
                estimate=application.estimate_snapshot or {},
                ethics=intake_selectors.ethics_rows(application),
                commitments=intake_selectors.commitment_labels(application.commitments),
                required=intake_selectors.commitment_labels(
                    (application.estimate_snapshot or {}).get("required_commitments")
                ),
                annex_url=reverse("admin:vetting_reviewassignment_annex", args=[assignment.pk])
                if application.technical_annex
                else "",
            ),
        )


@admin.register(ReviewerProfile)
class ReviewerProfileAdmin(admin.ModelAdmin):
    """Every reviewer auto-assign may pick has a profile here (made with the defaults when the
    list is opened), and the list says who auto-assign picks from."""

    list_display = ["user", "expertise", "max_load_per_call", "active", "in_auto_assign"]
    list_filter = ["active"]
    search_fields = ["user__username", "user__email", "expertise", "affiliations"]
    list_select_related = ["user"]

    def changelist_view(self, request, extra_context=None):
        workflow.reviewer_profiles_ensure()
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request):
        reviewer = review_selectors.reviewers().filter(pk=OuterRef("user_id"))
        return super().get_queryset(request).annotate(is_reviewer=Exists(reviewer))

    @admin.display(boolean=True, description="picked by auto-assign")
    def in_auto_assign(self, obj: ReviewerProfile) -> bool:
        return bool(obj.is_reviewer and obj.active)


class RubricCriterionInline(admin.TabularInline):
    model = RubricCriterion
    extra = 0
    fields = ["position", "key", "name", "guidance", "weight", "minimum_score"]


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    list_display = ["call", "scale_max", "disagreement_points", "weights"]
    list_select_related = ["call"]
    inlines = [RubricCriterionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("criteria")

    @admin.display(description="weights")
    def weights(self, obj: Rubric):
        return format_html("{}", ", ".join(f"{c.name} {c.weight} %" for c in obj.criteria.all()))


class DecisionGrantInline(ReadOnlyInline):
    model = DecisionGrant
    fields = ["partition", "gpu_hours"]
    readonly_fields = fields
    select_related = ("partition__cluster",)


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    """Decisions are taken on the ranking page; here they are only read."""

    list_display = ["application", "outcome", "decided_by", "decided_at", "granted"]
    list_filter = ["outcome", "application__call"]
    list_select_related = ["application", "decided_by"]
    inlines = [DecisionGrantInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("grants")

    readonly_fields = [
        "application",
        "outcome",
        "reason",
        "decided_by",
        "decided_at",
        "start",
        "end",
    ]
    exclude = ["allocations"]

    @admin.display(description="granted GPU-hours")
    def granted(self, obj: Decision):
        return f"{obj.granted_gpu_hours:,}" if obj.outcome == Decision.Outcome.APPROVED else "—"
