from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from allocations.models import Allocation
from organisations.models import Membership
from systems.estimates import BELOW_GPAI, estimate
from systems.models import AccessMode, AccessModePartition, Call, ThresholdPolicy
from vetting import rules
from vetting.models import DRAFT_FIELDS, Application, ApplicationEvent, ApplicationResource

# Per-partition figures worth showing; classification only means something for the total.
PARTITION_KEYS = (
    "flop_hardware",
    "flop_upper_bound",
    "energy_kwh",
    "facility_energy_kwh",
    "co2e_kg",
)


def applications_visible_to(user: AbstractBaseUser) -> QuerySet[Application]:
    """Applications of the organisations `user` belongs to; nobody else's."""
    if not user.is_authenticated:
        return Application.objects.none()
    return (
        Application.objects.filter(organisation__membership__user=user)
        .select_related("organisation", "call", "access_mode")
        .order_by("-created_at", "-id")
    )


def application_for_member(*, user: AbstractBaseUser, pk: int) -> Application:
    """The application if `user` is a member of its organisation; 404 otherwise."""
    return get_object_or_404(applications_visible_to(user), pk=pk)


def application_owned_by(*, user: AbstractBaseUser, application: Application) -> bool:
    """Owners of the organisation withdraw its applications; members only follow them."""
    return Membership.objects.filter(
        organisation_id=application.organisation_id, user=user, role=Membership.Role.OWNER
    ).exists()


def open_access_modes() -> QuerySet[AccessMode]:
    links = AccessModePartition.objects.select_related("partition__cluster")
    return (
        AccessMode.objects.filter(call__in=Call.objects.open_now())
        .select_related("call")
        .prefetch_related(Prefetch("accessmodepartition_set", queryset=links))
        .order_by("call__title", "min_gpu_hours", "kind")
    )


def mode_limits(access_mode: AccessMode) -> rules.ModeLimits:
    links = AccessModePartition.objects.filter(access_mode=access_mode).select_related(
        "partition__cluster"
    )
    return rules.ModeLimits(
        name=access_mode.get_kind_display(),
        min_gpu_hours=access_mode.min_gpu_hours,
        max_gpu_hours=access_mode.max_gpu_hours,
        durations_months=tuple(access_mode.durations_months),
        partition_ids=frozenset(link.partition_id for link in links),
        partition_names={link.partition_id: str(link.partition) for link in links},
    )


def _resources(application: Application) -> list[ApplicationResource]:
    return list(application.resources.select_related("partition__cluster__site"))


def application_estimate(
    application: Application, *, policy: ThresholdPolicy | None = None
) -> dict[str, Any]:
    """Compute, energy and emissions of the plan as it stands, under the policy in force.

    Hardware figures are summed over the requested partitions. `problem` explains, in words,
    why nothing could be computed (e.g. a negative number in a draft).
    """
    policy = policy or ThresholdPolicy.objects.in_force()
    result: dict[str, Any] = {
        "policy_version": policy.version if policy else None,
        "total": None,
        "partitions": [],
        "classification": BELOW_GPAI,
        "required_commitments": [],
        "problem": None,
    }
    if policy is None:
        result["problem"] = "No threshold policy is in force; the site has to set one up."
        return result
    figures = policy.figures()
    is_modification = application.training_kind in (
        Application.TrainingKind.FINE_TUNING,
        Application.TrainingKind.CONTINUED_PRETRAINING,
    ) and bool(application.base_model.strip())
    try:
        rows = []
        for resource in _resources(application):
            partition = resource.partition.figures()
            one = estimate(
                partition=partition,
                gpu_hours=resource.gpu_hours,
                parameters=None,
                tokens=None,
                utilisation=application.expected_utilisation,
                policy=figures,
            ).to_dict()
            result["partitions"].append(
                {
                    "partition": str(resource.partition),
                    "gpu_hours": resource.gpu_hours,
                    **{key: one[key] for key in PARTITION_KEYS},
                }
            )
            rows.append((partition, resource.gpu_hours))
        combined = rules.combined_partition(rows)
        total = estimate(
            partition=combined,
            gpu_hours=sum(h for _, h in rows) if combined else None,
            parameters=application.parameters,
            tokens=application.training_tokens,
            utilisation=application.expected_utilisation,
            policy=figures,
            synthetic_data_flop=application.synthetic_data_flop or 0.0,
            base_model=application.base_model if is_modification else "",
            base_model_flop=application.base_model_flop if is_modification else None,
            base_is_systemic_risk=bool(application.base_is_systemic_risk) and is_modification,
        )
    except ValueError as exc:
        result["problem"] = str(exc)
        return result
    result["total"] = {"gpu_hours": sum(h for _, h in rows), **total.to_dict()}
    result["classification"] = total.classification
    result["required_commitments"] = list(
        rules.required_commitments(
            classification=total.classification,
            is_modification=total.is_modification,
            modification_makes_provider=total.modification_makes_provider,
        )
    )
    return result


def submission_data(application: Application, *, today: date) -> dict[str, Any]:
    """The plain data `rules.validate_for_submit` judges."""
    data: dict[str, Any] = {name: getattr(application, name) for name in DRAFT_FIELDS}
    data["resources"] = {r.partition_id: r.gpu_hours for r in application.resources.all()}
    data["has_annex"] = bool(application.technical_annex)
    data["unparsed"] = {
        name: typed.get("text", "") for name, typed in (application.unparsed_input or {}).items()
    }
    data["call_is_open"] = application.call.is_open
    return data


def application_submit_errors(
    application: Application, *, today: date, estimate_: dict[str, Any] | None = None
) -> dict[str, list[str]]:
    estimate_ = estimate_ or application_estimate(application)
    errors = rules.validate_for_submit(
        submission_data(application, today=today),
        mode=mode_limits(application.access_mode),
        required=estimate_["required_commitments"],
        classification=estimate_["classification"],
        today=today,
    )
    # An unreadable entry is best explained by what the form said when it was typed.
    for name, typed in (application.unparsed_input or {}).items():
        if typed.get("error"):
            errors[name] = [typed["error"]]
    if estimate_["problem"] and not errors:
        errors["__all__"] = [estimate_["problem"]]
    return errors


def application_public_history(application: Application) -> QuerySet[ApplicationEvent]:
    """The audit trail as the applicant sees it: states, times and public notes, no people."""
    return application.events.only("from_state", "to_state", "at", "public_note").order_by(
        "at", "id"
    )


def ethics_rows(application: Application) -> list[dict]:
    """The ethics self-assessment as question, answer in words and explanation."""
    rows = []
    for key, question, _ in rules.ETHICS_QUESTIONS:
        answer = (application.ethics or {}).get(key) or {}
        rows.append(
            {
                "question": question,
                "answer": {True: "Yes", False: "No"}.get(answer.get("answer"), "Not answered"),
                "explanation": answer.get("explanation", ""),
            }
        )
    return rows


def commitment_labels(keys) -> list[str]:
    """AI Act commitments (keys of vetting.rules.COMMITMENTS) in words."""
    return [rules.COMMITMENT_LABELS.get(key, key) for key in keys or ()]


def application_allocations(application: Application):
    """The allocations its approval granted, for the applicant's page."""
    return Allocation.objects.filter(decisions__application=application).select_related(
        "cluster", "partition"
    )
