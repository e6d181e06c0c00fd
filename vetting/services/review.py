"""Every change to an application after submission: screening, reviewer assignment, conflicts of
interest, reviews and decisions.

Each transition is one function, guarded by the current state under a row lock and written as a
conditional update, so two call managers (or two tabs, or a task and a person) cannot both
succeed. Each leaves an ApplicationEvent: `actor` and `reason` are for staff; `public_note` is
what the applicant reads and never names a reviewer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from allocations.models import DeclaredPlan
from allocations.services import allocations_grant
from systems.models import AccessModePartition, Partition
from vetting import aggregation, rules, screening
from vetting.models import (
    Application,
    ConflictDeclaration,
    CriterionScore,
    Decision,
    DecisionGrant,
    Review,
    ReviewAssignment,
    ReviewerProfile,
    Rubric,
    RubricCriterion,
    ScreeningFlag,
)
from vetting.selectors import review as review_selectors
from vetting.services.transitions import (
    TransitionError,
    application_event_record,
    application_locked,
)

State = Application.State
AssignmentState = ReviewAssignment.State

# the default rubric (docs/domain-rules.md): key, name, guidance, weight (%), minimum score.
DEFAULT_RUBRIC = (
    (
        "technical",
        "Technical maturity and feasibility",
        "Team, code readiness, scaling evidence, data readiness.",
        25,
        None,
    ),
    (
        "innovation",
        "Innovation and impact",
        "European added value, market, openness.",
        25,
        None,
    ),
    (
        "resources",
        "Resource justification",
        "The request fits the plan; the two compute estimates agree.",
        20,
        None,
    ),
    (
        "ethics",
        "Ethics and misuse",
        "Horizon Europe ethics self-assessment; ALTAI: human agency, robustness, privacy, "
        "transparency, fairness, societal and environmental well-being, accountability.",
        20,
        3,
    ),
    (
        "ai_act",
        "AI Act readiness",
        "The commitments fit where the planned model sits on the thresholds.",
        10,
        3,
    ),
)


def _move(
    application: Application,
    *,
    allowed: Iterable[str],
    to: str,
    doing: str,
    actor: AbstractBaseUser | None,
    reason: str = "",
    public_note: str = "",
) -> Application:
    """Inside a transaction: lock, check, move, record. Returns the locked row, moved."""
    current = application_locked(application, allowed, doing)
    from_state = current.state
    moved = Application.objects.filter(pk=current.pk, state=from_state).update(
        state=to, updated_at=timezone.now()
    )
    if not moved:
        raise TransitionError(f"This application changed in the meantime, so it cannot be {doing}.")
    current.state = to
    application_event_record(
        application=current,
        from_state=from_state,
        to_state=to,
        actor=actor,
        reason=reason,
        public_note=public_note,
    )
    return current


def _note(application: Application, *, actor, reason: str, public_note: str) -> None:
    """An event that changes no state (assignments, reviews), still in the audit trail."""
    application_event_record(
        application=application,
        from_state=application.state,
        to_state=application.state,
        actor=actor,
        reason=reason,
        public_note=public_note,
    )


def _refreshed(application: Application) -> Application:
    application.refresh_from_db()
    return application


# Screening


def screening_start(*, application: Application, actor: AbstractBaseUser | None = None):
    """submitted -> screening."""
    with transaction.atomic():
        _move(
            application,
            allowed=[State.SUBMITTED],
            to=State.SCREENING,
            doing="screened",
            actor=actor,
            public_note="Eligibility screening started.",
        )
    return _refreshed(application)


def screening_finish(
    *,
    application: Application,
    flags: Iterable[screening.Flag],
    actor: AbstractBaseUser | None = None,
) -> Application:
    """screening -> in_review, or ineligible when a flag is blocking. Flags replace older ones."""
    flags = list(flags)
    blocking = [f for f in flags if f.is_blocking]
    with transaction.atomic():
        if blocking:
            current = _move(
                application,
                allowed=[State.SCREENING],
                to=State.INELIGIBLE,
                doing="marked ineligible",
                actor=actor,
                reason="; ".join(f.code for f in blocking),
                public_note="Not eligible: " + " ".join(f.message for f in blocking),
            )
        else:
            current = _move(
                application,
                allowed=[State.SCREENING],
                to=State.IN_REVIEW,
                doing="sent to review",
                actor=actor,
                reason="; ".join(f.code for f in flags) or "no flags",
                public_note="Eligible: the application goes to the reviewers.",
            )
        ScreeningFlag.objects.filter(application=current).delete()
        ScreeningFlag.objects.bulk_create(
            ScreeningFlag(
                application=current,
                code=f.code,
                severity=f.severity,
                message=f.message,
                details=dict(f.details),
            )
            for f in flags
        )
    return _refreshed(application)


def application_screen(*, application_id: int) -> Application | None:
    """Run the screening of a submitted application; does nothing once it is past screening.

    Safe to run twice (a retried task, the sweep): the state guards decide who does the work.
    """
    application = Application.objects.filter(pk=application_id).first()
    if application is None or application.state not in (State.SUBMITTED, State.SCREENING):
        return None
    if application.state == State.SUBMITTED:
        try:
            application = screening_start(application=application)
        except TransitionError:
            return None
    flags = screening.screen(review_selectors.screening_input(application))
    try:
        return screening_finish(application=application, flags=flags)
    except TransitionError:
        return None


def ineligibility_override(
    *, application: Application, actor: AbstractBaseUser, reason: str
) -> Application:
    """A call manager sends an ineligible application to review anyway, saying why."""
    if not (reason or "").strip():
        raise ValidationError("Give a reason for overriding the screening.")
    with transaction.atomic():
        _move(
            application,
            allowed=[State.INELIGIBLE],
            to=State.IN_REVIEW,
            doing="sent to review",
            actor=actor,
            reason=f"Screening overridden: {reason.strip()}",
            public_note="After a check by the call manager the application goes to the reviewers.",
        )
    return _refreshed(application)


# Rubric


def rubric_ensure(call) -> Rubric:
    """The call's rubric, made from the default (docs/domain-rules.md) when first needed."""
    rubric, created = Rubric.objects.get_or_create(call=call)
    if created or not rubric.criteria.exists():
        RubricCriterion.objects.bulk_create(
            RubricCriterion(
                rubric=rubric,
                key=key,
                name=name,
                guidance=guidance,
                weight=weight,
                minimum_score=minimum,
                position=position,
            )
            for position, (key, name, guidance, weight, minimum) in enumerate(DEFAULT_RUBRIC)
        )
    return rubric


