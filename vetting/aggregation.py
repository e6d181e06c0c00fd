"""Rubric aggregation and ranking, as pure functions over plain numbers.

A review's weighted score is on the rubric's own scale (0-5 by default), so a reader can compare
it with the criterion scores. Proposals fill each partition's remaining capacity in rank order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean

DEFAULT_DISAGREEMENT = 1.5


@dataclass(frozen=True)
class Criterion:
    key: str
    weight: float
    minimum: float | None = None


@dataclass(frozen=True)
class Summary:
    reviews: int
    scores: tuple[float, ...]
    mean: float | None
    spread: float | None
    disagreement: bool
    criterion_means: Mapping[str, float]
    failed_minimums: tuple[str, ...]

    @property
    def passes(self) -> bool:
        return self.reviews > 0 and not self.failed_minimums


def weighted_score(scores: Mapping[str, float], criteria: Sequence[Criterion]) -> float:
    """Sum of weight x score over the sum of weights; every criterion must be scored."""
    missing = [c.key for c in criteria if c.key not in scores]
    if missing:
        raise ValueError(f"Scores are missing for: {', '.join(missing)}.")
    total_weight = sum(c.weight for c in criteria)
    if total_weight <= 0:
        raise ValueError("The rubric's weights must add up to more than 0.")
    return sum(c.weight * scores[c.key] for c in criteria) / total_weight


def summarise(
    reviews: Sequence[Mapping[str, float]],
    criteria: Sequence[Criterion],
    *,
    disagreement_points: float = DEFAULT_DISAGREEMENT,
) -> Summary:
    """Mean and spread of the reviews' weighted scores, and the minimums the mean fails.

    The spread is the highest weighted score minus the lowest; above `disagreement_points` the
    panel should discuss. A criterion fails when the reviewers' mean score on it is below its
    minimum, so one reviewer's view alone never sinks or saves a proposal on ethics.
    """
    scores = tuple(weighted_score(review, criteria) for review in reviews)
    if not scores:
        return Summary(0, (), None, None, False, {}, ())
    means = {c.key: fmean(review[c.key] for review in reviews) for c in criteria}
    spread = max(scores) - min(scores)
    failed = tuple(c.key for c in criteria if c.minimum is not None and means[c.key] < c.minimum)
    return Summary(
        reviews=len(scores),
        scores=scores,
        mean=fmean(scores),
        spread=spread,
        disagreement=spread > disagreement_points,
        criterion_means=means,
        failed_minimums=failed,
    )


@dataclass(frozen=True)
class Candidate:
    application_id: int
    mean: float | None
    passes: bool
    requested: Mapping[int, int]
    # Earlier submissions win ties.
    tie_breaker: float = 0.0


@dataclass(frozen=True)
class Proposal:
    application_id: int
    rank: int | None
    proposed: Mapping[int, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.proposed.values())


def rank(
    candidates: Sequence[Candidate], remaining: Mapping[int, int]
) -> tuple[list[Proposal], dict[int, int]]:
    """Order by mean score and propose grants that fill each partition's capacity in that order.

    Candidates that failed a minimum or have no score are listed last with no proposal. Returns
    the proposals and the capacity left after them.
    """
    left = {pid: max(0, hours) for pid, hours in remaining.items()}
    ranked = sorted(
        (c for c in candidates if c.passes and c.mean is not None),
        key=lambda c: (-c.mean, c.tie_breaker, c.application_id),
    )
    proposals = []
    for position, candidate in enumerate(ranked, start=1):
        proposed = {}
        for pid, hours in candidate.requested.items():
            grant = min(hours, left.get(pid, 0))
            if grant > 0:
                proposed[pid] = grant
                left[pid] -= grant
        proposals.append(Proposal(candidate.application_id, position, proposed))
    ranked_ids = {c.application_id for c in ranked}
    proposals.extend(
        Proposal(c.application_id, None) for c in candidates if c.application_id not in ranked_ids
    )
    return proposals, left
