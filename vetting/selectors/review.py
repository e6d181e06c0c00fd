"""Reads of the vetting workflow: what screening judges, who may review what, rubric figures and
the ranking of an access mode."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from allocations.models import Allocation
from core import roles
from organisations.groups import organisation_groups_current
from organisations.models import Country, Membership, Organisation
from systems.estimates import grant_compute
from systems.models import AccessMode, AccessModePartition, ThresholdPolicy
from systems.selectors import policy_utilisation
from usage.selectors import TERA, used_compute_annotations
from vetting import aggregation, screening
from vetting.models import (
    Application,
    ApplicationResource,
    CriterionScore,
    DecisionGrant,
    Review,
    ReviewAssignment,
    RubricCriterion,
    ScreeningFlag,
)
from vetting.selectors import intake as selectors

ACTIVE_ASSIGNMENT_STATES = (
    ReviewAssignment.State.PENDING,
    ReviewAssignment.State.ACCEPTED,
    ReviewAssignment.State.SUBMITTED,
)


# Screening


def _relation(organisation: Organisation, other: Organisation, shared: set[int]) -> str:
    mine = "".join(organisation.registration_id.split()).upper()
    theirs = "".join(other.registration_id.split()).upper()
    if other.pk == organisation.pk:
        return "the applicant itself"
    if mine and mine == theirs:
        return "same registration id"
    if other.pk in shared:
        return "shares members"
    return "common controlling organisation"


def related_holdings(
    organisation: Organisation, *, policy: ThresholdPolicy | None
) -> list[screening.RelatedHolding]:
    """The applicant and the organisations grouped with it that hold live allocations.

    Grouping is allocations.thresholds.organisation_groups, the same the threshold check uses.
    Compute per allocation is what the check projects: used plus the remaining grant.
    """
    current = organisation_groups_current()
    groups, by_user = current.subjects, current.organisations_by_user
    group = groups.get(organisation.pk)
    member_ids = [pk for pk, subject in groups.items() if subject == group]
    sharing = {
        pk
        for ids in by_user.values()
        if organisation.pk in ids
        for pk in ids
        if pk != organisation.pk
    }
    utilisation = policy_utilisation(policy)
    allocations = (
        Allocation.objects.filter(organisation_id__in=member_ids, state__in=Allocation.LIVE_STATES)
        .select_related("organisation", "partition")
        .annotate(**used_compute_annotations())
    )
    per_organisation: dict[int, list[Allocation]] = defaultdict(list)
    for allocation in allocations:
        per_organisation[allocation.organisation_id].append(allocation)
    holdings = []
    for allocs in per_organisation.values():
        other = allocs[0].organisation
        flop = sum(
            grant_compute(
                used_peak_flop=a.used_peak_tflop_seconds * TERA,
                used_gpu_seconds=a.used_gpu_seconds,
                granted_gpu_hours=a.gpu_hours,
                peak_flops=a.partition.peak_flops,
                utilisation=utilisation,
                live=True,
            )[1]
            for a in allocs
        )
        holdings.append(
            screening.RelatedHolding(
                organisation=other.legal_name,
                registration_id=other.registration_id,
                relation=_relation(organisation, other, sharing),
                allocations=len(allocs),
                gpu_hours=sum(a.gpu_hours for a in allocs),
                projected_flop=flop,
            )
        )
    return sorted(holdings, key=lambda h: (h.relation != "the applicant itself", h.organisation))


def screening_input(application: Application) -> screening.ScreeningInput:
    organisation = application.organisation
    country = Country.objects.filter(code=organisation.country.upper()).first()
    snapshot = application.estimate_snapshot or selectors.application_estimate(application)
    total = snapshot.get("total") or {}
    policy = application.estimate_policy or ThresholdPolicy.objects.in_force()
    return screening.ScreeningInput(
        country_code=organisation.country,
        country_status=country.status if country else None,
        country_name=country.name if country else organisation.country,
        staff_headcount=organisation.staff_headcount,
        annual_turnover_eur=organisation.annual_turnover_eur,
        balance_sheet_eur=organisation.balance_sheet_eur,
        civilian_use_confirmed=application.civilian_use_confirmed,
        ethics=application.ethics or {},
        pi_contract_end=application.pi_contract_end,
        start_date=application.start_date,
        duration_months=application.duration_months,
        mode=selectors.mode_limits(application.access_mode),
        resources={r.partition_id: r.gpu_hours for r in application.resources.all()},
        flop_hardware=total.get("flop_hardware"),
        flop_architecture=total.get("flop_architecture"),
        flop_best=total.get("flop_best"),
        classification=snapshot.get("classification") or application.compute_class,
        required_commitments=snapshot.get("required_commitments") or (),
        commitments=application.commitments or (),
        related=related_holdings(organisation, policy=policy),
        gpai_flop=policy.gpai_flop if policy else 1e23,
        systemic_risk_flop=policy.systemic_risk_flop if policy else 1e25,
    )


# Reviewers


def reviewers() -> QuerySet:
    """Active staff in the reviewer role."""
    return (
        get_user_model()
        .objects.filter(groups__name=roles.REVIEWER, is_active=True, is_staff=True)
        .select_related("reviewer_profile")
        .distinct()
        .order_by("username")
    )


def reviewers_by_load(*, call_id: int) -> QuerySet:
    """Reviewers, least loaded in the call first (then by user name), the load in `.load`."""
    active_in_call = Q(
        review_assignments__application__call_id=call_id,
        review_assignments__state__in=ACTIVE_ASSIGNMENT_STATES,
    )
    return (
        reviewers()
        .annotate(load=Count("review_assignments", filter=active_in_call))
        .order_by("load", "username")
    )


def _domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower() if "@" in (email or "") else ""


def conflict_reason(application: Application, reviewer: AbstractBaseUser) -> str | None:
    """Why `reviewer` must not review `application`; None when nothing is known against it."""
    organisation = application.organisation
    if Membership.objects.filter(organisation=organisation, user=reviewer).exists():
        return f"{reviewer} is a member of {organisation}."
    if reviewer.conflict_declarations.filter(organisation=organisation, has_conflict=True).exists():
        return f"{reviewer} declared a conflict of interest with {organisation}."
    profile = getattr(reviewer, "reviewer_profile", None)
    ties = {a.casefold() for a in (profile.affiliation_list if profile else [])}
    if (
        organisation.legal_name.casefold() in ties
        or organisation.registration_id.casefold() in ties
    ):
        return f"{reviewer} is affiliated with {organisation}."
    reviewer_domains = {_domain(reviewer.email)} | set(profile.email_domain_list if profile else [])
    reviewer_domains.discard("")
    applicant_domains = {_domain(application.pi_email)} | {
        _domain(email) for email in organisation.members.values_list("email", flat=True)
    }
    shared = reviewer_domains & applicant_domains
    if shared:
        return f"{reviewer} shares the e-mail domain {sorted(shared)[0]} with the applicants."
    return None


def reviewer_load(reviewer: AbstractBaseUser, *, call_id: int) -> int:
    return ReviewAssignment.objects.filter(
        reviewer=reviewer, application__call_id=call_id, state__in=ACTIVE_ASSIGNMENT_STATES
    ).count()


def reviewer_max_load(reviewer: AbstractBaseUser) -> int:
    profile = getattr(reviewer, "reviewer_profile", None)
    return profile.max_load_per_call if profile else 8


def assignments_visible_to(user: AbstractBaseUser) -> QuerySet[ReviewAssignment]:
    """Call managers see every assignment; a reviewer only their own that are not released."""
    assignments = ReviewAssignment.objects.select_related(
        "application__organisation",
        "application__access_mode__call",
        "application__call",
        "reviewer",
        "review",
    )
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return assignments.none()
    if not user.has_perm("vetting.view_reviewassignment"):
        return assignments.none()  # e.g. taken out of the reviewer role with assignments open
    if can_manage_reviews(user):
        return assignments
    return assignments.filter(reviewer=user).exclude(state=ReviewAssignment.State.RELEASED)


def can_manage_reviews(user: AbstractBaseUser) -> bool:
    return user.has_perm("vetting.change_reviewassignment")


def can_see_other_reviews(user: AbstractBaseUser, assignment: ReviewAssignment) -> bool:
    """Other reviewers' scores stay hidden until one's own review is in."""
    if can_manage_reviews(user):
        return True
    return (
        assignment.reviewer_id == user.pk and assignment.state == ReviewAssignment.State.SUBMITTED
    )


# Rubric and scores


def rubric_criteria(call_id: int) -> list[aggregation.Criterion]:
    return [
        aggregation.Criterion(c.key, float(c.weight), c.minimum_score)
        for c in RubricCriterion.objects.filter(rubric__call_id=call_id)
    ]


def submitted_scores(application_ids) -> dict[int, list[dict[str, float]]]:
    """{application id: [{criterion key: score} per submitted review]} in one query."""
    rows = CriterionScore.objects.filter(
        review__assignment__application_id__in=list(application_ids),
        review__submitted_at__isnull=False,
    ).values_list("review__assignment__application_id", "review_id", "criterion__key", "score")
    reviews: dict[int, dict[int, dict[str, float]]] = defaultdict(dict)
    for application_id, review_id, key, score in rows:
        reviews[application_id].setdefault(review_id, {})[key] = score
    return {pk: list(by_review.values()) for pk, by_review in reviews.items()}


def application_summary(application: Application) -> aggregation.Summary:
    criteria = rubric_criteria(application.call_id)
    rubric = getattr(application.call, "rubric", None)
    points = float(rubric.disagreement_points) if rubric else aggregation.DEFAULT_DISAGREEMENT
    reviews = submitted_scores([application.pk]).get(application.pk, [])
    return aggregation.summarise(reviews, criteria, disagreement_points=points)


def reviews_of(application: Application) -> QuerySet[Review]:
    return (
        Review.objects.filter(assignment__application=application, submitted_at__isnull=False)
        .select_related("assignment__reviewer")
        .prefetch_related(Prefetch("scores", CriterionScore.objects.select_related("criterion")))
        .order_by("submitted_at")
    )


# Capacity and ranking


def granted_hours(access_mode: AccessMode) -> dict[int, int]:
    """GPU-hours already granted under `access_mode`, per partition."""
    rows = (
        DecisionGrant.objects.filter(
            decision__outcome="approved", decision__application__access_mode=access_mode
        )
        .values("partition_id")
        .annotate(hours=Sum("gpu_hours"))
    )
    return {row["partition_id"]: row["hours"] for row in rows}


def remaining_capacity(access_mode: AccessMode) -> dict[int, int]:
    granted = granted_hours(access_mode)
    return {
        link.partition_id: link.capacity_gpu_hours - granted.get(link.partition_id, 0)
        for link in AccessModePartition.objects.filter(access_mode=access_mode)
    }


@dataclass
class RankingRow:
    application: Application
    summary: aggregation.Summary
    requested: dict[int, int]
    proposal: aggregation.Proposal
    flags: list
    reviews_submitted: int
    reviewers_needed: int


RANKED_STATES = (
    Application.State.IN_REVIEW,
    Application.State.REVIEWED,
    Application.State.WAITLISTED,
)


def ranking(access_mode: AccessMode) -> tuple[list[RankingRow], dict[int, int], dict[int, int]]:
    """Rows in rank order, capacity before and after the proposals, per partition id.

    A fixed number of queries whatever the number of applications. The applications carry only
    what a ranking shows (title, state, organisation name); their screening flags are loaded by
    ranking_flags_load for the rows shown.
    """
    applications = list(
        Application.objects.filter(access_mode=access_mode, state__in=RANKED_STATES)
        .select_related("organisation")
        .only(
            "title",
            "state",
            "submitted_at",
            "call",
            "access_mode",
            "organisation__legal_name",
        )
        .annotate(
            reviews_submitted=Count(
                "assignments", filter=Q(assignments__state=ReviewAssignment.State.SUBMITTED)
            )
        )
    )
    criteria = rubric_criteria(access_mode.call_id)
    rubric = getattr(access_mode.call, "rubric", None)
    points = float(rubric.disagreement_points) if rubric else aggregation.DEFAULT_DISAGREEMENT
    scores = submitted_scores(a.pk for a in applications)
    summaries = {
        a.pk: aggregation.summarise(scores.get(a.pk, []), criteria, disagreement_points=points)
        for a in applications
    }
    requested: dict[int, dict[int, int]] = {a.pk: {} for a in applications}
    for application_id, partition_id, gpu_hours in (
        ApplicationResource.objects.filter(
            application__access_mode=access_mode, application__state__in=RANKED_STATES
        )
        .order_by()
        .values_list("application_id", "partition_id", "gpu_hours")
    ):
        requested[application_id][partition_id] = gpu_hours
    remaining = remaining_capacity(access_mode)
    candidates = [
        aggregation.Candidate(
            application_id=a.pk,
            mean=summaries[a.pk].mean,
            passes=summaries[a.pk].passes and a.state != Application.State.IN_REVIEW,
            requested=requested[a.pk],
            tie_breaker=a.submitted_at.timestamp() if a.submitted_at else 0.0,
        )
        for a in applications
    ]
    proposals, left = aggregation.rank(candidates, remaining)
    by_id = {a.pk: a for a in applications}
    rows = [
        RankingRow(
            application=by_id[p.application_id],
            summary=summaries[p.application_id],
            requested=requested[p.application_id],
            proposal=p,
            flags=[],
            reviews_submitted=by_id[p.application_id].reviews_submitted,
            reviewers_needed=access_mode.call.reviewers_per_application,
        )
        for p in proposals
    ]
    return rows, remaining, left


def ranking_flags_load(rows: list[RankingRow]) -> None:
    """Give `rows` their applications' screening flags, in one query."""
    flags: dict[int, list[ScreeningFlag]] = defaultdict(list)
    for flag in ScreeningFlag.objects.filter(application_id__in=[r.application.pk for r in rows]):
        flags[flag.application_id].append(flag)
    for row in rows:
        row.flags = flags.get(row.application.pk, [])