# Reviewers


def assignment_problem(application: Application, reviewer: AbstractBaseUser) -> str | None:
    if not (reviewer.is_active and reviewer.is_staff and reviewer.has_perm("vetting.add_review")):
        return f"{reviewer} is not a reviewer."
    if ReviewAssignment.objects.filter(application=application, reviewer=reviewer).exists():
        return f"{reviewer} is already assigned to this application (or stepped aside)."
    problem = review_selectors.conflict_reason(application, reviewer)
    if problem:
        return problem
    load = review_selectors.reviewer_load(reviewer, call_id=application.call_id)
    if load >= review_selectors.reviewer_max_load(reviewer):
        return f"{reviewer} already reviews {load} applications of this call, their maximum."
    return None


def reviewer_assign(
    *, application: Application, reviewer: AbstractBaseUser, actor: AbstractBaseUser
) -> ReviewAssignment:
    """Assign one reviewer to an application in review; refuses conflicts and overload."""
    with transaction.atomic():
        current = application_locked(application, [State.IN_REVIEW], "assigned to a reviewer")
        problem = assignment_problem(current, reviewer)
        if problem:
            raise TransitionError(problem)
        rubric_ensure(current.call)
        assignment = ReviewAssignment.objects.create(
            application=current, reviewer=reviewer, assigned_by=actor
        )
        _note(
            current,
            actor=actor,
            reason=f"Reviewer {reviewer} assigned.",
            public_note="A reviewer was assigned.",
        )
        transaction.on_commit(lambda: _enqueue("assignment_notify", assignment.pk))
    return assignment


def reviewers_auto_assign(
    *, application: Application, actor: AbstractBaseUser
) -> list[ReviewAssignment]:
    """Fill the application up to the call's number of reviewers, least loaded first.

    Reviewers with a conflict (same organisation, affiliation or e-mail domain, or a declared
    conflict) or at their maximum load are skipped.
    """
    needed = (
        application.call.reviewers_per_application
        - application.assignments.filter(
            state__in=review_selectors.ACTIVE_ASSIGNMENT_STATES
        ).count()
    )
    if needed <= 0:
        return []
    made = []
    for reviewer in review_selectors.reviewers_by_load(call_id=application.call_id):
        if len(made) >= needed:
            break
        if getattr(reviewer, "reviewer_profile", None) and not reviewer.reviewer_profile.active:
            continue
        if assignment_problem(application, reviewer):
            continue
        made.append(reviewer_assign(application=application, reviewer=reviewer, actor=actor))
    if len(made) < needed:
        short = needed - len(made)
        raise TransitionError(
            f"Assigned {len(made)} reviewer(s); {short} more could not be found without a "
            "conflict of interest or exceeding a reviewer's maximum load."
        )
    return made


