from __future__ import annotations

from django.db.models import F, QuerySet

from systems.models import AccessMode, ThresholdPolicy


def access_modes_by_size() -> QuerySet[AccessMode]:
    """Smallest mode first: Playground, Fast Lane, Large Scale."""
    return AccessMode.objects.order_by(
        "min_gpu_hours", F("max_gpu_hours").asc(nulls_last=True), "kind"
    )


def policy_utilisation(policy: ThresholdPolicy | None = None) -> float:
    """Utilisation the estimates assume: the policy in force's (docs/domain-rules.md), else 0.4."""
    policy = policy or ThresholdPolicy.objects.in_force()
    return policy.default_utilisation if policy else 0.4