def reviewer_profiles_ensure() -> int:
    """Give everyone in the reviewer role a profile with the defaults auto-assign applies to
    those without one, so that the profiles list shows every reviewer it may pick."""
    missing = review_selectors.reviewers().filter(reviewer_profile__isnull=True)
    made = ReviewerProfile.objects.bulk_create(
        [ReviewerProfile(user=user) for user in missing], ignore_conflicts=True
    )
    return len(made)


def _locked_assignment(
    assignment: ReviewAssignment, reviewer: AbstractBaseUser, allowed: Iterable[str], doing: str
) -> ReviewAssignment:
    current = ReviewAssignment.objects.select_for_update().get(pk=assignment.pk)
    if current.reviewer_id != reviewer.pk:
        raise PermissionError("Only the assigned reviewer can do this.")
    if current.state not in allowed:
        raise TransitionError(
            f"This assignment is “{current.get_state_display().lower()}”, so you cannot {doing}."
        )
    return current


def conflict_confirm_none(
    *, assignment: ReviewAssignment, reviewer: AbstractBaseUser
) -> ReviewAssignment:
    """The reviewer states having no conflict of interest and may now read the application."""
    with transaction.atomic():
        current = _locked_assignment(
            assignment, reviewer, [AssignmentState.PENDING], "confirm having no conflict"
        )
        application = application_locked(current.application, [State.IN_REVIEW], "reviewed")
        ConflictDeclaration.objects.update_or_create(
            reviewer=reviewer,
            application=application,
            defaults={"organisation": application.organisation, "has_conflict": False},
        )
        current.state = AssignmentState.ACCEPTED
        current.conflict_checked_at = timezone.now()
        current.save(update_fields=["state", "conflict_checked_at"])
        _note(
            application,
            actor=reviewer,
            reason="Reviewer confirmed having no conflict of interest.",
            public_note="A reviewer started the review.",
        )
    assignment.refresh_from_db()
    return assignment


def conflict_declare(
    *, assignment: ReviewAssignment, reviewer: AbstractBaseUser, explanation: str
) -> ReviewAssignment:
    """The reviewer declares a conflict: the assignment is released for another reviewer."""
    if not (explanation or "").strip():
        raise ValidationError("Say briefly what the conflict of interest is.")
    with transaction.atomic():
        current = _locked_assignment(
            assignment,
            reviewer,
            [AssignmentState.PENDING, AssignmentState.ACCEPTED],
            "declare a conflict",
        )
        application = current.application
        ConflictDeclaration.objects.update_or_create(
            reviewer=reviewer,
            application=application,
            defaults={
                "organisation": application.organisation,
                "has_conflict": True,
                "explanation": explanation.strip(),
            },
        )
        current.state = AssignmentState.RELEASED
        current.conflict_checked_at = timezone.now()
        current.save(update_fields=["state", "conflict_checked_at"])
        Review.objects.filter(assignment=current, submitted_at__isnull=True).delete()
        _note(
            application,
            actor=reviewer,
            reason=f"Conflict of interest declared: {explanation.strip()}",
            public_note="A reviewer stepped aside; another reviewer will be assigned.",
        )
    assignment.refresh_from_db()
    return assignment


# Reviews


def _scores_check(
    rubric: Rubric, scores: Mapping[str, int | None], *, complete: bool
) -> dict[str, RubricCriterion]:
    criteria = {c.key: c for c in rubric.criteria.all()}
    unknown = set(scores) - set(criteria)
    if unknown:
        raise ValidationError(f"Unknown criteria: {', '.join(sorted(unknown))}.")
    errors = []
    for key, criterion in criteria.items():
        score = scores.get(key)
        if score is None:
            if complete:
                errors.append(f"Score “{criterion.name}”.")
        elif isinstance(score, bool) or not isinstance(score, int):
            errors.append(f"“{criterion.name}” takes a whole number.")
        elif not 0 <= score <= rubric.scale_max:
            errors.append(f"“{criterion.name}” is scored from 0 to {rubric.scale_max}.")
    if errors:
        raise ValidationError(errors)
    return criteria


def review_save(
    *,
    assignment: ReviewAssignment,
    reviewer: AbstractBaseUser,
    scores: Mapping[str, int | None],
    comments: Mapping[str, str] | None = None,
    comment: str = "",
    recommendation: str = "",
    submit: bool = False,
) -> Review:
    """Keep the reviewer's scores; with `submit` they are complete and locked for good."""
    comments = comments or {}
    if recommendation and recommendation not in Review.Recommendation.values:
        raise ValidationError(f"Unknown recommendation “{recommendation}”.")
    with transaction.atomic():
        current = _locked_assignment(
            assignment, reviewer, [AssignmentState.ACCEPTED], "change this review"
        )
        application = application_locked(current.application, [State.IN_REVIEW], "reviewed")
        rubric = rubric_ensure(application.call)
        criteria = _scores_check(rubric, scores, complete=submit)
        if submit and not recommendation:
            raise ValidationError("Give an overall recommendation.")
        review, _ = Review.objects.select_for_update().get_or_create(assignment=current)
        if review.is_submitted:
            raise TransitionError("This review was submitted and can no longer be changed.")
        for key, criterion in criteria.items():
            if scores.get(key) is None:
                CriterionScore.objects.filter(review=review, criterion=criterion).delete()
                continue
            CriterionScore.objects.update_or_create(
                review=review,
                criterion=criterion,
                defaults={"score": scores[key], "comment": (comments.get(key) or "").strip()},
            )
        review.comment = comment.strip()
        review.recommendation = recommendation
        if submit:
            review.submitted_at = timezone.now()
            review.weighted_score = aggregation.weighted_score(
                {k: v for k, v in scores.items() if v is not None},
                review_selectors.rubric_criteria(application.call_id),
            )
            current.state = AssignmentState.SUBMITTED
            current.save(update_fields=["state"])
            _note(
                application,
                actor=reviewer,
                reason=f"Review submitted (recommendation: {recommendation}).",
                public_note="A review was submitted.",
            )
        review.save()
        if submit and _all_reviews_in(application):
            _move(
                application,
                allowed=[State.IN_REVIEW],
                to=State.REVIEWED,
                doing="marked reviewed",
                actor=None,
                reason="All assigned reviews are in.",
                public_note="Reviews complete; the call manager decides next.",
            )
    return review


def review_submit(
    *,
    assignment: ReviewAssignment,
    reviewer: AbstractBaseUser,
    scores: Mapping[str, int],
    comments: Mapping[str, str] | None = None,
    comment: str = "",
    recommendation: str,
) -> Review:
    return review_save(
        assignment=assignment,
        reviewer=reviewer,
        scores=scores,
        comments=comments,
        comment=comment,
        recommendation=recommendation,
        submit=True,
    )


def _all_reviews_in(application: Application) -> bool:
    states = list(
        application.assignments.exclude(state=AssignmentState.RELEASED).values_list(
            "state", flat=True
        )
    )
    submitted = states.count(AssignmentState.SUBMITTED)
    return submitted == len(states) and submitted >= application.call.reviewers_per_application


def application_mark_reviewed(
    *, application: Application, actor: AbstractBaseUser, reason: str = ""
) -> Application:
    """in_review -> reviewed, when every active assignment has a submitted review."""
    with transaction.atomic():
        current = application_locked(application, [State.IN_REVIEW], "marked reviewed")
        if not _all_reviews_in(current):
            raise TransitionError(
                f"This application needs {current.call.reviewers_per_application} submitted "
                "reviews and no review still open before it is reviewed."
            )
        _move(
            current,
            allowed=[State.IN_REVIEW],
            to=State.REVIEWED,
            doing="marked reviewed",
            actor=actor,
            reason=reason or "All assigned reviews are in.",
            public_note="Reviews complete; the call manager decides next.",
        )
    return _refreshed(application)


# Decisions


def _decide(
    application: Application,
    *,
    outcome: str,
    allowed: Iterable[str],
    doing: str,
    actor: AbstractBaseUser,
    reason: str,
    public_note: str,
    start: date | None = None,
    end: date | None = None,
) -> tuple[Application, Decision]:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give a reason for the decision; the applicant reads it.")
    current = _move(
        application,
        allowed=allowed,
        to=outcome,
        doing=doing,
        actor=actor,
        reason=reason,
        public_note=f"{public_note} {reason}",
    )
    try:
        with transaction.atomic():
            decision = Decision.objects.create(
                application=current,
                outcome=outcome,
                reason=reason,
                decided_by=actor,
                start=start,
                end=end,
            )
    except IntegrityError as exc:
        raise TransitionError(f"This application was already {outcome}.") from exc
    return current, decision


def allocation_period(application: Application, *, today: date | None = None) -> tuple[date, date]:
    """From the requested start (today at the earliest) for the requested number of months."""
    today = today or timezone.localdate()
    start = max(application.start_date or today, today)
    return start, rules.add_months(start, application.duration_months or 3) - timedelta(days=1)


def application_approve(
    *,
    application: Application,
    actor: AbstractBaseUser,
    reason: str,
    grants: Mapping[int, int],
    today: date | None = None,
) -> Decision:
    """reviewed or waitlisted -> approved, granting up to the request per partition.

    `grants` maps partition ids to GPU-hours. The grant is checked against the access mode's
    remaining capacity with the capacity rows locked, then turned into allocations.
    """
    grants = {int(pid): int(hours) for pid, hours in grants.items() if hours}
    if not grants:
        raise ValidationError("Grant GPU-hours on at least one partition.")
    with transaction.atomic():
        current = application_locked(application, Application.DECIDABLE_STATES, "approved")
        requested = {r.partition_id: r.gpu_hours for r in current.resources.all()}
        partitions = Partition.objects.select_related("cluster").in_bulk(list(grants))
        errors = []
        for pid, hours in sorted(grants.items()):
            name = str(partitions[pid]) if pid in partitions else f"partition {pid}"
            if pid not in requested:
                errors.append(f"The application asks for no time on {name}.")
            elif hours < 0 or hours > requested[pid]:
                errors.append(
                    f"Grant between 1 and the {requested[pid]:,} GPU-hours requested on {name}."
                )
        if errors:
            raise ValidationError(errors)
        # Serialises approvals under one access mode, so capacity cannot be granted twice.
        list(
            AccessModePartition.objects.select_for_update().filter(
                access_mode_id=current.access_mode_id, partition_id__in=list(grants)
            )
        )
        remaining = review_selectors.remaining_capacity(current.access_mode)
        over = [
            f"{partitions[pid]} has {max(remaining.get(pid, 0), 0):,} GPU-hours left under "
            f"{current.access_mode.get_kind_display()}; {hours:,} asked."
            for pid, hours in sorted(grants.items())
            if hours > remaining.get(pid, 0)
        ]
        if over:
            raise ValidationError(over)
        total = sum(grants.values())
        start, end = allocation_period(current, today=today)
        current, decision = _decide(
            current,
            outcome=State.APPROVED,
            allowed=Application.DECIDABLE_STATES,
            doing="approved",
            actor=actor,
            reason=reason,
            public_note=f"Approved: {total:,} GPU-hours granted.",
            start=start,
            end=end,
        )
        DecisionGrant.objects.bulk_create(
            DecisionGrant(decision=decision, partition_id=pid, gpu_hours=hours)
            for pid, hours in sorted(grants.items())
        )
        allocations = allocations_grant(
            organisation=current.organisation,
            project=current.title,
            model_name=current.model_name,
            access_mode=current.access_mode,
            grants=[(partitions[pid], hours) for pid, hours in sorted(grants.items())],
            start=start,
            end=end,
            users=[],
            actor=actor,
            reason=f"Granted by the decision on application #{current.pk}: {reason.strip()}",
            plan=declared_plan(current),
        )
        decision.allocations.set(allocations)
        transaction.on_commit(lambda: _enqueue("decision_notify", decision.pk))
    return decision


def declared_plan(application: Application) -> DeclaredPlan:
    """The plan as submitted: the estimate frozen at submission, the model's size and data."""
    total = (application.estimate_snapshot or {}).get("total") or {}
    return DeclaredPlan(
        reference=f"application #{application.pk}",
        flop=application.estimated_flop,
        hardware_flop=total.get("flop_hardware"),
        parameters=application.parameters,
        tokens=application.training_tokens,
    )


def _decide_and_notify(application: Application, **decide) -> Decision:
    with transaction.atomic():
        _, decision = _decide(application, **decide)
        transaction.on_commit(lambda: _enqueue("decision_notify", decision.pk))
    return decision


def application_reject(
    *, application: Application, actor: AbstractBaseUser, reason: str
) -> Decision:
    """reviewed or waitlisted -> rejected."""
    return _decide_and_notify(
        application,
        outcome=State.REJECTED,
        allowed=Application.DECIDABLE_STATES,
        doing="rejected",
        actor=actor,
        reason=reason,
        public_note="Not selected.",
    )


def application_waitlist(
    *, application: Application, actor: AbstractBaseUser, reason: str
) -> Decision:
    """reviewed -> waitlisted: approvable later when capacity frees up."""
    return _decide_and_notify(
        application,
        outcome=State.WAITLISTED,
        allowed=[State.REVIEWED],
        doing="waitlisted",
        actor=actor,
        reason=reason,
        public_note="Waitlisted: the application may be approved when capacity frees up.",
    )


def _enqueue(task_name: str, pk: int) -> None:
    """Queue a notification; a broker outage must not undo a decision already committed."""
    from core.tasks import publish
    from vetting import tasks

    publish(getattr(tasks, task_name), pk)
